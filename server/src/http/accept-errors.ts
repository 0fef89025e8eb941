import type { Server } from 'node:http';
import type { Logger } from '../logger.js';

/**
 * Failed accepts in one turn of the event loop past which the node stops. libuv tries `accept`
 * again at once after a failure it passes on, inside the same callback, so a failure that
 * persists (ENOBUFS or ENOMEM under memory pressure, EMFILE with no spare descriptor left) would
 * spin there for good: no request served, no descriptor freed.
 */
export const ACCEPT_FAILURES_PER_TURN = 100;

/**
 * Keeps a listening server up through a failed accept. Node emits a failed accept as the
 * server's 'error' event, and an 'error' with no listener ends the process, with every request
 * in flight and every open subscription. libuv absorbs most of them: out of file descriptors
 * (EMFILE, ENFILE) it frees a spare descriptor it keeps, accepts and drops the waiting
 * connections, and goes on. What it passes on is logged, one line per failure naming its code
 * (at most ACCEPT_FAILURES_PER_TURN a turn), and the server goes on listening; failures that
 * fill a turn call `stop` once (main.ts: a graceful shutdown, exit 1, for the orchestrator to
 * restart the node). See docs/operations.md, "Runbook".
 */
export function logAcceptErrors(server: Server, logger: Logger, stop: (why: string) => void): void {
  let inTurn = 0;
  let stopped = false;
  server.on('error', (err: NodeJS.ErrnoException) => {
    if (inTurn === 0) setImmediate(() => (inTurn = 0));
    inTurn++;
    if (inTurn <= ACCEPT_FAILURES_PER_TURN) {
      logger.error(
        { err: err.message, code: err.code, syscall: err.syscall },
        'the HTTP server failed to accept a connection; still listening',
      );
      return;
    }
    if (stopped) return;
    stopped = true;
    logger.error(
      { code: err.code, failures: inTurn },
      'the HTTP server keeps failing to accept connections; stopping this node',
    );
    // Closing the listener ends libuv's retries (its loop runs while the socket is open).
    stop('accept keeps failing');
  });
}
