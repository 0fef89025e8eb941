import { systemClock } from '../../server/src/clock.js';
import { RedisEventBus } from '../../server/src/events/redis-bus.js';
import { wireFreshness } from '../../server/src/freshness.js';
import { createLogger } from '../../server/src/logger.js';
import { createMetrics } from '../../server/src/metrics.js';
import { createRedisClient, quietErrors } from '../../server/src/redis/connect.js';
import { MemoryStatsStore } from '../../server/src/stats/memory-stats.js';
import { createCosStorage } from '../../server/src/storage/cos.js';
import { AccessTracker } from '../../server/src/urls/access-tracker.js';
import { RedisUrlStore } from '../../server/src/urls/redis-store.js';
import { UrlService } from '../../server/src/urls/url-service.js';
import { COS, type Endpoints } from './config.js';

/**
 * The product's URL service wired like a worker node (Redis store, Redis event bus, every
 * signing published), in the coordinator: scenario 9 refreshes through it, scenario 8 seeds the
 * schedule with its store.
 */
export function inProcessWorker(e: Endpoints) {
  const logger = createLogger('warn');
  const metrics = createMetrics();
  const clock = systemClock;
  const redis = quietErrors(createRedisClient({ url: e.redisUrl, clusterNodes: [], commandTimeoutMs: 5000 }));
  const subscriber = quietErrors(
    createRedisClient({ url: e.redisUrl, clusterNodes: [], commandTimeoutMs: 5000, blocking: true }),
  );
  const store = new RedisUrlStore(redis, 'signet:', 10_000);
  const storage = createCosStorage({ ...COS, domain: e.cosHost, protocol: 'http:' });
  const access = new AccessTracker(store, logger, clock);
  const urls = new UrlService({
    storage,
    store,
    clock,
    metrics,
    logger,
    access,
    timing: { urlTtlSeconds: 3600, refreshAheadSeconds: 900, defaultMinTtlSeconds: 300 },
  });
  const events = new RedisEventBus(redis, subscriber, 'signet:events', logger);
  wireFreshness({ urls, events, access, stats: new MemoryStatsStore(), metrics, clock, logger });
  return {
    /** Resolves once the command connection is up (commands fail fast until then). */
    ready: () =>
      redis.status === 'ready' ? Promise.resolve() : new Promise<void>((r) => redis.once('ready', () => r())),
    redis,
    store,
    storage,
    urls,
    events,
    async close() {
      await events.close();
      redis.disconnect();
    },
  };
}
