import { useCSRFPrevention } from '@graphql-yoga/plugin-csrf-prevention';
import { GraphQLError } from 'graphql';
import { createYoga, type YogaServerInstance } from 'graphql-yoga';
import { isDatabaseUnavailable } from '../db/connect.js';
import { findAppError, unavailable } from '../errors.js';
import type { Context } from '../schema/context.js';
import { buildSchema } from '../schema/index.js';
import type { Services } from '../services.js';
import { corsFor } from './plugins/cors.js';
import { useBodyLimit } from './plugins/use-body-limit.js';
import { useCostLimit } from './plugins/use-cost-limit.js';
import { useEndOnShutdown } from './plugins/use-end-on-shutdown.js';
import { useErrorMetrics } from './plugins/use-error-metrics.js';
import { useIntrospectionSwitch } from './plugins/use-introspection-switch.js';
import { useMultipartMapCheck } from './plugins/use-multipart-map-check.js';
import { loadPersistedOperations, usePersistedDocuments } from './plugins/use-persisted-documents.js';
import { useQueryLimits } from './plugins/use-query-limits.js';
import { requestIdOf, useRequestId } from './plugins/use-request-id.js';
import { useRequestParseErrors } from './plugins/use-request-parse-errors.js';
import { MULTIPART_OVERHEAD_BYTES, useUploadLimits } from './plugins/use-upload-limits.js';
import { withTableCode } from './plugins/yoga-error-codes.js';
import { currentRequestId } from './request-context.js';

export type Yoga = YogaServerInstance<Record<string, never>, Context>;

/** Client mistakes that graphql-js reports without a code of its own. */
const CLIENT_ERROR =
  /^(Variable "\$|Int cannot represent|Expected value of type|Argument "|ID cannot represent|String cannot represent)/;

/** `shutdown` aborts when the process drains: open subscriptions then complete cleanly. */
export function createGraphql(services: Services, options: { shutdown?: AbortSignal } = {}): Yoga {
  const { logger, config } = services;
  const persisted = config.persistedOperationsFile
    ? usePersistedDocuments(loadPersistedOperations(config.persistedOperationsFile), {
        only: config.persistedOperationsOnly,
      })
    : [];
  return createYoga<Record<string, never>, Context>({
    schema: buildSchema(),
    graphqlEndpoint: '/graphql',
    landingPage: false,
    // GraphiQL is of no use without introspection (and loads its scripts from a CDN).
    graphiql: config.graphqlIntrospection ? { title: 'Signet' } : false,
    cors: corsFor(config.corsOrigins),
    logging: {
      debug: (...a: unknown[]) => logger.debug(a.map(String).join(' ')),
      info: (...a: unknown[]) => logger.info(a.map(String).join(' ')),
      warn: (...a: unknown[]) => logger.warn(a.map(String).join(' ')),
      // Yoga echoes every error its mask replaced. maskError below already logs the unexpected
      // ones (with the request id); the rest are client mistakes or a database outage, which
      // would otherwise cost an error line with the query text per request.
      error: (...a: unknown[]) => {
        if (a.length === 1 && a[0] instanceof Error) return;
        logger.error(a.map(String).join(' '));
      },
    },
    plugins: [
      useRequestId(),
      useCSRFPrevention({
        // Not 'content-type': every simple cross-site form post carries one.
        requestHeaders: ['x-graphql-yoga-csrf', 'apollo-require-preflight'],
      }),
      useErrorMetrics(services.metrics),
      useEndOnShutdown(options.shutdown),
      // before useUploadLimits, which wraps it (the form data is read once, under its limits)
      useMultipartMapCheck(),
      useUploadLimits({
        maxFileBytes: services.config.uploadMaxBytes,
        authenticate: services.authenticate,
      }),
      useRequestParseErrors(),
      useBodyLimit(config.graphqlMaxBodyBytes),
      ...persisted,
      useQueryLimits({ hideSuggestions: !config.graphqlIntrospection }),
      useIntrospectionSwitch(config.graphqlIntrospection),
      useCostLimit(),
    ],
    // Yoga's whole-body cap (25 MB by default) must leave room for the largest allowed upload.
    maxRequestBodySize: Math.max(25_000_000, services.config.uploadMaxBytes + MULTIPART_OVERHEAD_BYTES),
    context: async ({ request }) => {
      const viewer = await services.authenticate(request.headers.get('authorization'));
      return {
        viewer,
        requestId: requestIdOf(request),
        services,
        counters: { urlBatches: 0, imageBatches: 0 },
      };
    },
    maskedErrors: {
      maskError(error, message) {
        const app = findAppError(error);
        if (app) return app;
        const original = (error as GraphQLError).originalError;
        // Variable coercion wraps the scalar's own GraphQLError and has no path (no resolver ran).
        const coercion = original instanceof GraphQLError && !(error as GraphQLError).path;
        if (error instanceof GraphQLError && (!original || coercion)) {
          // Parse, validation and coercion errors from graphql-js: the client's input.
          if (!error.extensions?.['code'] && CLIENT_ERROR.test(error.message)) {
            return new GraphQLError(error.message, {
              nodes: error.nodes,
              path: error.path,
              extensions: { ...error.extensions, code: 'BAD_USER_INPUT' },
            });
          }
          return withTableCode(error);
        }
        if (isDatabaseUnavailable(original ?? error)) {
          // The database is down: a retryable condition the client should hear about as such.
          return unavailable('The database is unavailable; retry shortly');
        }
        const requestId = currentRequestId();
        logger.error({ err: original ?? error, requestId }, 'unexpected error');
        return new GraphQLError(message, {
          nodes: (error as GraphQLError).nodes,
          path: (error as GraphQLError).path,
          extensions: { code: 'INTERNAL_SERVER_ERROR', ...(requestId ? { requestId } : {}) },
        });
      },
    },
  });
}
