import { createServer } from 'node:http';
import { createApp } from './app.js';
import { systemClock } from './clock.js';
import { ConfigError, loadConfig } from './config.js';
import { createDependencies } from './deps.js';
import { gracefulShutdown } from './http/graceful-shutdown.js';
import { createLogger } from './logger.js';
import { createMetrics } from './metrics.js';
import { seedImages } from './seed.js';

// config -> dependencies -> app -> listen; graceful shutdown on SIGTERM/SIGINT.
async function main(): Promise<void> {
  let config: ReturnType<typeof loadConfig>;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(`signet: invalid configuration: ${err.message}`);
      process.exit(78);
    }
    throw err;
  }
  const logger = createLogger(config.logLevel);
  if (config.auth.disabled) {
    logger.warn(
      'AUTH IS OFF: no AUTH_JWT_SECRET or AUTH_JWKS_URL, every request acts as the admin user "demo"',
    );
  }
  const clock = systemClock;
  const deps = await createDependencies(config, logger, clock);
  const app = createApp({
    config,
    db: deps.db,
    store: deps.store,
    storage: deps.storage,
    events: deps.events,
    stats: deps.stats,
    refreshLimiter: deps.refreshLimiter,
    ...(deps.jobEngine ? { jobEngine: deps.jobEngine } : {}),
    clock,
    logger,
    metrics: createMetrics({ defaultMetrics: true }),
  });

  if (config.seedDemo) {
    const owner = 'demo';
    if ((await app.services.images.countLive(owner)) === 0) {
      const ids = await seedImages({
        storage: deps.storage,
        images: app.services.images,
        clock,
        ownerId: owner,
        count: config.seedDemoCount,
      });
      logger.info({ count: ids.length }, 'seeded demo images');
    }
  }

  const server = createServer(app.handle);
  server.keepAliveTimeout = 65_000;
  await app.start();
  await new Promise<void>((resolve) => server.listen(config.port, config.host, resolve));
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : config.port;
  logger.info(
    { port, database: deps.db.kind, cache: deps.store.kind, storage: deps.storage.driver, role: config.role },
    `signet listening on http://localhost:${port}`,
  );

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    // The bound: orchestrators SIGKILL after 10 s (Docker, Kubernetes' default is 30 s).
    const force = setTimeout(() => {
      logger.error('shutdown took too long; exiting');
      process.exit(1);
    }, 10_000);
    force.unref();
    const drained = await gracefulShutdown({
      server,
      drain: () => app.drain(),
      stopApp: () => app.stop(),
      closeDeps: () => deps.close(),
      logger,
      graceMs: 7_000,
    });
    clearTimeout(force);
    logger.info({ drained }, 'stopped');
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
}

main().catch((err) => {
  console.error('signet: failed to start:', err);
  process.exit(1);
});
