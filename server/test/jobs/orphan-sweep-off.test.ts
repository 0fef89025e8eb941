import { randomBytes } from 'node:crypto';
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { BullmqJobEngine, bullPrefix, QUEUE } from '../../src/jobs/bullmq-engine.js';
import type { Processors } from '../../src/jobs/job-engine.js';
import { createRedisClient } from '../../src/redis/connect.js';
import { testRedisUrl } from '../support/env.js';
import { captureLogger } from '../support/logs.js';
import { waitFor } from '../support/proxy.js';

// ORPHAN_SWEEP_INTERVAL_SECONDS=0 on a worker node: that node never sweeps. Its scheduler is
// one for the whole queue, so another worker configured with an interval keeps queuing
// `orphan-sweep` jobs that any worker takes; a node set to 0 completes such a job without
// sweeping. And a scheduler an earlier configuration of this deployment left in Redis is removed
// when a node set to 0 starts. Against the shared test Redis, under a prefix of this file's own.

const SKIPPED = 'orphan sweep job skipped: this node has the sweep off (ORPHAN_SWEEP_INTERVAL_SECONDS=0)';

const msgs = (logs: string[]) => logs.map((l) => JSON.parse(l).msg as string);

describe('an orphan sweep interval of 0 on a BullMQ worker node', () => {
  const engines: BullmqJobEngine[] = [];
  const queues: Queue[] = [];
  const clients: Redis[] = [];
  const prefixes: string[] = [];

  /** A connection as container.ts makes them, cut after each test. */
  const connect = () => {
    const c = createRedisClient({
      url: testRedisUrl(),
      clusterNodes: [],
      commandTimeoutMs: 1000,
      blocking: true,
    });
    c.on('error', () => {});
    clients.push(c as unknown as Redis);
    return c;
  };

  afterEach(async () => {
    await Promise.all(engines.splice(0).map((e) => e.stop()));
    await Promise.all(queues.splice(0).map((q) => q.close()));
    // The test's keys go with it (the Redis is shared).
    const c = connect() as unknown as Redis;
    for (const p of prefixes.splice(0)) {
      const keys = await c.keys(`${bullPrefix(p)}:*`);
      if (keys.length > 0) await c.del(...keys);
    }
    for (const x of clients.splice(0)) x.disconnect();
  });

  function newPrefix(): string {
    const p = `signet-sweep-off-${randomBytes(4).toString('hex')}:`;
    prefixes.push(p);
    return p;
  }

  /** A worker node's engine as container.ts builds it, counting its sweeps. */
  function worker(prefix: string, orphanSweepMs: number) {
    const { logger, logs } = captureLogger();
    const runs = { orphanSweep: 0 };
    const processors = {
      refreshSweep: async () => ({}),
      observe: async () => ({ backlog: 0, lagSeconds: 0 }),
      statsRollup: async () => {},
      preload: async () => 0,
      orphanSweep: async () => {
        runs.orphanSweep++;
        return {};
      },
      placeholderBackfill: async () => ({}),
      makeVariants: async () => 'none' as const,
      variantsBackfill: async () => undefined,
      replicationCheck: async () => ({}),
      deletedRowPurge: async () => ({}),
    } as unknown as Processors;
    const engine = new BullmqJobEngine(processors, {
      connect,
      prefix,
      tickMs: 1000,
      batchSize: 500,
      maxWaitingPreloads: 10,
      orphanSweepMs,
      placeholderBackfillMs: 0,
      logger,
    });
    engines.push(engine);
    return { engine, logs, runs };
  }

  /** The queue as another node sees it (its scheduler adds jobs the same way). */
  function queueOf(prefix: string): Queue {
    const q = new Queue(QUEUE, { connection: connect() as never, prefix: bullPrefix(prefix) });
    q.on('error', () => {});
    queues.push(q);
    return q;
  }

  const schedulerIds = async (q: Queue) => (await q.getJobSchedulers()).map((s) => s.key).sort();

  it('completes a sweep job another node queued without sweeping, and says so at info', async () => {
    const prefix = newPrefix();
    const off = worker(prefix, 0);
    await off.engine.startWorkers();
    // Its own schedulers set (the sweep's is not among them, and stays removed).
    await waitFor(() => msgs(off.logs).includes('job schedulers set'), 10_000);
    const q = queueOf(prefix);
    expect(await schedulerIds(q)).toEqual(['stats-rollup']);

    // A job as another worker's scheduler (ORPHAN_SWEEP_INTERVAL_SECONDS=600) queues it; the
    // node set to 0 is the only worker listening.
    const job = await q.add('orphan-sweep', {}, { removeOnFail: 100 });
    await waitFor(async () => (await q.getJobState(job.id!)) === 'completed', 10_000);
    expect(off.runs.orphanSweep).toBe(0);
    const line = off.logs.map((l) => JSON.parse(l)).find((l) => l.msg === SKIPPED);
    expect(line).toMatchObject({ level: 30, job: job.id });
    expect((await q.getJob(job.id!))?.returnvalue).toEqual({ skipped: 'orphan sweep off on this node' });
  });

  it('a node with an interval sweeps the same job (the control)', async () => {
    const prefix = newPrefix();
    const on = worker(prefix, 3_600_000);
    await on.engine.startWorkers();
    // A new scheduler's first job runs at once.
    await waitFor(() => on.runs.orphanSweep === 1, 10_000);
    expect(msgs(on.logs)).not.toContain(SKIPPED);
  });

  it('a node started with 0 removes the sweep scheduler an earlier configuration left in Redis', async () => {
    const prefix = newPrefix();
    const before = worker(prefix, 3_600_000);
    await before.engine.startWorkers();
    await waitFor(() => before.runs.orphanSweep === 1, 10_000);
    const q = queueOf(prefix);
    expect(await schedulerIds(q)).toEqual(['orphan-sweep', 'stats-rollup']);
    // Its next run waits in the delayed set.
    const delayedSweeps = async () =>
      (await q.getDelayed()).filter((j) => j.name === 'orphan-sweep').map((j) => j.id);
    await waitFor(async () => (await delayedSweeps()).length === 1, 10_000);
    await before.engine.stop();
    engines.splice(engines.indexOf(before.engine), 1);

    // Restarted with ORPHAN_SWEEP_INTERVAL_SECONDS=0.
    const after = worker(prefix, 0);
    await after.engine.startWorkers();
    await waitFor(() => msgs(after.logs).includes('job schedulers set'), 10_000);
    expect(await schedulerIds(q)).toEqual(['stats-rollup']);
    expect(await delayedSweeps()).toEqual([]);
    expect(after.runs.orphanSweep).toBe(0);
  });
});
