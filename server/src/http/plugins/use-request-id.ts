import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { isAsyncIterable, mapAsyncIterator, type Plugin } from 'graphql-yoga';
import { requestIdOf as idOfNodeRequest } from '../../lib/request-id.js';
import type { ErrorMask } from '../error-mask.js';

const ids = new WeakMap<Request, string>();

/** The node request under a yoga request (yoga's node adapter and the SSE hand-over pass it). */
const nodeRequestOf = (serverContext: unknown) =>
  (serverContext as { req?: IncomingMessage } | undefined)?.req;

/** The request id of a yoga request (set by useRequestId). */
export function requestIdOf(request: Request): string {
  return ids.get(request) ?? 'unknown';
}

/**
 * Ties each yoga request to the id the HTTP layer gave it (a new one for in-process calls, which
 * have no node request), echoes it in the response header, and has the unexpected errors of
 * every result (each event of a stream) reported under it (error-mask.ts).
 */
export function useRequestId(errors: Pick<ErrorMask, 'report'>): Plugin {
  return {
    onRequest({ request, serverContext }) {
      ids.set(request, idOfNodeRequest(nodeRequestOf(serverContext)) ?? randomUUID());
    },
    onResultProcess({ request, result, setResult }) {
      const id = requestIdOf(request);
      if (isAsyncIterable(result)) {
        setResult(
          mapAsyncIterator(result, (r) => {
            errors.report(r, id);
            return r;
          }),
        );
      } else if (Array.isArray(result)) {
        for (const r of result) errors.report(r, id);
      } else {
        errors.report(result, id);
      }
    },
    onResponse({ request, response, serverContext }) {
      // A request yoga answered before the plugins' onRequest (a CORS preflight, the GraphiQL
      // page) has no id here yet: the HTTP layer's is the one (its header would lose to 'unknown').
      const id = ids.get(request) ?? idOfNodeRequest(nodeRequestOf(serverContext));
      if (id) response.headers.set('x-request-id', id);
    },
  };
}
