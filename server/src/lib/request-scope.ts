import { AsyncLocalStorage } from 'node:async_hooks';
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

/** Per-request data that must reach places with no request in hand (masked errors, logs). */
export interface RequestScope {
  requestId: string;
}

export const requestScope = new AsyncLocalStorage<RequestScope>();

const VALID = /^[A-Za-z0-9._-]{8,64}$/;

/** A caller's sane `x-request-id`, or a new one. */
export function requestIdFor(req: IncomingMessage): string {
  const given = req.headers['x-request-id'];
  return typeof given === 'string' && VALID.test(given) ? given : randomUUID();
}

export function currentRequestId(): string | undefined {
  return requestScope.getStore()?.requestId;
}
