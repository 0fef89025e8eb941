import type { IncomingMessage, ServerResponse } from 'node:http';
import { fileURLToPath } from 'node:url';
import { PROXY_PREFIX } from '../auth/proxy-links.js';
import type { Container } from '../container.js';
import { badInput, methodNotAllowed, notFound } from '../errors/index.js';
import { assignRequestId } from '../lib/request-id.js';
import { observeRequest } from './access-log.js';
import { createGraphql, type Yoga } from './graphql.js';
import { withGraphqlCompression } from './graphql-compression.js';
import { createMetricsRoute, createProbes, createReadyz, healthz } from './health.js';
import { createHostCheck } from './host-header.js';
import { createLocalBucketRoute } from './local-bucket.js';
import { createProxyRoute } from './proxy.js';
import { renderError } from './render-error.js';
import { parseTarget, type RequestTarget } from './request-target.js';
import { createStallGuard } from './stall-guard.js';
import { APP_CSP, createStaticRoute } from './static-app.js';

export interface HttpApp {
  yoga: Yoga;
  /** The node:http request listener for every route. */
  handle: (req: IncomingMessage, res: ServerResponse) => void;
  /**
   * Graceful shutdown, step one: /readyz turns 503, open subscriptions complete, responses ask
   * for `Connection: close`. In-flight requests carry on.
   */
  drain(): void;
  /** Stops the app's own timers (after the server closed). */
  close(): void;
}

type Route = (req: IncomingMessage, res: ServerResponse, url: RequestTarget) => unknown;

/**
 * The HTTP side of a node: one route table over the container's services, a request id for each
 * request (its access line, errors and logs carry it), and one error renderer for everything a
 * route throws.
 */
export function createHttpApp(c: Container, options: { webRoot?: string } = {}): HttpApp {
  const { config, logger, metrics } = c;
  const shutdown = new AbortController();
  const stalls = createStallGuard(config.stalledClientSeconds * 1000);
  const observed = { logger, requests: metrics.httpRequests };
  const { yoga, sse } = createGraphql(c, { shutdown: shutdown.signal });
  const probes = createProbes(c, () => shutdown.signal.aborted);
  const webRoot = options.webRoot ?? fileURLToPath(new URL('../../../web/dist', import.meta.url));

  const exact = new Map<string, Route>([
    ['/healthz', healthz],
    ['/readyz', createReadyz(probes)],
    ['/metrics', createMetricsRoute(c, probes)],
  ]);
  // A GraphQL answer depends on its caller's token and holds capabilities (signed URLs, proxy
  // links): no shared cache may store it, nor hand it to another caller, even one set to keep
  // answers that say nothing (a GET with persisted operations is what a CDN is put in front of;
  // an error answer cached there signs the next caller out). With an allow-list it carries CORS
  // headers for listed origins only, so it varies by Origin too: yoga sends `Vary: Origin` only
  // when it names one of several origins itself. SSE and GraphiQL set their own Cache-Control.
  // With GRAPHQL_COMPRESSION every answer varies by Accept-Encoding too (a constant: nothing
  // per request), whichever coding it went out in.
  const graphqlVary = [
    'Authorization',
    ...(config.corsOrigins.length > 0 ? ['Origin'] : []),
    ...(config.graphqlCompression ? ['Accept-Encoding'] : []),
  ].join(', ');
  // JSON answers in br or gzip where the request accepts it (graphql-compression.ts), else yoga.
  const graphql = config.graphqlCompression ? withGraphqlCompression(yoga) : yoga;
  const uncacheable = (res: ServerResponse) => {
    res.setHeader('cache-control', 'private, no-store');
    res.setHeader('vary', graphqlVary);
  };
  const prefixed: [string, Route][] = [
    // yoga answers only its endpoint: below it (past `/graphql/`, routed above), an empty 404 of
    // its own. Not the web app's fallback either (a GET would get index.html for a mistyped path).
    [
      '/graphql/',
      () => {
        throw notFound('No such route: GraphQL answers at /graphql');
      },
    ],
    [PROXY_PREFIX, createProxyRoute(c)],
  ];
  // Whether the gateway serves the driver's URLs itself (a bucket serves its own).
  const driver = c.storage.driver;
  switch (driver) {
    case 'local':
      prefixed.push(['/local-bucket/', createLocalBucketRoute({ ...c, secrets: config.localVerifySecrets })]);
      break;
    case 'cos':
    case 's3':
      break;
    default: {
      const unknown: never = driver;
      throw new Error(`no route decided for storage driver ${String(unknown)}`);
    }
  }
  const staticApp = createStaticRoute(webRoot, { logger, csp: APP_CSP });
  const checkHost = createHostCheck({ authDisabled: config.auth.disabled, publicUrl: config.publicUrl });

  const route: Route = (req, res, url) => {
    const path = url.pathname;
    const r = exact.get(path);
    if (r) {
      // Probes and metrics are reads: a DELETE or POST to them is a mistake worth hearing about.
      if (req.method !== 'GET' && req.method !== 'HEAD') throw methodNotAllowed();
      return r(req, res, url);
    }
    // A worker does background work only; it answers probes and metrics, nothing else.
    if (config.role === 'worker')
      throw notFound('This node runs SIGNET_ROLE=worker: only /healthz, /readyz and /metrics');
    // With a trailing slash too, as yoga reads its endpoint (a client configured with `/graphql/`).
    if (path === '/graphql' || path === '/graphql/') {
      uncacheable(res);
      return sse.eligible(req) ? sse.handle(req, res) : graphql(req, res);
    }
    for (const [prefix, handler] of prefixed) if (path.startsWith(prefix)) return handler(req, res, url);
    if (req.method === 'GET' || req.method === 'HEAD') return staticApp(req, res, url);
    throw notFound('No such route');
  };

  const handle = (req: IncomingMessage, res: ServerResponse) => {
    // The id reaches what logs or answers for this request by hand (lib/request-id.ts says why).
    const requestId = assignRequestId(req);
    res.setHeader('x-request-id', requestId);
    // While draining, keep-alive connections end with the response they carry.
    if (shutdown.signal.aborted) res.setHeader('connection', 'close');
    const url = parseTarget(req.url ?? '/');
    if (!url) {
      renderError(res, badInput('Malformed request target'), logger);
      return;
    }
    observeRequest(observed, req, res, requestId, url.pathname);
    // Called at once, not from a microtask: a route that answers from memory (a hot proxy
    // redirect) then costs no promise at all. Thrown or rejected, a failure is rendered alike.
    try {
      checkHost(req.headers.host);
      const answer = route(req, res, url) as PromiseLike<unknown> | undefined;
      // Any thenable (yoga's adapter may hand back one of its own), as a microtask did before.
      if (typeof answer?.then === 'function') {
        answer.then(undefined, (err: unknown) => renderError(res, err, logger));
      }
    } catch (err) {
      renderError(res, err, logger);
    }
    // A response its route ended at once is a small one (a redirect, a probe, an error), whose
    // bytes fit the socket's buffers; tracking it would cost every hot redirect a Map entry and a
    // listener. Every route that may end with a large body answers later, so is tracked (see
    // stall-guard.ts).
    if (!res.writableEnded) stalls.track(res);
  };

  return {
    yoga,
    handle,
    drain() {
      shutdown.abort();
    },
    close() {
      stalls.stop();
      sse.close();
    },
  };
}
