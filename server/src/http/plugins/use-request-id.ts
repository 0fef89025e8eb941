import { randomUUID } from 'node:crypto';
import type { Plugin } from 'graphql-yoga';
import { currentRequestId } from '../../lib/request-scope.js';

const ids = new WeakMap<Request, string>();

/** The request id of a yoga request (set by useRequestId). */
export function requestIdOf(request: Request): string {
  return ids.get(request) ?? currentRequestId() ?? 'unknown';
}

/** Ties each yoga request to the id the HTTP layer gave it (or a new one for in-process calls). */
export function useRequestId(): Plugin {
  return {
    onRequest({ request }) {
      ids.set(request, currentRequestId() ?? randomUUID());
    },
    onResponse({ request, response }) {
      response.headers.set('x-request-id', requestIdOf(request));
    },
  };
}
