import { type ExecutionArgs, makeExecute, mapAsyncIterator, type Plugin } from '@envelop/core';
import {
  createSourceEventStream,
  type DocumentNode,
  type ExecutionResult,
  execute,
  type GraphQLSchema,
  getOperationAST,
} from 'graphql';
import { type CompiledQuery, compileQuery, isCompiledQuery } from 'graphql-jit';
import type { Logger } from '../../logger.js';

/**
 * Queries and mutations run compiled by graphql-jit: each operation of a parsed document (yoga's
 * parse cache keeps them, so compiled ones are bounded by it) becomes one function that resolves a page's
 * hundreds of fields without graphql-js' per-field interpretation (results are still serialised
 * by JSON.stringify: graphql-jit's generated serialiser is off by default). Resolvers, the Pothos
 * dataloader fields, error masking, cost limits and persisted documents are unchanged: they act
 * before or inside execution.
 *
 * Subscriptions are opened by graphql-js (its `createSourceEventStream` opened 10,000 of them
 * with ~0.2 ms less CPU each than graphql-jit's subscribe, in one A/B) and each of their events is
 * executed compiled: a node delivering a refresh round does that thousands of times a second, and
 * compiled it costs half the CPU (docs/benchmarks.md, scenario 9, finding 16). A document the
 * compiler refuses runs interpreted, logged once. GRAPHQL_JIT=false turns all of it off
 * (docs/benchmarks.md, scenario 1, measures both).
 */
export function useCompiledExecution(
  logger: Logger,
  compiled: CompiledOperations = compiledOperations(logger),
): Plugin[] {
  return [useCompiledQueries(compiled), useCompiledSubscriptionEvents(compiled)];
}

/**
 * Queries and mutations, compiled per document and operation name. Not `@envelop/graphql-jit`:
 * its cache is keyed by the document alone, so of a document holding several operations every
 * request ran the one compiled first, whichever operation it named (a `List` after a `Delete` of
 * the same document deleted again). Found by test/graphql/page-projection.test.ts.
 */
function useCompiledQueries(compiledFor: CompiledOperations): Plugin {
  const run = makeExecute((args: ExecutionArgs) => {
    const query = compiledFor(args.schema, args.document, args.operationName);
    // A document the compiler refuses runs interpreted (logged once by compiledFor).
    if (!query) return execute(args);
    return query.query(args.rootValue, args.contextValue, args.variableValues);
  });
  return {
    onExecute({ args, setExecuteFn }) {
      if (getOperationAST(args.document, args.operationName)?.operation !== 'subscription') {
        setExecuteFn(run);
      }
    },
  };
}

const refused = (logger: Logger) => (r: ExecutionResult) =>
  logger.warn({ errors: r.errors?.map((e) => e.message) }, 'graphql-jit could not compile an operation');

/**
 * The compiled function of a document's operation (a query, a mutation, or what runs each event of
 * a subscription); null: it runs interpreted.
 */
export type CompiledOperations = (
  schema: GraphQLSchema,
  document: DocumentNode,
  operationName?: string | null,
) => CompiledQuery | null;

/**
 * One compile per parsed document (yoga's parse cache keeps them, so this is bounded by it) and
 * operation name, shared by yoga's pipeline and the SSE fast path (sse-subscriptions.ts). A
 * document the compiler refuses runs interpreted, logged once.
 */
export function compiledOperations(logger: Logger): CompiledOperations {
  const onError = refused(logger);
  const compiled = new WeakMap<DocumentNode, Map<string, CompiledQuery | null>>();
  return (schema, document, operationName) => {
    let byName = compiled.get(document);
    if (!byName) {
      byName = new Map();
      compiled.set(document, byName);
    }
    let c = byName.get(operationName ?? '');
    if (c === undefined) {
      const r = compileQuery(schema, document, operationName ?? undefined);
      c = isCompiledQuery(r) ? r : null;
      if (!c) onError(r as ExecutionResult);
      byName.set(operationName ?? '', c);
    }
    return c;
  };
}

/** Compiled per-event execution for subscriptions (see above); a refused document stays interpreted. */
function useCompiledSubscriptionEvents(compiledFor: CompiledOperations): Plugin {
  return {
    onSubscribe({ args, setSubscribeFn }) {
      const query = compiledFor(args.schema, args.document, args.operationName);
      if (!query) return;
      setSubscribeFn(async (a) => {
        const source = await createSourceEventStream(a);
        if (!(Symbol.asyncIterator in source)) return source;
        return mapAsyncIterator(source, (payload) =>
          query.query(payload, a.contextValue, a.variableValues ?? undefined),
        );
      });
    },
  };
}
