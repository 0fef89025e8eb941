import { createServer } from 'node:http';
import path from 'node:path';
import { type Config, ConfigError, loadConfig } from './config.js';
import { createContainer } from './container.js';
import { seedDemoPhotos } from './demo-photos.js';
import { logAcceptErrors } from './http/accept-errors.js';
import { createHttpApp } from './http/app.js';
import { gracefulShutdown } from './http/graceful-shutdown.js';
import { StartFailure } from './lib/start-failure.js';

function configOrExit(): Config {
  try {
    return loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(`signet: invalid configuration: ${err.message}`);
      process.exit(78);
    }
    throw err;
  }
}

/**
 * A failed listen as one line naming PORT or HOST, with 78 when the configuration must change
 * (an address this machine does not have, a host that does not resolve, a privileged port) and
 * 1 when a retry may succeed (the port is taken, perhaps by a node still stopping).
 */
function listenFailure(err: NodeJS.ErrnoException, config: Pick<Config, 'port' | 'host'>) {
  const at = `PORT=${config.port} on HOST=${config.host}`;
  switch (err.code) {
    case 'EADDRINUSE':
      return {
        exitCode: 1,
        message: `cannot listen on ${at}: the port is in use (stop the other process or set PORT)`,
      };
    case 'EACCES':
      return {
        exitCode: 78,
        message: `cannot listen on ${at}: permission denied (ports below 1024 need privileges; set PORT)`,
      };
    case 'EADDRNOTAVAIL':
      return {
        exitCode: 78,
        message: `cannot listen on ${at}: HOST is not an address of this machine (set HOST, e.g. 0.0.0.0)`,
      };
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
    case 'EAI_NONAME':
      return {
        exitCode: 78,
        message: `cannot listen on ${at}: HOST does not resolve (${err.code}; set HOST to an address or a resolvable name)`,
      };
    default:
      return { exitCode: 1, message: `cannot listen on ${at}: ${err.message}` };
  }
}

// config -> container -> http server -> listen; graceful shutdown on SIGTERM/SIGINT.
async function main(): Promise<void> {
  const config = configOrExit();
  // A node that lost its embedded database stops (exit 1): it could only answer 503 from then on,
  // and an orchestrator restarts a process that exits. Lost before shutdown is defined (below,
  // while starting): remembered, and the stop begins as soon as it can.
  let lostEarly = false;
  let stopFor: (why: string) => void = () => {
    lostEarly = true;
  };
  const c = await createContainer(config, { onDatabaseLost: () => stopFor('embedded database lost') });
  const { logger } = c;
  if (config.auth.disabled) {
    logger.warn(
      'AUTH IS OFF: no AUTH_JWT_SECRET or AUTH_JWKS_URL, every request acts as the admin user "demo"',
    );
  }
  // Only while the demo user has no image: a restart seeds nothing (docs/architecture.md,
  // "The upload pipeline", Demo data).
  if (config.seedDemo && (await c.imagesRepo.countLive('demo')) === 0) {
    await seedDemoPhotos({
      storage: c.storage,
      images: c.imagesRepo,
      clock: c.clock,
      logger,
      ownerId: 'demo',
      count: config.seedDemoCount,
      cacheDir: path.join(config.dataDir, 'demo-photos'),
      limits: { maxPixels: config.uploadMaxPixels, timeoutSeconds: config.placeholderTimeoutSeconds },
    });
  }

  const app = createHttpApp(c);
  const server = createServer(app.handle);
  server.keepAliveTimeout = 65_000;
  await c.start();
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(config.port, config.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (err) {
    const failed = listenFailure(err as NodeJS.ErrnoException, config);
    console.error(`signet: failed to start: ${failed.message}`);
    // Workers were started and the database is open: release them as a stop does.
    app.close();
    await c.close().catch(() => {});
    process.exit(failed.exitCode);
  }
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : config.port;
  logger.info(
    { port, database: c.db.kind, cache: c.store.kind, storage: c.storage.driver, role: config.role },
    `signet listening on http://localhost:${port}`,
  );

  let stopping = false;
  const shutdown = async (signal: string, exitCode = 0) => {
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
      close: async () => {
        app.close();
        await c.close();
      },
      logger,
      graceMs: 7_000,
    });
    clearTimeout(force);
    logger.info({ drained }, 'stopped');
    process.exit(exitCode);
  };
  stopFor = (why) => void shutdown(why, 1);
  logAcceptErrors(server, logger, stopFor);
  if (lostEarly) stopFor('embedded database lost');
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
}

main().catch((err) => {
  // Another process holds the embedded database, PostgreSQL cannot be reached, …: the message
  // says what to do; a stack would bury it.
  if (err instanceof StartFailure) console.error(`signet: failed to start: ${err.message}`);
  else console.error('signet: failed to start:', err);
  process.exit(1);
});
