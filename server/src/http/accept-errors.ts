import type { Server } from 'node:http';
import type { Logger } from '../logger.js';

/**
 * Keeps a listening server up through a failed accept. Node emits a failed accept as the
 * server's 'error' event, and an 'error' with no listener ends the process, with every request
 * in flight and every open subscription. libuv absorbs most of them: out of file descriptors
 * (EMFILE, ENFILE) it frees a spare descriptor it keeps, accepts and drops the waiting
 * connections, and goes on. What it passes on (ENOBUFS, ENOMEM, EMFILE once it has no spare left)
 * is logged, one line per failure naming its code, and the server goes on listening
 * (docs/operations.md, "Runbook").
 */
export function logAcceptErrors(server: Server, logger: Logger): void {
  server.on('error', (err: NodeJS.ErrnoException) => {
    logger.error(
      { err: err.message, code: err.code, syscall: err.syscall },
      'the HTTP server failed to accept a connection; still listening',
    );
  });
}
