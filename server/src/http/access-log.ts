import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '../logger.js';
import { wasCut } from './stall-guard.js';

/** A bounded label for a path (metrics must not get one series per image id). */
export function routeLabel(path: string): string {
  if (path === '/graphql' || path.startsWith('/graphql/')) return 'graphql';
  if (path.startsWith('/proxy/')) return 'proxy';
  if (path === '/healthz' || path === '/readyz') return 'health';
  if (path === '/metrics') return 'metrics';
  if (path.startsWith('/local-bucket/')) return 'local_bucket';
  return 'static';
}

type Counted = { inc(): void };

/**
 * What a closed response is counted and logged as: its status once its last byte was handed to
 * the kernel, otherwise `aborted` (the client left before that, or stopped reading and the stall
 * guard cut it, whether or not its body had ended). A client that leaves while its last bytes are
 * in the kernel's buffers is not seen leaving: that response counts as its status.
 */
export function closedStatus(res: ServerResponse): string {
  return res.writableFinished && !wasCut(res) ? String(res.statusCode) : 'aborted';
}

/**
 * One access-log line and one `signet_http_requests_total` count per response, when it closes.
 * Only the path is logged: query strings carry capability tokens and signatures. The line is
 * built only when its level is on (production runs at warn: a hot redirect built one for
 * nothing).
 */
export function observeRequest(
  d: { logger: Logger; requests: { labels(route: string, status: string): Counted } },
  req: IncomingMessage,
  res: ServerResponse,
  requestId: string,
  path: string,
): void {
  const started = performance.now();
  res.once('close', () => {
    const route = routeLabel(path);
    const status = closedStatus(res);
    d.requests.labels(route, status).inc();
    // Probes and scrapes every few seconds would drown the rest.
    const level = route === 'health' || route === 'metrics' ? 'debug' : 'info';
    if (!d.logger.isLevelEnabled(level)) return;
    const line = {
      requestId,
      method: req.method,
      route,
      path: path.length > 200 ? `${path.slice(0, 200)}…` : path,
      status,
      ms: Math.round((performance.now() - started) * 10) / 10,
    };
    d.logger[level](line, 'request');
  });
}
