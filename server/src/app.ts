import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { createProxyTokens } from './auth/proxy-token.js';
import { createAuthenticator } from './auth/viewer.js';
import { type Clock, systemClock } from './clock.js';
import type { Config } from './config.js';
import type { Db } from './db/connect.js';
import { createImagesRepo } from './db/images-repo.js';
import { RecentRows } from './db/recent-rows.js';
import type { EventBus } from './events/event-bus.js';
import { MemoryEventBus } from './events/memory-bus.js';
import { createHeartbeat, createProcessors, wireFreshness } from './freshness.js';
import { observeRequest } from './http/access-log.js';
import { createGraphql, type Yoga } from './http/graphql.js';
import { createMetricsRoute, createProbes, createReadyz, healthz } from './http/health.js';
import { createLocalBucketRoute } from './http/local-bucket.js';
import { createProxyRoute, PROXY_PREFIX } from './http/proxy.js';
import { requestIdFor, requestScope } from './http/request-context.js';
import { sendError } from './http/send.js';
import { createStaticRoute } from './http/static-app.js';
import { type JobEngine, type Processors, tickInterval } from './jobs/job-engine.js';
import { TimerJobEngine } from './jobs/timer-engine.js';
import { createLogger, type Logger } from './logger.js';
import { createMetrics, type Metrics } from './metrics.js';
import { createMemoryRateLimiter, type RateLimiter } from './rate-limit.js';
import type { Services } from './services.js';
import { MemoryStatsStore } from './stats/memory-stats.js';
import type { StatsStore } from './stats/stats-store.js';
import type { Storage } from './storage/storage.js';
import { AccessTracker } from './urls/access-tracker.js';
import { Refresher } from './urls/refresher.js';
import type { UrlStore } from './urls/store.js';
import { UrlService } from './urls/url-service.js';

export interface AppDeps {
  config: Config;
  db: Db;
  store: UrlStore;
  storage: Storage;
  /** Refresh events across nodes (default: in-process). */
  events?: EventBus;
  /** Daily stats and heartbeats (default: in-process). */
  stats?: StatsStore;
  /** Builds the job engine around the processors (default: in-process timers). */
  jobEngine?: (processors: Processors) => JobEngine;
  /** Shared fixed-window limiter for refreshSignedUrls (default: in-process). */
  refreshLimiter?: RateLimiter;
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
  /** Starts the background work this node's role asks for (flushing, heartbeats, refresh jobs). */
  start(): Promise<void>;
  /** Stops timers and flushes what they hold; the caller closes db/store/storage it opened. */
  stop(): Promise<void>;
  /**
   * Graceful shutdown, step one: /readyz turns 503, open subscriptions complete, responses ask
   * for `Connection: close`. In-flight requests carry on.
   */
  drain(): void;
}

type Route = (req: IncomingMessage, res: ServerResponse, url: URL) => unknown;

export function createApp(deps: AppDeps): App {
  const { config, db, store, storage } = deps;
  const clock = deps.clock ?? systemClock;
  const logger = deps.logger ?? createLogger(config.logLevel);
  const metrics = deps.metrics ?? createMetrics();
  const access = new AccessTracker(store, logger, clock);
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
  const events = deps.events ?? new MemoryEventBus();
  const stats = deps.stats ?? new MemoryStatsStore();
  const images = createImagesRepo(db);
  const refresher = new Refresher(
    { store, images, urls, clock, logger, metrics, access },
    { refreshAheadSeconds: config.refreshAheadSeconds, liveWindowSeconds: config.liveWindowSeconds },
  );
  const processors = createProcessors({ refresher, images, urls, stats, clock });
  const jobs = deps.jobEngine
    ? deps.jobEngine(processors)
    : new TimerJobEngine(processors, tickInterval(config.refreshAheadSeconds), logger);
  const nodeId = `${os.hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
  wireFreshness({ urls, events, access, stats, metrics, clock, logger });

  const services: Services = {
    config,
    clock,
    logger,
    metrics,
    db,
    images,
    recentRows: new RecentRows(images, clock),
    storage,
    store,
    access,
    urls,
    authenticate: createAuthenticator(config.auth),
    proxyTokens: createProxyTokens({
      secrets: config.proxyTokenSecrets,
      ttlSeconds: config.proxyTokenTtlSeconds,
      clock,
    }),
    events,
    stats,
    jobs,
    refresher,
    refreshLimiter:
      deps.refreshLimiter ??
      createMemoryRateLimiter(clock, { limit: config.refreshRateLimitPerMinute, windowMs: 60_000 }),
    nodeId,
  };
  const heartbeat = createHeartbeat(services);
  const shutdown = new AbortController();
  const yoga = createGraphql(services, { shutdown: shutdown.signal });
  const probes = createProbes(services, () => shutdown.signal.aborted);

  const webRoot = deps.webRoot ?? fileURLToPath(new URL('../../web/dist', import.meta.url));
  const exact: Record<string, Route> = {
    '/healthz': healthz,
    '/readyz': createReadyz(probes),
    '/metrics': createMetricsRoute(services, probes),
  };
  const localBucket =
    storage.driver === 'local'
      ? createLocalBucketRoute({ storage, secret: config.localSigningSecret, clock })
      : undefined;
  const staticApp = createStaticRoute(webRoot);
  const proxy = createProxyRoute(services);

  const route = (req: IncomingMessage, res: ServerResponse, url: URL): unknown => {
    const path = url.pathname;
    const r = exact[path];
    if (r) return r(req, res, url);
    if (config.role === 'worker') {
      // A worker does background work only; it answers probes and metrics, nothing else.
      sendError(res, 'NOT_FOUND', 'This node runs SIGNET_ROLE=worker: only /healthz, /readyz and /metrics');
      return undefined;
    }
    if (path === '/graphql' || path.startsWith('/graphql/')) return yoga(req, res);
    if (path.startsWith(PROXY_PREFIX)) return proxy(req, res, url);
    if (localBucket && path.startsWith('/local-bucket/')) return localBucket(req, res, url);
    if (req.method === 'GET' || req.method === 'HEAD') return staticApp(req, res, url);
    sendError(res, 'NOT_FOUND', 'No such route');
    return undefined;
  };

  const handle = (req: IncomingMessage, res: ServerResponse) => {
    const requestId = requestIdFor(req);
    res.setHeader('x-request-id', requestId);
    // While draining, keep-alive connections end with the response they carry.
    if (shutdown.signal.aborted) res.setHeader('connection', 'close');
    requestScope.run({ requestId }, () => {
      let url: URL;
      try {
        url = new URL(req.url ?? '/', 'http://gateway.invalid');
      } catch {
        sendError(res, 'BAD_USER_INPUT', 'Malformed request target');
        return;
      }
      observeRequest({ logger, metrics }, req, res, requestId, url.pathname);
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
    async start() {
      access.start();
      if (config.role !== 'api') {
        heartbeat.start();
        await jobs.startWorkers();
      }
    },
    async stop() {
      heartbeat.stop();
      await jobs.stop();
      await access.stop();
    },
    drain() {
      shutdown.abort();
    },
  };
}
