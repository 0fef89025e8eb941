import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';

/** A bounded label for a path (metrics must not get one series per image id). */
export function routeLabel(path: string): string {
  if (path === '/graphql' || path.startsWith('/graphql/')) return 'graphql';
  if (path.startsWith('/proxy/')) return 'proxy';
  if (path === '/healthz' || path === '/readyz') return 'health';
  if (path === '/metrics') return 'metrics';
  if (path.startsWith('/local-bucket/')) return 'local_bucket';
  return 'static';
}

/**
 * One access-log line and one `signet_http_requests_total` count per response, when it closes.
 * Only the path is logged: query strings carry capability tokens and signatures.
 */
export function observeRequest(
  d: { logger: Logger; metrics: Metrics },
  req: IncomingMessage,
  res: ServerResponse,
  requestId: string,
  path: string,
): void {
  const started = performance.now();
  res.once('close', () => {
    const route = routeLabel(path);
    const status = res.writableFinished ? String(res.statusCode) : 'aborted';
    d.metrics.httpRequests.inc({ route, status });
    const line = {
      requestId,
      method: req.method,
      route,
      path: path.length > 200 ? `${path.slice(0, 200)}…` : path,
      status,
      ms: Math.round((performance.now() - started) * 10) / 10,
    };
    // Probes and scrapes every few seconds would drown the rest.
    if (route === 'health' || route === 'metrics') d.logger.debug(line, 'request');
    else d.logger.info(line, 'request');
  });
}
