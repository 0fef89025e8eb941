import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { BullmqJobEngine, bullPrefix, QUEUE } from '../../src/jobs/bullmq-engine.js';
import type { Processors } from '../../src/jobs/job-engine.js';
import { createRedisClient } from '../../src/redis/connect.js';
import { createTestDatabase } from '../support/database.js';
import { GatewayProcess } from '../support/gateway-process.js';
import { captureLogger } from '../support/logs.js';
import { freePort } from '../support/ports.js';
import { waitFor } from '../support/proxy.js';
import { OwnedRedis } from '../support/redis-server.js';

// The BullMQ engine against a private redis-server that a test starts late, flushes or keeps
// away: a worker node must not wait for Redis to start, must put back the job schedulers Redis
// lost, and must not log BullMQ's reconnect errors many times a second.

/** The recurring jobs a worker node of this configuration schedules. */
const SCHEDULERS = ['deleted-row-purge', 'orphan-sweep', 'placeholder-backfill', 'stats-rollup'];

/** Processors that only count their runs. */
function countingProcessors() {
  const runs = { orphanSweep: 0, placeholderBackfill: 0, statsRollup: 0 };
  const processors = {
    refreshSweep: async () => ({}),
    observe: async () => ({ backlog: 0, lagSeconds: 0 }),
    statsRollup: async () => {
      runs.statsRollup++;
    },
    preload: async () => 0,
    orphanSweep: async () => {
      runs.orphanSweep++;
      return {};
    },
    placeholderBackfill: async () => {
      runs.placeholderBackfill++;
      return {};
    },
    makeVariants: async () => 'none' as const,
    variantsBackfill: async () => undefined,
    replicationCheck: async () => ({}),
  } as unknown as Processors;
  return { processors, runs };
}

/** The job schedulers' ids and next runs, as BullMQ keeps them (its `repeat` sorted set). */
async function schedulers(client: Redis, redisPrefix: string): Promise<Map<string, number>> {
  const flat = await client.zrange(`${bullPrefix(redisPrefix)}:${QUEUE}:repeat`, 0, -1, 'WITHSCORES');
  const out = new Map<string, number>();
  for (let i = 0; i < flat.length; i += 2) out.set(flat[i]!, Number(flat[i + 1]));
  return out;
}

const lines = (logs: string[], msg: string) => logs.filter((l) => JSON.parse(l).msg === msg);

/** `p`, or a failure naming `what` when it takes over `ms`. */
async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

