import { type Job, Queue, QueueEvents, Worker } from 'bullmq';
import { PreloadQueueFull } from '../images/image-jobs.js';
import type { Logger } from '../logger.js';
import type { RedisClient } from '../redis/connect.js';
import { type JobEngine, type Processors, preloadJobs } from './job-engine.js';

/** Refresh ticks and drains, and the stats roll-up: the work that keeps URLs fresh. */
export const QUEUE = 'signet-jobs';
/**
 * Preloads, in a queue and a worker of their own: however many wait, a refresh tick or drain
 * never queues behind them, and they never take its worker's slots.
 */
export const PRELOAD_QUEUE = 'signet-preload';
/**
 * After-upload variant jobs (s3: derived objects), in a queue and a worker of their own: renders
 * take seconds and must never hold a refresh drain's slot, nor wait behind one.
 */
export const VARIANTS_QUEUE = 'signet-variants';
/** Drain jobs that may wait or run at once: with N worker nodes, up to this many sweep in parallel. */
const MAX_DRAINS = 4;
/** Preload jobs one node runs at once: a flood of preloads takes one slot of its CPU, no more. */
const PRELOAD_CONCURRENCY = 1;
/** How long a preload call waits for its jobs. */
const PRELOAD_WAIT_MS = 60_000;
/** How many ticks a drain job id stands for its slot (see `tick`). */
const DRAIN_SLOT_TICKS = 3;

export interface BullmqEngineOptions {
  /** Makes a new blocking connection (BullMQ wants its own, without command timeouts). */
  connect: () => RedisClient;
  /** Key prefix; wrapped in a hash tag so a queue lives in one cluster slot. */
  prefix: string;
  tickMs: number;
  batchSize: number;
  /** Preload jobs that may wait (all nodes together); a preload that does not fit is refused. */
  maxWaitingPreloads: number;
  /** Interval of the orphan sweep; 0 never runs it. */
  orphanSweepMs: number;
  /** Interval of the placeholder backfill; 0 never runs it. */
  placeholderBackfillMs: number;
  /** Interval of the derived variants' backfill (s3); 0 never runs it. */
  variantsBackfillMs?: number;
  /** Variant jobs one worker node runs at once (0: this deployment makes no derived variants). */
  variantConcurrency?: number;
  /** Interval of the replication check (several regions); 0 (or absent) never runs it. */
  replicationCheckMs?: number;
  logger: Logger;
}

/** The hash-tagged BullMQ prefix of a Redis key prefix: a queue's keys share one cluster slot. */
export function bullPrefix(redisPrefix: string): string {
  return `{${redisPrefix.replace(/[{}:]+$/, '')}-bull}`;
}

/**
 * Background jobs on BullMQ: every worker node ticks every second on its own timer and, when URLs
 * are due, queues drain jobs (one id per slot and few ticks, so the nodes' ticks add each drain
 * once) that any worker node picks up (claims are atomic, so drains never double-sign).
 * Operators get retries, stalled-job recovery and a queue they can inspect.
 *
 * Why the tick is not a BullMQ job scheduler: a scheduler's next run is added by the worker that
 * took the current one, in a round trip after taking it. A worker killed between the two leaves
 * no next run; the scheduler stops until BullMQ's stalled check hands the dead worker's job to
 * another (its 30 s lock, then a check every 15 s): every due URL waits that long. A local timer
 * per node has no such gap (docs/architecture.md, "Freshness").
 */
