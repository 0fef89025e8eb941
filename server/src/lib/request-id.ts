import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

/*
 * The request id travels by hand, not in an AsyncLocalStorage scope: on Node 20 and 22 one
 * `AsyncLocalStorage.run` turns on async hooks for the whole process, so every promise, timer and
 * socket afterwards pays for the scope's propagation. Measured: a hot proxy redirect went from
 * 68-73% to 82-95% of a bare 302, and a cold page cost ~10% less gateway CPU, without it
 * (docs/benchmarks.md, finding 25). See docs/architecture.md, "Request ids and logging".
 */

const VALID = /^[A-Za-z0-9._-]{8,64}$/;
/** On the request itself: a WeakMap's set cost ~100 times more (an ephemeron per request). */
const ID = Symbol('signet.requestId');
type Tagged = IncomingMessage & { [ID]?: string };

/** A caller's sane `x-request-id`, or a new one; from now on `requestIdOf(req)` answers it. */
export function assignRequestId(req: IncomingMessage): string {
  const given = req.headers['x-request-id'];
  const id = typeof given === 'string' && VALID.test(given) ? given : randomUUID();
  (req as Tagged)[ID] = id;
  return id;
}

/** The id the HTTP layer gave this request (undefined for one it never saw). */
export function requestIdOf(req: IncomingMessage | undefined): string | undefined {
  return (req as Tagged | undefined)?.[ID];
}
