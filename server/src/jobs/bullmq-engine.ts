import { type Job, Queue, QueueEvents, Worker } from 'bullmq';
import type { Logger } from '../logger.js';
import type { RedisClient } from '../redis/connect.js';
import type { JobEngine, Processors } from './job-engine.js';

const QUEUE = 'signet-jobs';
/** Drain jobs that may wait or run at once: with N worker nodes, up to this many sweep in parallel. */
const MAX_DRAINS = 4;
/** How many ticks a drain job id stands for its slot (see the refresh-tick job). */
const DRAIN_SLOT_TICKS = 3;

export interface BullmqEngineOptions {
  /** Makes a new blocking connection (BullMQ wants its own, without command timeouts). */
  connect: () => RedisClient;
  /** Key prefix; wrapped in a hash tag so a queue lives in one cluster slot. */
  prefix: string;
  tickMs: number;
  batchSize: number;
  /** Interval of the orphan sweep; 0 never runs it. */
  orphanSweepMs: number;
  logger: Logger;
}

/**
 * Background jobs on BullMQ: a scheduler job ticks every second and, when URLs are due, queues
 * drain jobs that any worker node picks up (claims are atomic, so drains never double-sign).
 * Operators get retries, stalled-job recovery and a queue they can inspect.
 */
export class BullmqJobEngine implements JobEngine {
  readonly kind = 'bullmq' as const;
  private readonly queue: Queue;
  private worker: Worker | undefined;
  private events: QueueEvents | undefined;
  private readonly prefix: string;
  private readonly connections: RedisClient[] = [];

  constructor(
    private readonly processors: Processors,
    private readonly o: BullmqEngineOptions,
  ) {
    this.prefix = `{${o.prefix.replace(/[{}:]+$/, '')}-bull}`;
    this.queue = new Queue(QUEUE, { connection: this.conn(), prefix: this.prefix });
    this.queue.on('error', (err) => o.logger.warn({ err: err.message }, 'job queue error'));
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
    await this.queue.upsertJobScheduler(
      'refresh-tick',
      { every: this.o.tickMs },
      { name: 'refresh-tick', opts: jobOpts },
    );
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
    this.worker = new Worker(QUEUE, (job) => this.process(job), {
      connection: this.conn(),
      prefix: this.prefix,
      concurrency: MAX_DRAINS + 1,
      lockDuration: 30_000,
      stalledInterval: 15_000,
    });
    this.worker.on('error', (err) => this.o.logger.warn({ err: err.message }, 'job worker error'));
    this.worker.on('failed', (job, err) =>
      this.o.logger.warn({ job: job?.name, err: err.message }, 'job failed'),
    );
  }

  private async process(job: Job): Promise<unknown> {
    switch (job.name) {
      case 'refresh-tick': {
        const { backlog } = await this.processors.observe();
        if (backlog === 0) return { backlog };
        const drains = Math.min(MAX_DRAINS, Math.ceil(backlog / this.o.batchSize));
        // Job ids per slot and per few ticks: a drain still queued or running is not queued
        // twice, yet a drain left active by a worker SIGKILLed mid-drain (locked until BullMQ's
        // stalled check, tens of seconds later) blocks its slot for a few ticks only. An extra
        // drain costs one claim round trip, never a double signing (claims are leased).
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
      case 'refresh-drain':
        return this.processors.refreshSweep();
      case 'stats-rollup':
        return this.processors.statsRollup();
      case 'orphan-sweep':
        return this.processors.orphanSweep();
      case 'preload':
        return this.processors.preload((job.data as { ids: string[] }).ids);
      default:
        throw new Error(`unknown job ${job.name}`);
    }
  }

  async preload(ids: readonly string[]): Promise<number> {
    if (!this.events) {
      this.events = new QueueEvents(QUEUE, { connection: this.conn(), prefix: this.prefix });
      await this.events.waitUntilReady();
    }
    const job = await this.queue.add(
      'preload',
      { ids },
      { attempts: 3, backoff: { type: 'exponential', delay: 200 }, removeOnComplete: 100, removeOnFail: 100 },
    );
    return (await job.waitUntilFinished(this.events, 60_000)) as number;
  }

  async stop(): Promise<void> {
    await this.worker?.close();
    await this.events?.close();
    await this.queue.close();
    for (const c of this.connections) c.disconnect();
  }
}
