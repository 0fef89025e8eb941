import type { Server } from 'node:http';
import type { Logger } from '../logger.js';

export interface ShutdownDeps {
  server: Server;
  /** Ends long-lived streams (subscriptions) and flips readiness. */
  drain(): void;
  /**
   * Once requests are done: stops background work (jobs, leases, the access-count flush), then
   * closes the event bus, cache and database connections (the container's close).
   */
  close(): Promise<void>;
  logger: Logger;
  /** How long in-flight requests get before their connections are cut. */
  graceMs: number;
}

/**
 * SIGTERM: stop accepting, let in-flight requests finish (downloads keep streaming, subscriptions
 * complete with an SSE `complete` event), cut what is left after `graceMs`, then stop background
 * work and close dependencies. Resolves true when every request finished in time.
 */
export async function gracefulShutdown(d: ShutdownDeps): Promise<boolean> {
  const { server, logger } = d;
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  d.drain();
  // A keep-alive socket turns idle when its response ends: close those as they appear.
  server.closeIdleConnections();
  const sweep = setInterval(() => server.closeIdleConnections(), 50);
  let timer: NodeJS.Timeout | undefined;
  const graceOver = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), d.graceMs);
  });
  const outcome = await Promise.race([closed.then(() => 'drained' as const), graceOver]);
  clearTimeout(timer);
  clearInterval(sweep);
  if (outcome === 'timeout') {
    logger.warn({ graceMs: d.graceMs }, 'requests still running after the grace period; closing them');
    server.closeAllConnections();
    await closed;
  }
  await d.close();
  return outcome === 'drained';
}
