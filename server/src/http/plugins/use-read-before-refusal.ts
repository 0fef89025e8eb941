import type { IncomingMessage } from 'node:http';
import { finished } from 'node:stream/promises';
import type { Plugin } from 'graphql-yoga';

/**
 * How long an answer waits for the rest of a body it will not use. A client that stops sending
 * mid-body gets its answer after this, and node closes the connection as it would have at once.
 */
const READ_WAIT_MS = 5_000;

/**
 * A request refused before its body is read (a content type no parser reads, a missing CSRF
 * header, an anonymous upload) is answered once the rest of its body has arrived and been
 * dropped, when it declares at most `maxBytes`. Node otherwise answers at once and, for a client
 * that asked for `Connection: close`, destroys the socket while the body is still arriving: the
 * client, still writing, sees EPIPE or a reset instead of the answer. A declared length over
 * `maxBytes` is still cut (use-body-limit.ts): reading a declared gigabyte for nothing is worse.
 * A request whose body was read (every accepted one) costs one property check.
 */
export function useReadBeforeRefusal(maxBytes: number): Plugin {
  return {
    onResponse({ serverContext }) {
      const req = (serverContext as { req?: IncomingMessage }).req;
      if (!req || req.complete || req.destroyed) return;
      const declared = Number(req.headers['content-length']);
      if (!(declared > 0 && declared <= maxBytes)) return;
      return restRead(req);
    },
  };
}

/** Resolves once the request's body has ended (read and dropped), failed, or READ_WAIT_MS passed. */
function restRead(req: IncomingMessage): Promise<void> {
  req.resume();
  return finished(req, { signal: AbortSignal.timeout(READ_WAIT_MS) }).catch(() => {});
}
