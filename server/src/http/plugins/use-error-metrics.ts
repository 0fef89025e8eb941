import type { Plugin } from 'graphql-yoga';
import type { Metrics } from '../../metrics.js';

/** Counts the errors of every execution result by their code. */
export function useErrorMetrics(metrics: Metrics): Plugin {
  return {
    onExecute: () => ({
      onExecuteDone({ result }) {
        if (!result || Symbol.asyncIterator in result) return;
        for (const err of result.errors ?? []) {
          metrics.requestErrors.inc({ code: String(err.extensions?.['code'] ?? 'INTERNAL_SERVER_ERROR') });
        }
      },
    }),
  };
}
