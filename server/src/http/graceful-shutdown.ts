import type { Server } from 'node:http';
import net, { type Socket } from 'node:net';
import type { Logger } from '../logger.js';

/**
 * The server's open connections, from its first one: a Set entry and a `close` listener per
 * connection, nothing per request. The shutdown reads how many bytes each one has moved.
 */
export function trackConnections(server: Server): ReadonlySet<Socket> {
  const sockets = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  return sockets;
}

export interface ShutdownDeps {
  server: Server;
  /** `trackConnections(server)`, set up when the server was made. */
  connections: ReadonlySet<Socket>;
  /** Ends long-lived streams (subscriptions), flips readiness, asks for `Connection: close`. */
  drain(): void;
  /**
   * Once requests are done: stops background work (jobs, leases, the access-count flush), then
   * closes the event bus, cache and database connections (the container's close).
   */
  close(): Promise<void>;
  logger: Logger;
  /**
   * SHUTDOWN_DELAY_SECONDS, in ms: how long the node goes on listening and serving, draining,
   * before it stops accepting connections (0: at once).
   */
  delayMs: number;
  /** How long in-flight requests get, once the node stopped accepting, before their connections are cut. */
  graceMs: number;
}

/** How often the connections are looked at once the node stopped accepting. */
const SWEEP_MS = 50;
/**
 * Looks in a row in which no connection moved a byte before the idle ones are closed (~150 ms:
 * a client sending back to back has written its next request long before). Counted in looks,
 * not in time: the event loop reads the sockets between two looks, so a request that arrived
 * while the loop was busy is seen before its connection can pass for idle.
 */
const QUIET_SWEEPS = 3;

/**
 * SIGTERM: drain (readiness 503 `draining`, every response `Connection: close`, subscriptions
 * complete with an SSE `complete` event); go on listening and serving for `delayMs`, so a load
 * balancer sees the 503 and its keep-alive connections end with a response, not a reset; then
 * stop accepting, let in-flight requests finish (downloads keep streaming), close keep-alive
 * connections once nothing has moved on any connection for a moment, cut what is left after
 * `graceMs`, and stop background work and close dependencies. Resolves true when every
 * connection ended before the cut.
 */
export async function gracefulShutdown(d: ShutdownDeps): Promise<boolean> {
  const { server, logger } = d;
  d.drain();
  if (d.delayMs > 0) {
    logger.info(
      { delaySeconds: d.delayMs / 1000 },
      'draining: still accepting connections until SHUTDOWN_DELAY_SECONDS is over',
    );
    await new Promise((resolve) => setTimeout(resolve, d.delayMs));
  }
  // net.Server's close, not http.Server's: since Node.js 19 that one also closes every idle
  // keep-alive connection at once, and a connection is idle from the end of a response until
  // its next request is read, which a client sending back to back has already written: it was
  // reset, and a balancer does not retry a POST. Idle connections are closed below, once quiet.
  // Closed from the check phase, right after the event loop accepted the connections waiting in
  // the kernel's queue: one still queued when the listener closes is reset by the kernel (what is
  // left is a connection made in that very moment: the delay is there for the balancer to stop).
  await new Promise((resolve) => setImmediate(resolve));
  const closed = new Promise<void>((resolve) => net.Server.prototype.close.call(server, () => resolve()));
  logger.info('stopped accepting connections');
  const stopSweep = closeIdleWhenQuiet(server, d.connections);
  let timer: NodeJS.Timeout | undefined;
  const graceOver = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), d.graceMs);
  });
  const outcome = await Promise.race([closed.then(() => 'drained' as const), graceOver]);
  clearTimeout(timer);
  stopSweep();
  if (outcome === 'timeout') {
    logger.warn({ graceMs: d.graceMs }, 'requests still running after the grace period; closing them');
    server.closeAllConnections();
    await closed;
  }
  await d.close();
  return outcome === 'drained';
}

/**
 * Closes the idle keep-alive connections (Node's own test: no request being read, no response
 * under way) once no connection has moved a byte for QUIET_SWEEPS looks. A connection that
 * carries a request closes itself after its response (`Connection: close`). Closing one the
 * moment it turns idle raced the next request of a client sending back to back; what is left is
 * the race of any keep-alive close, with a request sent at that very moment after a quiet spell.
 */
function closeIdleWhenQuiet(server: Server, connections: ReadonlySet<Socket>): () => void {
  let last = moved(connections);
  let quiet = 0;
  const sweep = setInterval(() => {
    const now = moved(connections);
    if (now.count !== last.count || now.bytes !== last.bytes) {
      last = now;
      quiet = 0;
    } else if (++quiet >= QUIET_SWEEPS) {
      server.closeIdleConnections();
    }
  }, SWEEP_MS);
  return () => clearInterval(sweep);
}

/** The open connections and the bytes they have read and written: a change is activity. */
function moved(connections: ReadonlySet<Socket>): { count: number; bytes: number } {
  let bytes = 0;
  for (const s of connections) bytes += s.bytesRead + s.bytesWritten;
  return { count: connections.size, bytes };
}
