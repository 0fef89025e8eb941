import { GraphQLError } from 'graphql';
import { classify } from '../errors/index.js';
import type { Logger } from '../logger.js';
import { withTableCode } from './yoga-error-codes.js';

/**
 * GraphQL's side of the one error pipeline. `mask` is yoga's `maskError` (and the SSE fast
 * path's): an error of the table (or a dependency failure the classifiers know) is shown as it
 * is; graphql-js' own parse, validation and coercion errors are the client's input; yoga's
 * request errors get the table's code; anything else is masked as INTERNAL_SERVER_ERROR.
 *
 * yoga hands `mask` no request, so a masked error is only remembered there; `report` then logs
 * it under the request id and adds that id to its extensions, once the result it sits in is
 * about to be sent (plugins/use-request-id.ts, or the fast path's own frame). See
 * docs/architecture.md, "Request ids and logging".
 */
export interface ErrorMask {
  mask(error: unknown, message: string): Error;
  /** Logs each unexpected error of a result under `requestId`, which the client then sees too. */
  report(result: unknown, requestId: string): void;
}

export function createErrorMask(logger: Logger): ErrorMask {
  /** Masked errors not yet reported, with what they replaced. */
  const unexpected = new WeakMap<object, unknown>();

  const reportAll = (errors: readonly unknown[] | undefined, requestId: string) => {
    if (!errors) return;
    for (const e of errors) {
      if (typeof e !== 'object' || e === null || !unexpected.has(e)) continue;
      logger.error({ err: unexpected.get(e), requestId }, 'unexpected error');
      unexpected.delete(e);
      // Made by `mask` below: its extensions object is its own.
      (e as { extensions: Record<string, unknown> }).extensions['requestId'] = requestId;
    }
  };

  return {
    mask(error, message) {
      const known = classify(error);
      if (known) return known;
      const original = (error as GraphQLError).originalError;
      // Variable coercion wraps the scalar's own GraphQLError and has no path (no resolver ran).
      const coercion = original instanceof GraphQLError && !(error as GraphQLError).path;
      if (error instanceof GraphQLError && (!original || coercion)) return withTableCode(error);
      const masked = new GraphQLError(message, {
        nodes: (error as GraphQLError).nodes,
        path: (error as GraphQLError).path,
        extensions: { code: 'INTERNAL_SERVER_ERROR' },
      });
      unexpected.set(masked, original ?? error);
      return masked;
    },
    report(result, requestId) {
      if (typeof result !== 'object' || result === null) return;
      reportAll((result as { errors?: readonly unknown[] }).errors, requestId);
    },
  };
}
