import { createServer } from 'node:http';
import { createApp } from './app.js';
import { systemClock } from './clock.js';
import { ConfigError, loadConfig } from './config.js';
import { createDependencies } from './deps.js';
import { createLogger } from './logger.js';
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
  const app = createApp({ config, ...deps, clock, logger });

  if (config.seedDemo) {
    const owner = 'demo';
    if ((await app.services.images.countLive(owner)) === 0) {
      const ids = await seedImages({
        storage: deps.storage,
        images: app.services.images,
        clock,
        ownerId: owner,
        count: 8,
      });
      logger.info({ count: ids.length }, 'seeded demo images');
    }
  }

  const server = createServer(app.handle);
  server.keepAliveTimeout = 65_000;
  app.start();
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
    const force = setTimeout(() => {
      logger.error('shutdown took too long; exiting');
      process.exit(1);
    }, 10_000);
    force.unref();
    server.close();
    server.closeIdleConnections();
    await app.stop();
    await deps.close();
    clearTimeout(force);
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
}

main().catch((err) => {
  console.error('signet: failed to start:', err);
  process.exit(1);
});
