import type { Logger } from '../logger.js';
import type { JobEngine, Processors } from './job-engine.js';

const HOUR = 3_600_000;

/** Embedded mode: the same processors on in-process timers. */
export class TimerJobEngine implements JobEngine {
  readonly kind = 'timer' as const;
  private timers: NodeJS.Timeout[] = [];
  private sweeping: Promise<unknown> | undefined;

  constructor(
    private readonly processors: Processors,
    private readonly tickMs: number,
    private readonly logger: Logger,
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
    for (const t of [tick, rollup]) t.unref();
    this.timers = [tick, rollup];
  }

  async preload(ids: readonly string[]): Promise<number> {
    return this.processors.preload(ids);
  }

  async stop(): Promise<void> {
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    await this.sweeping;
  }
}
