import type { IncomingMessage, ServerResponse } from 'node:http';
import { fileURLToPath } from 'node:url';
import { createAuthenticator } from './auth/viewer.js';
import { type Clock, systemClock } from './clock.js';
import type { Config } from './config.js';
import type { Db } from './db/connect.js';
import { createImagesRepo } from './db/images-repo.js';
import { createGraphql, type Yoga } from './http/graphql.js';
import { createMetricsRoute, createReadyz, healthz } from './http/health.js';
import { createLocalBucketRoute } from './http/local-bucket.js';
import { requestIdFor, requestScope } from './http/request-context.js';
import { sendError } from './http/send.js';
import { createStaticRoute } from './http/static-app.js';
import { createLogger, type Logger } from './logger.js';
import { createMetrics, type Metrics } from './metrics.js';
import type { Services } from './services.js';
import type { Storage } from './storage/storage.js';
import { AccessTracker } from './urls/access-tracker.js';
import type { UrlStore } from './urls/store.js';
import { UrlService } from './urls/url-service.js';

export interface AppDeps {
  config: Config;
  db: Db;
  store: UrlStore;
  storage: Storage;
  clock?: Clock;
  logger?: Logger;
  metrics?: Metrics;
  /** Folder of the built web app (default: web/dist next to the server). */
  webRoot?: string;
}

export interface App {
  services: Services;
  yoga: Yoga;
  /** The node:http request listener for every route. */
  handle: (req: IncomingMessage, res: ServerResponse) => void;
  /** Starts the background timers (access flushing). */
  start(): void;
  /** Stops timers and flushes what they hold; the caller closes db/store/storage it opened. */
  stop(): Promise<void>;
}

type Route = (req: IncomingMessage, res: ServerResponse, url: URL) => unknown;

export function createApp(deps: AppDeps): App {
  const { config, db, store, storage } = deps;
  const clock = deps.clock ?? systemClock;
  const logger = deps.logger ?? createLogger(config.logLevel);
  const metrics = deps.metrics ?? createMetrics();
  const access = new AccessTracker(store, logger);
  const urls = new UrlService({
    storage,
    store,
    clock,
    metrics,
    logger,
    access,
    timing: {
      urlTtlSeconds: config.urlTtlSeconds,
      refreshAheadSeconds: config.refreshAheadSeconds,
      defaultMinTtlSeconds: config.defaultMinTtlSeconds,
    },
  });
  const services: Services = {
    config,
    clock,
    logger,
    metrics,
    db,
    images: createImagesRepo(db),
    storage,
    store,
    access,
    urls,
    authenticate: createAuthenticator(config.auth),
  };
  const yoga = createGraphql(services);

  const webRoot = deps.webRoot ?? fileURLToPath(new URL('../../web/dist', import.meta.url));
  const exact: Record<string, Route> = {
    '/healthz': healthz,
    '/readyz': createReadyz(services),
    '/metrics': createMetricsRoute(services),
  };
  const localBucket =
    storage.driver === 'local'
      ? createLocalBucketRoute({ storage, secret: config.localSigningSecret, clock })
      : undefined;
  const staticApp = createStaticRoute(webRoot);

  const route = (req: IncomingMessage, res: ServerResponse, url: URL): unknown => {
    const path = url.pathname;
    if (path === '/graphql' || path.startsWith('/graphql/')) return yoga(req, res);
    const r = exact[path];
    if (r) return r(req, res, url);
    if (localBucket && path.startsWith('/local-bucket/')) return localBucket(req, res, url);
    if (req.method === 'GET' || req.method === 'HEAD') return staticApp(req, res, url);
    sendError(res, 'NOT_FOUND', 'No such route');
    return undefined;
  };

  const handle = (req: IncomingMessage, res: ServerResponse) => {
    const requestId = requestIdFor(req);
    res.setHeader('x-request-id', requestId);
    requestScope.run({ requestId }, () => {
      let url: URL;
      try {
        url = new URL(req.url ?? '/', 'http://gateway.invalid');
      } catch {
        sendError(res, 'BAD_USER_INPUT', 'Malformed request target');
        return;
      }
      Promise.resolve()
        .then(() => route(req, res, url))
        .catch((err: unknown) => {
          logger.error({ err, requestId, path: url.pathname }, 'unhandled route error');
          sendError(res, 'INTERNAL_SERVER_ERROR', 'Unexpected error');
        });
    });
  };

  return {
    services,
    yoga,
    handle,
    start() {
      access.start();
    },
    async stop() {
      await access.stop();
    },
  };
}
