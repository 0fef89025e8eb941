import path from 'node:path';
import type { Clock } from './clock.js';
import type { Config } from './config.js';
import { type Db, type DbOptions, openDatabase } from './db/connect.js';
import type { EventBus } from './events/event-bus.js';
import { MemoryEventBus } from './events/memory-bus.js';
import { RedisEventBus } from './events/redis-bus.js';
import { BullmqJobEngine } from './jobs/bullmq-engine.js';
import { type JobEngine, type Processors, tickInterval } from './jobs/job-engine.js';
import type { Logger } from './logger.js';
import { createMemoryRateLimiter, createRedisRateLimiter, type RateLimiter } from './rate-limit.js';
import { createRedisClient, quietErrors, type RedisClient } from './redis/connect.js';
import { MemoryStatsStore } from './stats/memory-stats.js';
import { RedisStatsStore } from './stats/redis-stats.js';
import type { StatsStore } from './stats/stats-store.js';
import { createCosStorage } from './storage/cos.js';
import { createLocalStorage } from './storage/local.js';
import type { Storage } from './storage/storage.js';
import { MemoryUrlStore } from './urls/memory-store.js';
import { RedisUrlStore } from './urls/redis-store.js';
import type { UrlStore } from './urls/store.js';

export interface Dependencies {
  db: Db;
  store: UrlStore;
  storage: Storage;
  redis: RedisClient | undefined;
  events: EventBus;
  stats: StatsStore;
  refreshLimiter: RateLimiter;
  jobEngine: ((processors: Processors) => JobEngine) | undefined;
  close(): Promise<void>;
}

export function createStorage(config: Config): Storage {
  if (config.storageDriver === 'cos') {
    return createCosStorage({
      secretId: config.cos.secretId,
      secretKey: config.cos.secretKey,
      securityToken: config.cos.securityToken,
      bucket: config.cos.bucket,
      region: config.cos.region,
      domain: config.cos.domain,
      protocol: config.cos.protocol,
    });
  }
  return createLocalStorage({
    root: path.join(config.dataDir, 'bucket'),
    publicUrl: config.publicUrl,
    secret: config.localSigningSecret,
  });
}

/** Redis (or Redis Cluster) when configured, else the bounded in-process cache. */
export function createStore(
  config: Config,
  logger: Logger,
  clock: Clock,
): { store: UrlStore; redis: RedisClient | undefined } {
  if (!config.redisUrl && config.redisClusterNodes.length === 0) {
    return { store: new MemoryUrlStore(clock, config.memoryCacheMaxEntries), redis: undefined };
  }
  let lastLogged = 0;
  const redis = quietErrors(
    createRedisClient({
      url: config.redisUrl,
      clusterNodes: config.redisClusterNodes,
      commandTimeoutMs: config.redisCommandTimeoutMs,
    }),
    (err) => {
      // Reconnect attempts fail many times a second while Redis is down: log one a minute.
      if (Date.now() - lastLogged > 60_000) {
        lastLogged = Date.now();
        logger.warn({ err: err.message }, 'redis connection error (requests fall back to direct signing)');
      }
    },
  );
  return { store: new RedisUrlStore(redis, config.redisPrefix, config.redisCommandTimeoutMs * 2), redis };
}

/** Opens what the config names: PostgreSQL or PGlite, Redis or the in-process cache, a storage driver. */
export async function createDependencies(
  config: Config,
  logger: Logger,
  clock: Clock,
  options: { onQuery?: DbOptions['onQuery'] } = {},
): Promise<Dependencies> {
  const db = await openDatabase({
    databaseUrl: config.databaseUrl,
    dataDir: config.dataDir,
    ...(options.onQuery ? { onQuery: options.onQuery } : {}),
  });
  const { store, redis } = createStore(config, logger, clock);
  const storage = createStorage(config);
  const limit = { limit: config.refreshRateLimitPerMinute, windowMs: 60_000 };
  if (!redis) {
    return {
      db,
      store,
      storage,
      redis,
      events: new MemoryEventBus(),
      stats: new MemoryStatsStore(),
      refreshLimiter: createMemoryRateLimiter(clock, limit),
      jobEngine: undefined,
      async close() {
        await store.close();
        await db.close();
      },
    };
  }
  const blocking = () =>
    quietErrors(
      createRedisClient({
        url: config.redisUrl,
        clusterNodes: config.redisClusterNodes,
        commandTimeoutMs: config.redisCommandTimeoutMs,
        blocking: true,
      }),
    );
  const events = new RedisEventBus(redis, blocking(), `${config.redisPrefix}events`, logger);
  return {
    db,
    store,
    storage,
    redis,
    events,
    stats: new RedisStatsStore(redis, config.redisPrefix),
    refreshLimiter: createRedisRateLimiter(redis, config.redisPrefix, clock, limit),
    jobEngine: (processors) =>
      new BullmqJobEngine(processors, {
        connect: blocking,
        prefix: config.redisPrefix,
        tickMs: tickInterval(config.refreshAheadSeconds),
        batchSize: 500,
        logger,
      }),
    async close() {
      await events.close();
      await store.close();
      redis.disconnect();
      await db.close();
    },
  };
}
