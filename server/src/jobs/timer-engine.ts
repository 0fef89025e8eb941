import { PreloadQueueFull } from '../images/image-jobs.js';
import type { Logger } from '../logger.js';
import { type JobEngine, type Processors, preloadJobs } from './job-engine.js';

const HOUR = 3_600_000;

/** Embedded mode: the same processors on in-process timers. */
export class TimerJobEngine implements JobEngine {
  readonly kind = 'timer' as const;
  private timers: NodeJS.Timeout[] = [];
  private sweeping: Promise<unknown> | undefined;
  /** Preload jobs accepted and not finished (waiting or running). */
  private pendingPreloads = 0;
  /** The last preload job in line: they run one at a time, like the BullMQ preload worker. */
  private preloadTail: Promise<unknown> = Promise.resolve();
  /** Runs of the periodic jobs in progress (orphan sweep, backfills, purge), by name. */
  private readonly periodic = new Map<string, Promise<unknown>>();

  constructor(
    private readonly processors: Processors,
    private readonly tickMs: number,
    private readonly logger: Logger,
    /** Preload jobs that may be pending at once; a preload that does not fit is refused. */
    private readonly maxPendingPreloads: number,
    /** Interval of the orphan sweep; 0 never runs it. */
    private readonly orphanSweepMs = 0,
    /** Interval of the placeholder backfill (its first run starts at once); 0 never runs it. */
    private readonly placeholderBackfillMs = 0,
    /** Interval of the derived variants' backfill (s3; first run at once); 0 never runs it. */
    private readonly variantsBackfillMs = 0,
    /** Interval of the replication check (several regions); 0 never runs it. */
    private readonly replicationCheckMs = 0,
    /** Interval of the deleted-row purge (its first run starts at once); 0 never runs it. */
    private readonly deletedRowPurgeMs = 0,
  ) {}

  /** After-upload variant jobs running in process (each bounded by DerivedVariants' own limit). */
  private readonly variantJobs = new Set<Promise<unknown>>();

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
    this.every('orphan sweep', this.orphanSweepMs, () => this.processors.orphanSweep());
    // At once too: rows seeded or uploaded before placeholders existed get theirs soon after start.
    this.every(
      'placeholder backfill',
      this.placeholderBackfillMs,
      () => this.processors.placeholderBackfill(),
      true,
    );
    this.every('variants backfill', this.variantsBackfillMs, () => this.processors.variantsBackfill(), true);
    this.every('replication check', this.replicationCheckMs, () => this.processors.replicationCheck());
    this.every('deleted-row purge', this.deletedRowPurgeMs, () => this.processors.deletedRowPurge(), true);
    for (const t of this.timers) t.unref();
  }

  /** A job every `ms` (0: never), a run never overlapping the previous one. */
  private every(name: string, ms: number, run: () => Promise<unknown>, now = false): void {
    if (ms <= 0) return;
    const tick = () => {
      if (this.periodic.has(name)) return;
      this.periodic.set(
        name,
        run()
          .catch((err: Error) => this.logger.warn({ err: err.message }, `${name} failed`))
          .finally(() => this.periodic.delete(name)),
      );
    };
    this.timers.push(setInterval(tick, ms));
    if (now) this.timers.push(setTimeout(tick, 0));
  }

  /**
   * The same jobs as with BullMQ, in process: one at a time, so however many are pending, a
   * sweep's timer finds the event loop between two of them, never behind all of them.
   */
  async preload(ids: readonly string[]): Promise<number> {
    const jobs = preloadJobs(ids);
    if (this.pendingPreloads + jobs.length > this.maxPendingPreloads)
      throw new PreloadQueueFull(this.pendingPreloads, this.maxPendingPreloads);
    this.pendingPreloads += jobs.length;
    const runs = jobs.map((chunk) => {
      const run = this.preloadTail
        .then(() => this.processors.preload(chunk))
        .finally(() => {
          this.pendingPreloads--;
        });
      this.preloadTail = run.catch(() => {});
      return run;
    });
    const signed = await Promise.all(runs);
    return signed.reduce((sum, n) => sum + n, 0);
  }

  /** In process, not awaited: the upload is answered at once (a lost job is the backfill's). */
  async enqueueVariants(imageId: string): Promise<void> {
    const run = this.processors
      .makeVariants(imageId)
      .catch((err: Error) => this.logger.warn({ imageId, err: err.message }, 'variants job failed'))
      .finally(() => this.variantJobs.delete(run));
    this.variantJobs.add(run);
  }

  async stop(): Promise<void> {
    for (const t of this.timers) clearTimeout(t);
    await Promise.all(this.variantJobs);
    this.timers = [];
    await this.sweeping;
    await this.preloadTail;
    await Promise.all(this.periodic.values());
  }
}
