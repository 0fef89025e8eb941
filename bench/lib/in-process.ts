import { loadConfig } from '../../server/src/config.js';
import { createContainer } from '../../server/src/container.js';
import type { RedisEventBus } from '../../server/src/events/redis-bus.js';
import { createLogger } from '../../server/src/logger.js';
import { type Endpoints, gatewayEnv } from './config.js';

/**
 * A worker node built by the product's composition root (Redis store, Redis event bus, every
 * signing published), in the coordinator: scenario 9 refreshes through it, scenario 8 seeds the
 * schedule with its store. Nothing is started: no sweeps, timers or heartbeats of its own.
 */
export async function inProcessWorker(e: Endpoints) {
  const config = loadConfig(gatewayEnv(e, { SIGNET_ROLE: 'worker', REDIS_COMMAND_TIMEOUT_MS: '5000' }));
  const c = await createContainer(config, { logger: createLogger('warn') });
  const redis = c.redis!;
  return {
    /** Resolves once the command connection is up (commands fail fast until then). */
    ready: () =>
      redis.status === 'ready' ? Promise.resolve() : new Promise<void>((r) => redis.once('ready', () => r())),
    redis,
    store: c.store,
    storage: c.storage,
    urls: c.urls,
    events: c.events as RedisEventBus,
    close: () => c.close(),
  };
}
