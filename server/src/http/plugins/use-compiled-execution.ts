import type { Plugin } from '@envelop/core';
import { useGraphQlJit } from '@envelop/graphql-jit';
import { getOperationAST } from 'graphql';
import type { Logger } from '../../logger.js';

/**
 * Queries and mutations run compiled by graphql-jit: each parsed document (yoga's parse cache
 * keeps them, so compiled ones are bounded by it) becomes one function that resolves a page's
 * hundreds of fields without graphql-js' per-field interpretation, and serialises the result
 * with a generated stringifier. Resolvers, the Pothos dataloader fields, error masking, cost
 * limits and persisted documents are unchanged: they act before or inside execution. Subscriptions
 * stay on graphql-js: they execute once per event, never a page of fields at once. A document the
 * compiler refuses runs interpreted, logged once. GRAPHQL_JIT=false turns it off
 * (docs/benchmarks.md, scenario 1, measures both).
 */
export function useCompiledExecution(logger: Logger): Plugin {
  return useGraphQlJit(
    {},
    {
      enableIf: (args) => getOperationAST(args.document, args.operationName)?.operation !== 'subscription',
      onError: (r) =>
        logger.warn(
          { errors: r.errors?.map((e) => e.message) },
          'graphql-jit could not compile an operation',
        ),
    },
  );
}
