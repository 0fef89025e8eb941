import type { Plugin } from 'graphql-yoga';
import { classify } from '../../errors/index.js';
import type { Metrics } from '../../metrics.js';

/**
 * Counts the errors of every execution result by the code the client gets. The result is not
 * masked yet here (yoga masks it later), so an error a classifier knows (the database away, the
 * store failing) still carries no code: it is classified as the mask will, not counted as
 * INTERNAL_SERVER_ERROR, which the runbook keeps for `unexpected error` log lines.
 */
export function useErrorMetrics(metrics: Metrics): Plugin {
  return {
    onExecute: () => ({
      onExecuteDone({ result }) {
        if (!result || Symbol.asyncIterator in result) return;
        for (const err of result.errors ?? []) {
          const code = err.extensions?.['code'] ?? classify(err)?.extensions['code'];
          metrics.requestErrors.inc({ code: String(code ?? 'INTERNAL_SERVER_ERROR') });
        }
      },
    }),
  };
}
