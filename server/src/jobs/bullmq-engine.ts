import type { EventEmitter } from 'node:events';
import { type Job, Queue, QueueEvents, Worker } from 'bullmq';
import { PreloadQueueFull } from '../images/image-jobs.js';
import { LogThrottle, suppressedField } from '../lib/log-throttle.js';
import type { Logger } from '../logger.js';
import type { RedisClient } from '../redis/connect.js';
import { isRedisUnreachable } from '../redis/unreachable.js';
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
/**
 * How often a worker node checks that the job schedulers are still in Redis (see
 * `ensureSchedulers`): one round trip per scheduler, a few a minute per node.
 */
const SCHEDULER_CHECK_MS = 60_000;
/** The stats roll-up's interval. */
const STATS_ROLLUP_MS = 3_600_000;
/**
 * How long a stop waits for a worker to close. With Redis there, a close lets the running jobs
 * finish and records them (BullMQ moves them out of `active`); a node's whole stop is bounded at
 * 10 s (main.ts), so past this the stop goes on and a job still running is left to the stalled
 * check of another worker (its lock runs out). With Redis away, the close is forced: unforced,
 * BullMQ waits for a fetch it retries every 15 s, and a close asked once cannot be forced later
 * (it returns the first call's promise).
 */
const WORKER_CLOSE_MS = 4_000;
/** How long a stop waits for each queue (and the preload events) to close: they hold no jobs. */
const QUEUE_CLOSE_MS = 1_000;

/** Settles when `p` does or after `ms`, whichever is first; never rejects. */
async function atMost(p: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    p.catch(() => {}),
    new Promise<void>((r) => {
      timer = setTimeout(r, ms);
    }),
  ]);
  clearTimeout(timer);
}

/**
 * The schedulers this version may set, and one an earlier version set: the refresh tick, which now
 * runs on each node's timer (see the class comment; its jobs would only do what the timers do).
 */
const SCHEDULER_IDS = [
  'stats-rollup',
  'orphan-sweep',
  'placeholder-backfill',
  'variants-backfill',
  'replication-check',
  'deleted-row-purge',
  'refresh-tick',
] as const;
type SchedulerId = (typeof SCHEDULER_IDS)[number];

