import { useCSRFPrevention } from '@graphql-yoga/plugin-csrf-prevention';
import { createYoga, type YogaServerInstance } from 'graphql-yoga';
import type { Authenticate } from '../auth/viewer.js';
import type { Config } from '../config.js';
import type { UploadSlots } from '../images/upload-slots.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import { type Context, contextOf, type SchemaServices } from '../schema/context.js';
import { buildSchema } from '../schema/index.js';
import { corsFor } from './cors.js';
import { createErrorMask } from './error-mask.js';
import { bundledGraphiql, GRAPHIQL_DEFAULT_QUERY, useGraphiqlPage } from './graphiql.js';
import { useBodyLimit } from './plugins/use-body-limit.js';
import { compiledOperations, useCompiledExecution } from './plugins/use-compiled-execution.js';
import { useCostLimit } from './plugins/use-cost-limit.js';
import { abortWaiters, useEndOnShutdown } from './plugins/use-end-on-shutdown.js';
import { useErrorMetrics } from './plugins/use-error-metrics.js';
import { useHiddenSuggestions } from './plugins/use-hidden-suggestions.js';
import { useInFlightBound } from './plugins/use-in-flight-bound.js';
import { useIntrospectionSwitch } from './plugins/use-introspection-switch.js';
import { useMultipartMapCheck } from './plugins/use-multipart-map-check.js';
import { loadPersistedOperations, usePersistedDocuments } from './plugins/use-persisted-documents.js';
import { useQueryLimits } from './plugins/use-query-limits.js';
import { useReadBeforeRefusal } from './plugins/use-read-before-refusal.js';
import { requestIdOf, useRequestId } from './plugins/use-request-id.js';
import { useRequestParseErrors } from './plugins/use-request-parse-errors.js';
import { MULTIPART_OVERHEAD_BYTES, useUploadLimits } from './plugins/use-upload-limits.js';
import { createSseSubscriptions, type SseSubscriptions } from './sse-subscriptions.js';
import { CSRF_HEADERS } from './yoga-error-codes.js';

export type Yoga = YogaServerInstance<Record<string, never>, Context>;

/** `/graphql`: yoga, and the fast path for the SSE subscriptions yoga has accepted (sse-subscriptions.ts). */
export interface GraphqlHttp {
  yoga: Yoga;
  sse: SseSubscriptions;
}

export interface GraphqlDeps {
  config: Pick<
    Config,
    | 'persistedOperationsFile'
    | 'persistedOperationsOnly'
    | 'graphqlIntrospection'
    | 'graphqlJit'
    | 'corsOrigins'
    | 'maxRequestsInFlight'
    | 'uploadMaxBytes'
    | 'uploadMinBytesPerSecond'
    | 'graphqlMaxBodyBytes'
    | 'federation'
  >;
  logger: Logger;
  metrics: Metrics;
  authenticate: Authenticate;
  /** Uploads in flight per viewer and per node, taken before a multipart body is read. */
  uploadSlots: Pick<UploadSlots, 'acquire'>;
  /** The domain, handed to resolvers on every request's context. */
  schema: SchemaServices;
}

