import { useCSRFPrevention } from '@graphql-yoga/plugin-csrf-prevention';
import { GraphQLError } from 'graphql';
import { createYoga, type YogaServerInstance } from 'graphql-yoga';
import { findAppError } from '../errors.js';
import type { Context } from '../schema/context.js';
import { buildSchema } from '../schema/index.js';
import type { Services } from '../services.js';
import { useErrorMetrics } from './plugins/use-error-metrics.js';
import { requestIdOf, useRequestId } from './plugins/use-request-id.js';
import { currentRequestId } from './request-context.js';

export type Yoga = YogaServerInstance<Record<string, never>, Context>;

/** Client mistakes that graphql-js reports without a code of its own. */
const CLIENT_ERROR =
  /^(Variable "\$|Int cannot represent|Expected value of type|Argument "|ID cannot represent|String cannot represent)/;

export function createGraphql(services: Services): Yoga {
  const { logger } = services;
  return createYoga<Record<string, never>, Context>({
    schema: buildSchema(),
    graphqlEndpoint: '/graphql',
    landingPage: false,
    graphiql: { title: 'Signet' },
    logging: {
      debug: (...a: unknown[]) => logger.debug(a.map(String).join(' ')),
      info: (...a: unknown[]) => logger.info(a.map(String).join(' ')),
      warn: (...a: unknown[]) => logger.warn(a.map(String).join(' ')),
      error: (...a: unknown[]) => logger.error(a.map(String).join(' ')),
    },
    plugins: [
      useRequestId(),
      useCSRFPrevention({
        requestHeaders: ['x-graphql-yoga-csrf', 'apollo-require-preflight', 'content-type'],
      }),
      useErrorMetrics(services.metrics),
    ],
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
        if (error instanceof GraphQLError && !original) {
          // Parse, validation and coercion errors from graphql-js: the client's input.
          if (!error.extensions?.['code'] && CLIENT_ERROR.test(error.message)) {
            return new GraphQLError(error.message, {
              nodes: error.nodes,
              path: error.path,
              extensions: { ...error.extensions, code: 'BAD_USER_INPUT' },
            });
          }
          return error;
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