describe('BullMQ job schedulers and Redis going away (real redis-server)', () => {
  let redis: OwnedRedis | undefined;
  let engine: BullmqJobEngine | undefined;
  const clients: Redis[] = [];

  afterEach(async () => {
    // Bounded, so the private redis-server is stopped even when a failing test left a stop hung.
    try {
      if (engine) await within(engine.stop(), 20_000, 'engine.stop');
    } finally {
      engine = undefined;
      for (const c of clients.splice(0)) c.disconnect();
      await redis?.kill();
      redis = undefined;
    }
  });

  /** An engine as container.ts builds it, against `redis`, counting its connections' errors. */
  function makeEngine(r: OwnedRedis, o: { schedulerCheckMs?: number } = {}) {
    const { logger, logs } = captureLogger();
    const { processors, runs } = countingProcessors();
    const prefix = `signet-sched-${randomBytes(4).toString('hex')}:`;
    const counted = { errors: 0 };
    engine = new BullmqJobEngine(processors, {
      connect: () => {
        const c = createRedisClient({ url: r.url, clusterNodes: [], commandTimeoutMs: 250, blocking: true });
        c.on('error', () => counted.errors++);
        return c;
      },
      prefix,
      tickMs: 1000,
      batchSize: 500,
      maxWaitingPreloads: 10,
      orphanSweepMs: 600_000,
      deletedRowPurgeMs: 3_600_000,
      placeholderBackfillMs: 600_000,
      logger,
      ...o,
    });
    return { engine, logs, runs, prefix, counted };
  }

  const assertionClient = (r: OwnedRedis) => {
    const c = r.client();
    clients.push(c);
    return c;
  };

  it('starts its workers at once while Redis is down, and sets the schedulers once it answers', async () => {
    redis = new OwnedRedis(await freePort());
    const e = makeEngine(redis);
    // Old code: startWorkers awaited the scheduler upserts, which wait for Redis: never resolved.
    await within(e.engine.startWorkers(), 2000, 'startWorkers with Redis down');
    await waitFor(
      () =>
        lines(e.logs, 'job schedulers not set yet: Redis is unreachable; this node sets them once it answers')
          .length > 0,
    );

    await redis.start();
    const client = assertionClient(redis);
    await waitFor(async () => (await schedulers(client, e.prefix)).size === SCHEDULERS.length, 10_000);
    expect([...(await schedulers(client, e.prefix)).keys()].sort()).toEqual(SCHEDULERS);
    // The workers came up by themselves: a new scheduler's first job runs at once.
    await waitFor(() => e.runs.orphanSweep > 0 && e.runs.placeholderBackfill > 0, 10_000);
    expect(lines(e.logs, 'Redis reachable: job schedulers set')).toHaveLength(1);
    // One warning for the whole wait, however many reconnect attempts failed.
    expect(e.counted.errors).toBeGreaterThan(1);
    expect(
      lines(e.logs, 'job schedulers not set yet: Redis is unreachable; this node sets them once it answers'),
    ).toHaveLength(1);
  });

  it('re-creates the schedulers within the check period after a FLUSHALL, without moving the next runs', async () => {
    redis = await OwnedRedis.start();
    const e = makeEngine(redis, { schedulerCheckMs: 200 });
    await e.engine.startWorkers();
    const client = assertionClient(redis);
    await waitFor(async () => (await schedulers(client, e.prefix)).size === SCHEDULERS.length);
    // Every first run taken (each moves its scheduler's next run), before the next runs are read.
    await waitFor(
      () => e.runs.orphanSweep === 1 && e.runs.placeholderBackfill === 1 && e.runs.statsRollup === 1,
    );
    const before = await schedulers(client, e.prefix);
    // Several checks go by: a scheduler that is there is left alone (its next run stays).
    await new Promise((r) => setTimeout(r, 1000));
    expect(await schedulers(client, e.prefix)).toEqual(before);
    expect(e.runs.orphanSweep).toBe(1);

    // Redis loses everything without a reconnect (the key-leak procedure's FLUSHDB).
    await client.flushall();
    await waitFor(async () => (await schedulers(client, e.prefix)).size === SCHEDULERS.length, 2000);
    // Re-created as on a first start: the sweep runs again at once, on the same worker.
    await waitFor(() => e.runs.orphanSweep === 2, 5000);
    expect(
      lines(
        e.logs,
        'job schedulers were missing from Redis (it lost its data: a restart without persistence, a FLUSHDB); re-created',
      ),
    ).toHaveLength(1);
  });

  it('re-creates them on the reconnect after Redis restarts without its data', async () => {
    redis = await OwnedRedis.start();
    // A check period far beyond the test: only the reconnect can put them back.
    const e = makeEngine(redis, { schedulerCheckMs: 3_600_000 });
    await e.engine.startWorkers();
    const client = assertionClient(redis);
    await waitFor(async () => (await schedulers(client, e.prefix)).size === SCHEDULERS.length);

    await redis.kill();
    await redis.start();
    await waitFor(
      async () => (await schedulers(client, e.prefix).catch(() => new Map())).size === SCHEDULERS.length,
      10_000,
    );
    await waitFor(() => e.runs.orphanSweep === 2, 10_000);
  });

  it('logs BullMQ errors during an outage once a minute per source, saying Redis is unreachable', async () => {
    redis = new OwnedRedis(await freePort());
    const e = makeEngine(redis);
    // Not awaited: this test is about the log, whether or not startWorkers waits for Redis. Redis
    // stays away for the whole test: a BullMQ worker that was connected once does not close while
    // Redis is away (its failed fetch retries every 15 s, and close waits for it).
    e.engine.startWorkers().catch(() => {});
    // Reconnect attempts of the queues' and the workers' connections fail several times a second.
    await new Promise((r) => setTimeout(r, 3000));
    const msgs = (prefix: string) =>
      e.logs.map((l) => JSON.parse(l).msg as string).filter((m) => m.startsWith(prefix));
    expect(msgs('job queue error')).toEqual(['job queue error: Redis is unreachable']);
    expect(msgs('job worker error')).toEqual(['job worker error: Redis is unreachable']);
    expect(e.counted.errors).toBeGreaterThan(10);
  });

  it('stops within a few seconds when Redis went away after it connected (a SIGTERM during an outage)', async () => {
    redis = await OwnedRedis.start();
    const e = makeEngine(redis);
    await e.engine.startWorkers();
    const client = assertionClient(redis);
    await waitFor(async () => (await schedulers(client, e.prefix)).size === SCHEDULERS.length);
    await redis.kill();
    // The engine has seen Redis go (a SIGTERM during an outage), not a stop racing the kill.
    const seen = e.counted.errors;
    await waitFor(() => e.counted.errors > seen, 5000);
    // Old code: Worker.close() waited for a fetch retried every 15 s: the node's 10 s stop bound
    // (main.ts) ran out and it exited 1.
    const started = performance.now();
    await within(e.engine.stop(), 8000, 'engine.stop with Redis gone');
    // No job was running: the workers' forced close (at most 2 s each, together) is all it waits.
    expect(performance.now() - started).toBeLessThan(3500);
    engine = undefined;
  });

  it('a gateway of role all started while Redis is down listens at once, and runs its jobs once Redis answers', async () => {
    redis = new OwnedRedis(await freePort());
    const db = await createTestDatabase();
    const redisPrefix = `signet-sched-gw-${randomBytes(4).toString('hex')}:`;
    let gw: GatewayProcess | undefined;
    try {
      // Old code: c.start() waited for the schedulers, so /healthz never answered.
      gw = await GatewayProcess.start(
        {
          DATABASE_URL: db.url,
          STORAGE_DRIVER: 'local',
          REDIS_URL: redis.url,
          REDIS_PREFIX: redisPrefix,
          SIGNET_ROLE: 'all',
          LOG_LEVEL: 'info',
        },
        20_000,
      );
      await redis.start();
      const client = assertionClient(redis);
      await waitFor(async () => (await schedulers(client, redisPrefix)).size === SCHEDULERS.length, 10_000);
      const g = gw;
      await waitFor(() => g.logs.some((l) => l.includes('Redis reachable: job schedulers set')), 5000);
      expect((await fetch(`${gw.url}/healthz`)).status).toBe(200);
    } finally {
      await gw?.stop();
      await db.drop();
    }
  });
});
