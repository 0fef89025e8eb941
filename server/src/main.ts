import { createServer, type Server } from 'node:http';
import { constants } from 'node:os';
import path from 'node:path';
import { type Config, ConfigError, loadConfig } from './config.js';
// Types only: the modules themselves are loaded once the signal handlers are set (main).
import type { Container } from './container.js';
import { logAcceptErrors } from './http/accept-errors.js';
import type { HttpApp } from './http/app.js';
import { gracefulShutdown, trackConnections } from './http/graceful-shutdown.js';
import { StartFailure } from './lib/start-failure.js';
import { createLogger } from './logger.js';

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

/**
 * The bound on a stop once it is under way (after SHUTDOWN_DELAY_SECONDS), or on a start a signal
 * stopped: orchestrators SIGKILL after 10 s (Docker; Kubernetes' default is 30 s).
 */
const STOP_BOUND_MS = 10_000;
/** A second signal this soon after the first, of the same name, is the first one delivered twice. */
const REPEAT_MS = 1000;

type StopSignal = 'SIGTERM' | 'SIGINT';

// config -> signal handlers -> container -> http server -> listen; graceful shutdown on
// SIGTERM/SIGINT, a second one exits at once (docs/operations.md, "Health, readiness, shutdown").
async function main(): Promise<void> {
  const config = configOrExit();
  const logger = createLogger(config.logLevel);

  // Signals first, before the modules that take most of the start to load: a SIGTERM during
  // start-up (a rollout stopped, a node scaled away) is logged and ends the start after the step
  // under way, instead of killing the process unheard (exit 143).
  /** Why the process is stopping (a signal, a lost database), once it is. */
  let stopping: string | undefined;
  /** The stop of a node that is listening; until then a signal stops the start. */
  let stopServing: ((signal: StopSignal) => void) | undefined;
  let force: NodeJS.Timeout | undefined;
  const bound = (ms: number, what: string) => {
    force = setTimeout(() => {
      logger.error(`${what} took too long; exiting`);
      process.exit(1);
    }, ms);
    force.unref();
  };
  let firstSignalAt = 0;
  const onSignal = (signal: StopSignal) => {
    if (stopping !== undefined && signal === stopping && performance.now() - firstSignalAt < REPEAT_MS) {
      // The same signal twice at once is one Ctrl-C: the terminal sends SIGINT to the whole
      // process group and `npm start` forwards it to node again. Not the operator's way out.
      logger.info({ signal }, 'the same signal again at once: taken as the first');
      return;
    }
    if (stopping !== undefined) {
      // The operator's way out of a drain (a delay, a download) or a start that hangs: 128 + the
      // signal's number, as a shell reports a process that signal ended (130, 143).
      logger.warn({ signal, stopping }, 'second signal: exiting now, without finishing the stop');
      process.exit(128 + constants.signals[signal]);
    }
    if (stopServing) return stopServing(signal);
    stopping = signal;
    firstSignalAt = performance.now();
    logger.info({ signal }, 'signal during start-up: the start stops once the step under way ends');
    bound(STOP_BOUND_MS, 'stopping the start');
  };
  process.on('SIGTERM', () => onSignal('SIGTERM'));
  process.on('SIGINT', () => onSignal('SIGINT'));
  /** After each step of the start: a signal that came during it ends the start there, exit 0. */
  const stopStartIfAsked = async (opened: { c?: Container; app?: HttpApp; server?: Server }) => {
    if (stopping === undefined) return;
    opened.server?.close();
    opened.server?.closeAllConnections();
    opened.app?.close();
    await opened.c?.close().catch(() => {});
    logger.info({ signal: stopping }, 'stopped before serving');
    process.exit(0);
  };

  const [{ createContainer }, { createHttpApp }, { seedDemoPhotos }] = await Promise.all([
    import('./container.js'),
    import('./http/app.js'),
    import('./demo-photos.js'),
  ]);
  await stopStartIfAsked({});
  // A node that lost its embedded database stops (exit 1): it could only answer 503 from then on,
  // and an orchestrator restarts a process that exits. Lost before shutdown is defined (below,
  // while starting): remembered, and the stop begins as soon as it can.
  let lostEarly = false;
  let stopFor: (why: string) => void = () => {
    lostEarly = true;
  };
  const c = await createContainer(config, {
    logger,
    onDatabaseLost: () => stopFor('embedded database lost'),
  });
  await stopStartIfAsked({ c });
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
    await stopStartIfAsked({ c });
  }

  const app = createHttpApp(c);
  const server = createServer(app.handle);
  server.keepAliveTimeout = 65_000;
  const connections = trackConnections(server);
  await c.start();
  await stopStartIfAsked({ c, app });
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
  await stopStartIfAsked({ c, app, server });
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : config.port;
  logger.info(
    { port, database: c.db.kind, cache: c.store.kind, storage: c.storage.driver, role: config.role },
    `signet listening on http://localhost:${port}`,
  );

  const shutdown = async (why: string, exitCode: number, delayMs: number) => {
    // A failure's stop during a stop changes nothing (a second signal exits: onSignal).
    if (stopping !== undefined) return;
    stopping = why;
    firstSignalAt = performance.now();
    logger.info({ signal: why }, 'shutting down');
    bound(delayMs + STOP_BOUND_MS, 'shutdown');
    const drained = await gracefulShutdown({
      server,
      connections,
      drain: () => app.drain(),
      close: async () => {
        app.close();
        await c.close();
      },
      logger,
      delayMs,
      graceMs: 7_000,
    });
    clearTimeout(force);
    logger.info({ drained }, 'stopped');
    process.exit(exitCode);
  };
  stopServing = (signal) => void shutdown(signal, 0, config.shutdownDelaySeconds * 1000);
  // A node that cannot serve (its database lost, accepts failing) stops without the delay: there
  // is nothing to keep serving while a balancer notices.
  stopFor = (why) => void shutdown(why, 1, 0);
  logAcceptErrors(server, logger, stopFor);
  if (lostEarly) stopFor('embedded database lost');
}

main().catch((err) => {
  // Another process holds the embedded database, PostgreSQL cannot be reached, …: the message
  // says what to do; a stack would bury it.
  if (err instanceof StartFailure) console.error(`signet: failed to start: ${err.message}`);
  else console.error('signet: failed to start:', err);
  process.exit(1);
});