export class BullmqJobEngine implements JobEngine {
  readonly kind = 'bullmq' as const;
  private readonly queue: Queue;
  private readonly preloads: Queue;
  private readonly variants: Queue;
  private variantsWorker: Worker | undefined;
  private worker: Worker | undefined;
  private preloadWorker: Worker | undefined;
  private events: QueueEvents | undefined;
  private eventsReady: Promise<QueueEvents> | undefined;
  private readonly prefix: string;
  private readonly connections: RedisClient[] = [];
  private ticker: NodeJS.Timeout | undefined;
  private ticking = false;
  private tickFailing = false;
  /** This node's preload admissions, one at a time (count, then add). */
  private admitting: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly processors: Processors,
    private readonly o: BullmqEngineOptions,
  ) {
    this.prefix = bullPrefix(o.prefix);
    // Queues send ordinary commands only, so the two share a connection.
    const connection = this.conn();
    this.queue = new Queue(QUEUE, { connection, prefix: this.prefix });
    this.preloads = new Queue(PRELOAD_QUEUE, { connection, prefix: this.prefix });
    this.variants = new Queue(VARIANTS_QUEUE, { connection, prefix: this.prefix });
    for (const q of [this.queue, this.preloads, this.variants])
      q.on('error', (err) => o.logger.warn({ err: err.message, queue: q.name }, 'job queue error'));
    // A caller waiting for a preload job listens for the queue's closing: one listener per job
    // this node waits for, as many as the wait list holds.
    this.preloads.setMaxListeners(0);
  }

  private conn(): RedisClient {
    const c = this.o.connect();
    this.connections.push(c);
    // biome-ignore lint/suspicious/noExplicitAny: BullMQ types its connection as its own ioredis copy.
    return c as any;
  }

  async startWorkers(): Promise<void> {
    if (this.worker) return;
    const jobOpts = { removeOnComplete: true, removeOnFail: 100 };
    // Ticks run on each node's timer (see the class comment); a scheduler left by an earlier
    // version would only add ticks that do what the timers do.
    await this.queue.removeJobScheduler('refresh-tick');
    await this.queue.upsertJobScheduler(
      'stats-rollup',
      { every: 3_600_000 },
      { name: 'stats-rollup', opts: jobOpts },
    );
    // One scheduler for the whole queue: one sweep per interval, on whichever worker takes it.
    if (this.o.orphanSweepMs > 0) {
      await this.queue.upsertJobScheduler(
        'orphan-sweep',
        { every: this.o.orphanSweepMs },
        { name: 'orphan-sweep', opts: jobOpts },
      );
    } else {
      await this.queue.removeJobScheduler('orphan-sweep');
    }
    // Likewise one backfill per interval across all workers; a scheduler's first job runs at once.
    if (this.o.placeholderBackfillMs > 0) {
      await this.queue.upsertJobScheduler(
        'placeholder-backfill',
        { every: this.o.placeholderBackfillMs },
        { name: 'placeholder-backfill', opts: jobOpts },
      );
    } else {
      await this.queue.removeJobScheduler('placeholder-backfill');
    }
    if ((this.o.variantsBackfillMs ?? 0) > 0) {
      await this.queue.upsertJobScheduler(
        'variants-backfill',
        { every: this.o.variantsBackfillMs! },
        { name: 'variants-backfill', opts: jobOpts },
      );
    } else {
      await this.queue.removeJobScheduler('variants-backfill');
    }
    // One check per interval for the region (its Redis, so its queue, is the region's own).
    if ((this.o.replicationCheckMs ?? 0) > 0) {
      await this.queue.upsertJobScheduler(
        'replication-check',
        { every: this.o.replicationCheckMs! },
        { name: 'replication-check', opts: jobOpts },
      );
    } else {
      await this.queue.removeJobScheduler('replication-check');
    }
    this.worker = new Worker(QUEUE, (job) => this.process(job), {
      connection: this.conn(),
      prefix: this.prefix,
      // The drains, plus one slot each for a tick queued by an earlier version, the orphan sweep,
      // the two backfills and the replication check, so a long periodic job never keeps a drain
      // waiting.
      concurrency: MAX_DRAINS + 5,
      lockDuration: 30_000,
      stalledInterval: 15_000,
    });
    this.preloadWorker = new Worker(
      PRELOAD_QUEUE,
      (job) => this.processors.preload((job.data as { ids: string[] }).ids),
      {
        connection: this.conn(),
        prefix: this.prefix,
        concurrency: PRELOAD_CONCURRENCY,
        lockDuration: 30_000,
        stalledInterval: 15_000,
      },
    );
    const workers = [this.worker, this.preloadWorker];
    if ((this.o.variantConcurrency ?? 0) > 0) {
      this.variantsWorker = new Worker(
        VARIANTS_QUEUE,
        (job) => this.processors.makeVariants((job.data as { id: string }).id),
        {
          connection: this.conn(),
          prefix: this.prefix,
          concurrency: this.o.variantConcurrency!,
          // A render is bounded by VARIANT_TIMEOUT_SECONDS per variant; a job makes a few.
          lockDuration: 120_000,
          stalledInterval: 30_000,
        },
      );
      workers.push(this.variantsWorker);
    }
    for (const w of workers) {
      w.on('error', (err) => this.o.logger.warn({ err: err.message, queue: w.name }, 'job worker error'));
      w.on('failed', (job, err) => this.o.logger.warn({ job: job?.name, err: err.message }, 'job failed'));
    }
    this.ticker = setInterval(() => void this.runTick(), this.o.tickMs);
  }

  /** One tick of this node's timer; a tick still running (Redis slow or away) is not doubled. */
  private async runTick(): Promise<void> {
    if (this.ticking) return;
    this.ticking = true;
    try {
      await this.tick();
      this.tickFailing = false;
    } catch (err) {
      // Once per outage, not once a second: the next tick retries anyway.
      if (!this.tickFailing) this.o.logger.warn({ err: (err as Error).message }, 'refresh tick failed');
      this.tickFailing = true;
    } finally {
      this.ticking = false;
    }
  }

  /** Observes the schedule and, when URLs are due, queues the drains that sweep them. */
  private async tick(): Promise<{ backlog: number; drains?: number }> {
    const { backlog } = await this.processors.observe();
    if (backlog === 0) return { backlog };
    const drains = Math.min(MAX_DRAINS, Math.ceil(backlog / this.o.batchSize));
    // Job ids per slot and per few ticks: a drain still queued or running is not queued twice
    // (by this node or another one's tick), yet a drain left active by a worker SIGKILLed
    // mid-drain (locked until BullMQ's stalled check, tens of seconds later) blocks its slot for a
    // few ticks only. An extra drain costs one claim round trip, never a double signing (claims
    // are leased).
    const epoch = Math.floor(Date.now() / (this.o.tickMs * DRAIN_SLOT_TICKS));
    await this.queue.addBulk(
      Array.from({ length: drains }, (_, i) => ({
        name: 'refresh-drain',
        data: {},
        opts: { jobId: `drain-${i}-${epoch}`, removeOnComplete: true, removeOnFail: true, attempts: 1 },
      })),
    );
    return { backlog, drains };
  }

  private async process(job: Job): Promise<unknown> {
    switch (job.name) {
      case 'refresh-tick':
        // Queued by an earlier version's scheduler, during a rolling upgrade.
        return this.tick();
      case 'refresh-drain':
        return this.processors.refreshSweep();
      case 'stats-rollup':
        return this.processors.statsRollup();
      case 'orphan-sweep':
        return this.processors.orphanSweep();
      case 'placeholder-backfill':
        return this.processors.placeholderBackfill();
      case 'variants-backfill':
        return this.processors.variantsBackfill();
      case 'replication-check':
        return this.processors.replicationCheck();
      case 'preload':
        // Queued here by a node of an earlier version, during a rolling upgrade.
        return this.processors.preload((job.data as { ids: string[] }).ids);
      default:
        throw new Error(`unknown job ${job.name}`);
    }
  }

  async preload(ids: readonly string[]): Promise<number> {
    const chunks = preloadJobs(ids);
    if (chunks.length === 0) return 0;
    // Listening before the jobs exist, so no completion goes by unheard.
    const events = await this.preloadEvents();
    const jobs = await this.admit(chunks);
    const signed = await Promise.all(jobs.map((job) => job.waitUntilFinished(events, PRELOAD_WAIT_MS)));
    return signed.reduce((sum: number, n) => sum + Number(n), 0);
  }

  /** The preload queue's events, opened once (concurrent first callers share the opening). */
  private preloadEvents(): Promise<QueueEvents> {
    this.eventsReady ??= (async () => {
      const events = new QueueEvents(PRELOAD_QUEUE, { connection: this.conn(), prefix: this.prefix });
      this.events = events;
      await events.waitUntilReady();
      return events;
    })();
    return this.eventsReady;
  }

  /**
   * Queues all of these jobs, or none when they do not fit in the wait list. The count and the
   * add are one at a time on this node; nodes admitting at the same instant can overshoot the
   * bound by what they add together (each call at most 20 jobs, each caller rate-limited).
   */
  private admit(chunks: string[][]): Promise<Job[]> {
    const run = this.admitting.then(async () => {
      // Waiting, delayed (a retry's backoff), prioritized or paused: everything not yet running.
      const waiting = await this.preloads.count();
      if (waiting + chunks.length > this.o.maxWaitingPreloads)
        throw new PreloadQueueFull(waiting, this.o.maxWaitingPreloads);
      return this.preloads.addBulk(
        chunks.map((ids) => ({
          name: 'preload',
          data: { ids },
          opts: {
            attempts: 3,
            backoff: { type: 'exponential', delay: 200 },
            // A finished job is kept a little while, so a waiting caller can still read its
            // result if the event went by before it listened; at most 100, ~2 MB.
            removeOnComplete: { age: 60, count: 100 },
            removeOnFail: 100,
          },
        })),
      );
    });
    this.admitting = run.catch(() => {});
    return run;
  }

  async enqueueVariants(imageId: string): Promise<void> {
    try {
      // One job per image (its id): a second upload event of the same image adds nothing.
      await this.variants.add(
        'variants',
        { id: imageId },
        {
          jobId: `variants-${imageId}`,
          attempts: 3,
          backoff: { type: 'exponential', delay: 1000 },
          removeOnComplete: true,
          removeOnFail: 100,
        },
      );
    } catch (err) {
      this.o.logger.warn(
        { imageId, err: (err as Error).message },
        'variants job not queued; the backfill makes them',
      );
    }
  }

  async stop(): Promise<void> {
    clearInterval(this.ticker);
    await this.worker?.close();
    await this.preloadWorker?.close();
    await this.variantsWorker?.close();
    await this.events?.close();
    await this.queue.close();
    await this.preloads.close();
    await this.variants.close();
    for (const c of this.connections) c.disconnect();
  }
}
