import { isDatabaseBusy, isDatabaseUnavailable } from '../db/unavailable.js';
import { isRedisUnavailable } from '../redis/unreachable.js';
import { VariantRenderError } from '../storage/render-variant.js';
import { StorageError } from '../storage/storage.js';
import {
  type AppError,
  badGateway,
  badInput,
  findAppError,
  notFound,
  unavailable,
  variantFailed,
} from './app-error.js';

/**
 * Classifiers: a failure of a dependency, turned into the table's entry for it. Each returns
 * undefined for an error it does not know, which then stays unexpected (logged, masked as
 * INTERNAL_SERVER_ERROR). See docs/architecture.md, "Errors".
 */

/**
 * The database is not there, or is there but could not do this now (a statement timeout, a lock
 * or resource it did not get), as opposed to a bad statement: 503, retry shortly.
 */
export function fromDatabase(err: unknown): AppError | undefined {
  if (isDatabaseUnavailable(err)) return unavailable('The database is unavailable; retry shortly');
  if (isDatabaseBusy(err)) return unavailable('The database is busy; retry shortly');
  return undefined;
}

/**
 * Redis could not answer now: no reply in time (a stalled or busy Redis, the URL store's deadline),
 * a closed or refused connection, a Cluster answering CLUSTERDOWN or still redirecting
 * (redis/unreachable.ts). The hot path never gets here (it signs directly, urls/guarded-cache.ts);
 * what only Redis knows (`Image.urlStatus`, `urlStats`) is SERVICE_UNAVAILABLE with a retry, not
 * an unexpected error with a stack per image.
 */
export function fromRedis(err: unknown): AppError | undefined {
  if (isRedisUnavailable(err)) return unavailable('The cache is unavailable; retry shortly');
  return undefined;
}

/**
 * A storage driver's failure. `missing` words the 404 (an object gone under a live row);
 * unavailable or timed out is a bad gateway (502 on REST, SERVICE_UNAVAILABLE in GraphQL).
 */
export function fromStorage(err: unknown, action = 'The object store did not answer'): AppError | undefined {
  if (!(err instanceof StorageError)) return undefined;
  switch (err.kind) {
    case 'not_found':
      return notFound('No such object');
    case 'rejected':
      return badInput('The object store refused the request');
    default:
      return badGateway(action);
  }
}

/**
 * A storage failure of a request Signet built itself (an upload's put, a delete, the proxy's
 * stream): the store refusing it is the store's failure (throttling, a wrong region, a request
 * timeout), not the caller's input, so it is a bad gateway (retry) rather than BAD_USER_INPUT.
 * The caller's own faults (a body that ended early, a range) are told apart before this.
 */
export function fromStorageRequest(err: unknown, action?: string): AppError | undefined {
  if (err instanceof StorageError && err.kind === 'rejected') return badGateway(action);
  return fromStorage(err, action);
}

/**
 * A variant that could not be rendered: the object's fault (corrupt, unsupported, too many
 * pixels) is VARIANT_FAILED, for good; the node's load (time limit, full queue) is 503, retry.
 */
export function fromVariantRender(err: unknown): AppError | undefined {
  if (!(err instanceof VariantRenderError)) return undefined;
  switch (err.reason) {
    case 'timeout':
    case 'busy':
      return unavailable(err.message);
    default:
      return variantFailed(err.message);
  }
}

/**
 * Any error as the table's entry: an AppError as it is, a known dependency failure classified —
 * looking through the wrappers (graphql-js puts a resolver's error in `originalError`, and the
 * driver's code, e.g. PostgreSQL's 57P01, is only on the original).
 */
export function classify(err: unknown): AppError | undefined {
  const app = findAppError(err);
  if (app) return app;
  let cur: unknown = err;
  for (let i = 0; i < 5 && cur; i++) {
    const known = fromDatabase(cur) ?? fromStorage(cur) ?? fromVariantRender(cur) ?? fromRedis(cur);
    if (known) return known;
    cur =
      (cur as { originalError?: unknown; cause?: unknown }).originalError ??
      (cur as { cause?: unknown }).cause;
  }
  return undefined;
}