/** `shutdown` aborts when the process drains: open subscriptions then complete cleanly. */
export function createGraphql(d: GraphqlDeps, options: { shutdown?: AbortSignal } = {}): GraphqlHttp {
  const { logger, config } = d;
  const persisted = config.persistedOperationsFile
    ? usePersistedDocuments(loadPersistedOperations(config.persistedOperationsFile), {
        only: config.persistedOperationsOnly,
      })
    : [];
  const schema = buildSchema({ federation: config.federation });
  const compiled = config.graphqlJit ? compiledOperations(logger) : undefined;
  const errors = createErrorMask(logger);
  const shutdown = options.shutdown && { signal: options.shutdown, waiters: abortWaiters(options.shutdown) };
  const graphiql = bundledGraphiql();
  // yoga is made below with the fast path's recorder among its plugins; the fast path hands
  // requests to yoga. Each needs the other, so the fast path reaches yoga through this binding.
  let yoga: Yoga | undefined;
  const sse = createSseSubscriptions({
    schema,
    services: d.schema,
    authenticate: d.authenticate,
    logger,
    metrics: d.metrics,
    yoga: {
      get fetchAPI() {
        return yoga!.fetchAPI;
      },
      // The node objects, as yoga's own node adapter hands them to its plugins.
      handleRequest: (request, serverContext) => yoga!.handleRequest(request, serverContext as never),
    },
    maxBodyBytes: config.graphqlMaxBodyBytes,
    cors: config.corsOrigins.length > 0,
    compiled,
    errors,
    shutdown,
  });
  yoga = createYoga<Record<string, never>, Context>({
    schema,
    graphqlEndpoint: '/graphql',
    landingPage: false,
    // GraphiQL is of no use without introspection, so GRAPHQL_INTROSPECTION switches both (off
    // in production unless set). The page is the bundled one: it loads nothing from the internet.
    // useGraphiqlPage answers it compressed, with an ETag (graphiql.ts).
    graphiql: config.graphqlIntrospection ? { title: 'Signet', defaultQuery: GRAPHIQL_DEFAULT_QUERY } : false,
    renderGraphiQL: graphiql.render,
    cors: corsFor(config.corsOrigins),
    logging: {
      debug: (...a: unknown[]) => logger.debug(a.map(String).join(' ')),
      info: (...a: unknown[]) => logger.info(a.map(String).join(' ')),
      warn: (...a: unknown[]) => logger.warn(a.map(String).join(' ')),
      // Yoga echoes every error its mask replaced. The mask's report already logs the unexpected
      // ones (with the request id); the rest are client mistakes or a database outage, which
      // would otherwise cost an error line with the query text per request.
      error: (...a: unknown[]) => {
        if (a.length === 1 && a[0] instanceof Error) return;
        logger.error(a.map(String).join(' '));
      },
    },
    plugins: [
      useRequestId(errors),
      useGraphiqlPage(graphiql),
      useCSRFPrevention({
        // Not 'content-type': every simple cross-site form post carries one.
        requestHeaders: [...CSRF_HEADERS],
      }),
      useErrorMetrics(d.metrics),
      useEndOnShutdown(shutdown?.signal, shutdown?.waiters),
      // before useUploadLimits, which wraps it (the form data is read once, under its limits)
      useMultipartMapCheck(),
      useUploadLimits({
        maxFileBytes: config.uploadMaxBytes,
        authenticate: d.authenticate,
        slots: d.uploadSlots,
        minBytesPerSecond: config.uploadMinBytesPerSecond,
        logger,
      }),
      useRequestParseErrors(),
      // a refusal of a body within the limit is sent once that body has arrived, not over it
      useReadBeforeRefusal(config.graphqlMaxBodyBytes),
      // after useUploadLimits: a chunked upload is counted as it streams, before busboy parses it
      useBodyLimit(config.graphqlMaxBodyBytes, config.uploadMaxBytes + MULTIPART_OVERHEAD_BYTES),
      ...persisted,
      // Once the body is read and before any work: an operation past the node's bound costs nothing.
      useInFlightBound(config.maxRequestsInFlight, d.metrics.requestsShed),
      useQueryLimits(),
      // With introspection off, no "Did you mean …?" names the schema (fields, enum values, inputs).
      ...(config.graphqlIntrospection ? [] : [useHiddenSuggestions()]),
      useIntrospectionSwitch(config.graphqlIntrospection),
      useCostLimit(),
      ...(compiled ? useCompiledExecution(logger, compiled) : []),
      // Last: it records an opened subscription once every plugin before it let it through.
      sse.plugin,
    ],
    // Every body is bounded by useBodyLimit; yoga's cap would pipe each one through a stream.
    maxRequestBodySize: false,
    context: async ({ request }): Promise<Context> =>
      contextOf(d.schema, await d.authenticate(request.headers.get('authorization')), requestIdOf(request)),
    // isDev off: yoga would otherwise add the parser's originalError (quoting the body) to errors.
    maskedErrors: { maskError: (error, message) => errors.mask(error, message), isDev: false },
  });
  return { yoga, sse };
}
