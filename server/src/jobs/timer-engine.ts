import type { Logger } from '../logger.js';
import type { JobEngine, Processors } from './job-engine.js';

const HOUR = 3_600_000;

/** Embedded mode: the same processors on in-process timers. */
export class TimerJobEngine implements JobEngine {
  readonly kind = 'timer' as const;
  private timers: NodeJS.Timeout[] = [];
  private sweeping: Promise<unknown> | undefined;
  private orphanSweeping: Promise<unknown> | undefined;

  constructor(
    private readonly processors: Processors,
    private readonly tickMs: number,
    private readonly logger: Logger,
    /** Interval of the orphan sweep; 0 never runs it. */
    private readonly orphanSweepMs = 0,
  ) {}

  async startWorkers(): Promise<void> {
    if (this.timers.length > 0) return;
    const tick = setInterval(() => {
      if (this.sweeping) return; // a long sweep must not pile up behind itself
      this.sweeping = this.processors
        .refreshSweep()
        .then(() => this.processors.observe())
        .catch((err: Error) => this.logger.warn({ err: err.message }, 'refresh sweep failed'))
        .finally(() => {
          this.sweeping = undefined;
        });
    }, this.tickMs);
    const rollup = setInterval(() => {
      this.processors
        .statsRollup()
        .catch((err: Error) => this.logger.warn({ err: err.message }, 'stats roll-up failed'));
    }, HOUR);
    this.timers = [tick, rollup];
    if (this.orphanSweepMs > 0) {
      this.timers.push(
        setInterval(() => {
          if (this.orphanSweeping) return;
          this.orphanSweeping = this.processors
            .orphanSweep()
            .catch((err: Error) => this.logger.warn({ err: err.message }, 'orphan sweep failed'))
            .finally(() => {
              this.orphanSweeping = undefined;
            });
        }, this.orphanSweepMs),
      );
    }
    for (const t of this.timers) t.unref();
  }

  async preload(ids: readonly string[]): Promise<number> {
    return this.processors.preload(ids);
  }

  async stop(): Promise<void> {
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    await this.sweeping;
    await this.orphanSweeping;
  }
}