export interface BullmqEngineOptions {
  /** Makes a new blocking connection (BullMQ wants its own, without command timeouts). */
  connect: () => RedisClient;
  /** Key prefix; wrapped in a hash tag so a queue lives in one cluster slot. */
  prefix: string;
  tickMs: number;
  batchSize: number;
  /** Preload jobs that may wait (all nodes together); a preload that does not fit is refused. */
  maxWaitingPreloads: number;
  /**
   * Interval of the orphan sweep; 0: this node never runs it, not even a sweep job another node's
   * scheduler queued.
   */
  orphanSweepMs: number;
  /** Interval of the placeholder backfill; 0 never runs it. */
  placeholderBackfillMs: number;
  /** Interval of the derived variants' backfill (s3); 0 never runs it. */
  variantsBackfillMs?: number;
  /** Variant jobs one worker node runs at once (0: this deployment makes no derived variants). */
  variantConcurrency?: number;
  /** Interval of the replication check (several regions); 0 (or absent) never runs it. */
  replicationCheckMs?: number;
  /** Interval of the deleted-row purge; 0 (or absent) never runs it. */
  deletedRowPurgeMs?: number;
  /**
   * How often a worker node checks that its job schedulers are still in Redis and re-creates the
   * missing ones (default 60 s; tests use less).
   */
  schedulerCheckMs?: number;
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
 *
 * The periodic jobs (stats roll-up, orphan sweep, the backfills, the replication check, the
 * deleted-row purge) are BullMQ job schedulers, which live in Redis. `startWorkers` never waits
 * for Redis: it starts the workers (they connect by themselves) and sets the schedulers as soon
 * as the queue's connection is ready, so a node started while Redis is down listens and serves.
 * Redis can lose them afterwards
 * (a restart without persistence, a FLUSHDB): on every reconnect and every `schedulerCheckMs` a
 * worker node looks each one up and re-creates only the missing ones, so the check never moves a
 * scheduler's next run (see `setSchedulers`).
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
  /** The queues' shared connection: its 'ready' (each reconnect) re-checks the schedulers. */
  private readonly queueClient: RedisClient;
  /** BullMQ's 'error' events, one line a minute per source (many a second while Redis is down). */
  private readonly errors = new LogThrottle();
  private schedulerTimer: NodeJS.Timeout | undefined;
  /** Set once on this node as configured (its first successful `setSchedulers`). */
  private schedulersSet = false;
  private warnedSchedulersUnset = false;
  /** The scheduler check in flight (one at a time), and whether another was asked for meanwhile. */
  private ensuring: Promise<void> | undefined;
  private ensureAgain = false;
  private stopping = false;
  private readonly onQueueReady = () => this.ensureSchedulers();
  private readonly onQueueError = (err: Error) => {
    if (this.worker && !this.schedulersSet) this.warnSchedulersUnset(err);
  };
  /** This node's preload admissions, one at a time (count, then add). */
  private admitting: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly processors: Processors,
    private readonly o: BullmqEngineOptions,
  ) {
    this.prefix = bullPrefix(o.prefix);
    // Queues send ordinary commands only, so the two share a connection.
    const connection = this.conn();
    this.queueClient = connection;
    this.queue = new Queue(QUEUE, { connection, prefix: this.prefix });
    this.preloads = new Queue(PRELOAD_QUEUE, { connection, prefix: this.prefix });
    this.variants = new Queue(VARIANTS_QUEUE, { connection, prefix: this.prefix });
    for (const q of [this.queue, this.preloads, this.variants])
      q.on('error', (err) => this.logError('queue', q.name, err));
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

  /**
   * Starts this node's workers, its tick timer and its scheduler check. Never waits for Redis: the
   * workers connect by themselves, and the schedulers are set once the queue's connection is ready.
   */
  async startWorkers(): Promise<void> {
    if (this.worker) return;
    this.worker = new Worker(QUEUE, (job) => this.process(job), {
      connection: this.conn(),
      prefix: this.prefix,
      // The drains, plus one slot each for a tick queued by an earlier version, the orphan sweep,
      // the two backfills, the replication check and the deleted-row purge, so a long periodic
      // job never keeps a drain waiting.
      concurrency: MAX_DRAINS + 6,
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
      w.on('error', (err) => this.logError('worker', w.name, err));
      w.on('failed', (job, err) => this.o.logger.warn({ job: job?.name, err: err.message }, 'job failed'));
    }
    this.ticker = setInterval(() => void this.runTick(), this.o.tickMs);
    // The schedulers: now if the queue's connection is ready, else on its 'ready'; again on every
    // reconnect (Redis restarted, perhaps without its data) and every schedulerCheckMs (a FLUSHDB
    // needs no reconnect).
    this.queueClient.on('ready', this.onQueueReady);
    this.queueClient.on('error', this.onQueueError);
    this.schedulerTimer = setInterval(
      () => this.ensureSchedulers(),
      this.o.schedulerCheckMs ?? SCHEDULER_CHECK_MS,
    );
    this.schedulerTimer.unref();
    this.ensureSchedulers();
  }

  /** The schedulers this configuration runs, with their intervals. */
  private wantedSchedulers(): Map<SchedulerId, number> {
    const wanted = new Map<SchedulerId, number>([['stats-rollup', STATS_ROLLUP_MS]]);
    // One scheduler for the whole queue: one sweep per interval, on whichever worker takes it
    // (a worker set to 0 completes it without sweeping, see `process`). Set to 0, this node's
    // first `setSchedulers` removes the scheduler an earlier configuration left in Redis.
    if (this.o.orphanSweepMs > 0) wanted.set('orphan-sweep', this.o.orphanSweepMs);
    // Likewise one backfill per interval across all workers; a scheduler's first job runs at once.
    if (this.o.placeholderBackfillMs > 0) wanted.set('placeholder-backfill', this.o.placeholderBackfillMs);
    if ((this.o.variantsBackfillMs ?? 0) > 0) wanted.set('variants-backfill', this.o.variantsBackfillMs!);
    // One check per interval for the region (its Redis, so its queue, is the region's own).
    if ((this.o.replicationCheckMs ?? 0) > 0) wanted.set('replication-check', this.o.replicationCheckMs!);
    // One purge per interval across all workers (its statements are bounded; the next goes on).
    if ((this.o.deletedRowPurgeMs ?? 0) > 0) wanted.set('deleted-row-purge', this.o.deletedRowPurgeMs!);
    return wanted;
  }

  private upsertScheduler(id: SchedulerId, every: number) {
    return this.queue.upsertJobScheduler(
      id,
      { every },
      { name: id, opts: { removeOnComplete: true, removeOnFail: 100 } },
    );
  }

  /**
   * Sets or checks the schedulers, one run at a time, and only while the queue's connection is
   * ready: commands sent while it is not would wait in its offline queue, one more batch per
   * check for as long as Redis is away. A run asked for during another runs after it.
   */
  private ensureSchedulers(): void {
    if (this.stopping || !this.worker) return;
    if (this.ensuring) {
      this.ensureAgain = true;
      return;
    }
    if (this.queueClient.status !== 'ready') return;
    this.ensuring = this.setSchedulers()
      .catch((err: Error) => {
        if (this.stopping) return;
        if (!this.schedulersSet) this.warnSchedulersUnset(err);
        else
          this.errors.run('scheduler-check', (suppressed) =>
            this.o.logger.warn(
              { err: err.message, ...suppressedField(suppressed) },
              'job scheduler check failed; retried on the next check',
            ),
          );
      })
      .finally(() => {
        this.ensuring = undefined;
        if (this.ensureAgain) {
          this.ensureAgain = false;
          this.ensureSchedulers();
        }
      });
  }

  /**
   * The first time on this node: every scheduler as configured (an interval changed since the
   * last start takes effect) and the others removed. An unchanged scheduler keeps its next run:
   * BullMQ's upsert with the same `every` replaces the waiting job at the same time
   * (addJobScheduler-11.lua), and a changed `every` starts again from now.
   *
   * Afterwards (reconnects, the periodic check): each scheduler is looked up and only the missing
   * ones are created. Those present are left alone, so a check never moves a next run, whatever
   * BullMQ does on an upsert; a re-created one runs at once, as on a first start.
   */
  private async setSchedulers(): Promise<void> {
    const wanted = this.wantedSchedulers();
    if (!this.schedulersSet) {
      for (const id of SCHEDULER_IDS) if (!wanted.has(id)) await this.queue.removeJobScheduler(id);
      for (const [id, every] of wanted) await this.upsertScheduler(id, every);
      this.schedulersSet = true;
      const schedulers = [...wanted.keys()];
      if (this.warnedSchedulersUnset)
        this.o.logger.info({ schedulers }, 'Redis reachable: job schedulers set');
      else this.o.logger.info({ schedulers }, 'job schedulers set');
      return;
    }
    const missing: SchedulerId[] = [];
    for (const id of wanted.keys()) if (!(await this.queue.getJobScheduler(id))) missing.push(id);
    if (this.stopping) return;
    for (const id of missing) await this.upsertScheduler(id, wanted.get(id)!);
    if (missing.length > 0)
      this.o.logger.warn(
        { schedulers: missing },
        'job schedulers were missing from Redis (it lost its data: a restart without persistence, a FLUSHDB); re-created',
      );
  }

  /** Once per node: the schedulers could not be set yet (Redis away at start). */
  private warnSchedulersUnset(err: Error): void {
    if (this.warnedSchedulersUnset) return;
    this.warnedSchedulersUnset = true;
    this.o.logger.warn(
      { err: err.message },
      isRedisUnreachable(err)
        ? 'job schedulers not set yet: Redis is unreachable; this node sets them once it answers'
        : 'job schedulers not set yet; this node tries again on reconnect and every check',
    );
  }

  /**
   * BullMQ's 'error' events: one line a minute for Redis being unreachable (every queue shares one
   * connection; every worker says the same), one a minute per queue for any other error.
   */
  private logError(kind: 'queue' | 'worker', queue: string, err: Error): void {
    const unreachable = isRedisUnreachable(err);
    this.errors.run(unreachable ? `${kind}:unreachable` : `${kind}:${queue}`, (suppressed) =>
      this.o.logger.warn(
        { err: err.message, queue, ...suppressedField(suppressed) },
        unreachable ? `job ${kind} error: Redis is unreachable` : `job ${kind} error`,
      ),
    );
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
        // Queued by another node's scheduler (its interval not 0), or left by an earlier
        // configuration: a node set to 0 never sweeps, so an operator who turns the sweep off on
        // some nodes gets no sweeps from them. The job completes unrun (a failed one would only be
        // retried or kept); the scheduler queues the next one for whichever worker takes it.
        if (this.o.orphanSweepMs <= 0) {
          this.o.logger.info(
            { job: job.id },
            'orphan sweep job skipped: this node has the sweep off (ORPHAN_SWEEP_INTERVAL_SECONDS=0)',
          );
          return { skipped: 'orphan sweep off on this node' };
        }
        return this.processors.orphanSweep();
      case 'placeholder-backfill':
        return this.processors.placeholderBackfill();
      case 'variants-backfill':
        return this.processors.variantsBackfill();
      case 'replication-check':
        return this.processors.replicationCheck();
      case 'deleted-row-purge':
        return this.processors.deletedRowPurge();
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
      // Without a listener BullMQ writes each of its errors to the console, every reconnect.
      events.on('error', (err) => this.logError('queue', `${PRELOAD_QUEUE} events`, err));
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
    // A scheduler check in flight is not waited for: its commands fail when the connections
    // close below, quietly.
    this.stopping = true;
    clearInterval(this.ticker);
    clearInterval(this.schedulerTimer);
    this.queueClient.off('ready', this.onQueueReady);
    this.queueClient.off('error', this.onQueueError);
    const redisAway = this.queueClient.status !== 'ready';
    if (!redisAway) {
      // A queue still setting up its shared connection (a process that stops right after it
      // started: `signet erase-owner --dry-run`) drops its listeners on close, and its setup then
      // fails on the disconnect below with an 'error' nobody hears, which kills the process.
      await atMost(
        Promise.all([this.queue, this.preloads, this.variants].map((q) => q.waitUntilReady())),
        QUEUE_CLOSE_MS,
      );
    }
    await Promise.all(
      [this.worker, this.preloadWorker, this.variantsWorker].map((w) =>
        w ? atMost(w.close(redisAway), WORKER_CLOSE_MS) : undefined,
      ),
    );
    // Bounded too: with Redis gone a close may wait on a command that never returns, and the
    // connections are cut below whatever it does.
    await Promise.all(
      [this.events, this.queue, this.preloads, this.variants].map((q) =>
        q ? atMost(q.close(), QUEUE_CLOSE_MS) : undefined,
      ),
    );
    // A queue or worker closed while its connection was still being set up (a process stopping
    // right after it started, on a busy machine, or with Redis not answering) has its setup
    // rejected when the connections are cut below, as an 'error' on BullMQ's connection object,
    // whose listeners its close removed: unheard, Node would crash the process. Heard, dropped.
    for (const part of [
      this.queue,
      this.preloads,
      this.variants,
      this.events,
      this.worker,
      this.preloadWorker,
      this.variantsWorker,
    ])
      (part as unknown as { connection?: EventEmitter } | undefined)?.connection?.on('error', () => {});
    for (const c of this.connections) c.disconnect();
  }
}
