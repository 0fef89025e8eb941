import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import { PlainCounter } from './lib/plain-counter.js';
import { PlainHistogram } from './lib/plain-histogram.js';

/** Every Prometheus series of the gateway, on a registry of its own (no global default). */
export function createMetrics(options: { defaultMetrics?: boolean } = {}) {
  const registry = new Registry();
  // The standard names (process_*, nodejs_*), so stock Node.js dashboards work unchanged.
  if (options.defaultMetrics) collectDefaultMetrics({ register: registry });
  const r = [registry];
  return {
    registry,
    // Observed once per resolve, and a proxy redirect is one: the cheap histogram too.
    resolveSeconds: new PlainHistogram({
      name: 'signet_url_resolve_seconds',
      help: 'Time to resolve one batch of signed URLs',
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1],
      registers: r,
    }),
    cacheHits: new Counter({
      name: 'signet_url_cache_hits_total',
      help: 'URLs served from the cache',
      registers: r,
    }),
    cacheMisses: new Counter({
      name: 'signet_url_cache_misses_total',
      help: 'URLs that had to be signed (absent, or too close to expiry)',
      registers: r,
    }),
    redisFallbacks: new Counter({
      name: 'signet_redis_fallbacks_total',
      help: 'Batches signed directly because Redis failed',
      registers: r,
    }),
    signatures: new Counter({
      name: 'signet_signatures_total',
      help: 'URL signatures made',
      labelNames: ['reason'] as const,
      registers: r,
    }),
    offGridSignatures: new Counter({
      name: 'signet_url_offgrid_signatures_total',
      help: 'URLs signed off the window grid (a request wanted more life than its step URL had left)',
      registers: r,
    }),
    variantSignatures: new Counter({
      name: 'signet_variant_signatures_total',
      help: "Variant URLs signed for a request, by preset (transform: a client's own)",
      labelNames: ['preset'] as const,
      registers: r,
    }),
    variantCacheHits: new Counter({
      name: 'signet_variant_cache_hits_total',
      help: "Variant URLs served from the cache, by preset (transform: a client's own)",
      labelNames: ['preset'] as const,
      registers: r,
    }),
    // Observed once per URL served: the cheap histogram (lib/plain-histogram.ts).
    servedRemainingSeconds: new PlainHistogram({
      name: 'signet_url_remaining_life_seconds',
      help: 'Remaining life of URLs at the moment they are served',
      buckets: [30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 86400],
      registers: r,
    }),
    refreshLagSeconds: new Gauge({
      name: 'signet_refresh_lag_seconds',
      help: 'How late the oldest due refresh is',
      registers: r,
    }),
    // Exported only by a node with a read replica (`exportReplicaState`): without one, a gauge at
    // 0 would read as "replica not in use" and "0 s behind" to a dashboard or an alert.
    dbReplicaLagSeconds: new Gauge({
      name: 'signet_db_replica_lag_seconds',
      help: 'How far the read replica (DATABASE_READ_URL) was behind the primary at its last poll; +Inf when it could not be measured (replica unreachable, not a replica, a read failed)',
      registers: [],
    }),
    dbReplicaInUse: new Gauge({
      name: 'signet_db_replica_in_use',
      help: 'Whether reads go to the read replica (1) or to the primary (0: unreachable, not replaying, or behind the bound)',
      registers: [],
    }),
    // Exported once measured (`exportClockOffset`): PGlite shares this process' clock, and a
    // gauge at 0 would read as "in step".
    clockOffsetSeconds: new Gauge({
      name: 'signet_clock_offset_seconds',
      help: "This node's clock minus PostgreSQL's (the primary's clock_timestamp(), read by the readiness probe at the midpoint of its round trip): positive when this node is ahead",
      registers: [],
    }),
    refreshBacklog: new Gauge({
      name: 'signet_refresh_backlog',
      help: 'Refreshes due and not yet done',
      registers: r,
    }),
    refreshes: new Counter({
      name: 'signet_refreshes_total',
      help: 'URLs re-signed ahead of expiry',
      registers: r,
    }),
    // Counted once per response: the cheap counter (lib/plain-counter.ts), as is httpRequests.
    proxyResponses: new PlainCounter({
      name: 'signet_proxy_responses_total',
      help: 'Responses of /proxy/:id',
      labelNames: ['mode', 'status'] as const,
      registers: r,
    }),
    sseSubscribers: new Gauge({
      name: 'signet_sse_subscribers',
      help: 'Open signedUrlRefreshed subscriptions on this node',
      registers: r,
    }),
    sseOpened: new Counter({
      name: 'signet_sse_opened_total',
      help: 'Subscriptions opened, by path: fast (SSE, http/sse-subscriptions.ts) or yoga (any transport)',
      labelNames: ['path'] as const,
      registers: r,
    }),
    httpRequests: new PlainCounter({
      name: 'signet_http_requests_total',
      help: 'HTTP responses by route and status (status "aborted": not all handed to the kernel: the client left, or stopped reading and was cut)',
      labelNames: ['route', 'status'] as const,
      registers: r,
    }),
    dependencyUp: new Gauge({
      name: 'signet_dependency_up',
      help: 'Last probe of a dependency (database, cache, storage): 1 reachable, 0 not',
      labelNames: ['dependency'] as const,
      registers: r,
    }),
    requestsShed: new Counter({
      name: 'signet_requests_shed_total',
      help: 'GraphQL requests refused at once (503) because MAX_REQUESTS_IN_FLIGHT were being served',
      registers: r,
    }),
    uploadsInFlight: new Gauge({
      name: 'signet_uploads_in_flight',
      help: 'Uploads on this node between reading their body and storing them (UPLOAD_CONCURRENCY bounds it)',
      registers: r,
    }),
    orphansDeleted: new Counter({
      name: 'signet_orphan_objects_deleted_total',
      help: 'Uploaded objects the orphan sweep deleted because no image row names them',
      registers: r,
    }),
    orphanSweepHeld: new Gauge({
      name: 'signet_orphan_sweep_held',
      help: '1 while the orphan sweep is held: this database is not the one that last swept the bucket (a restore, or another database); `signet orphan-sweep --adopt` releases it',
      registers: r,
    }),
    deletedRowsPurged: new Counter({
      name: 'signet_deleted_rows_purged_total',
      help: 'Soft-deleted image rows the purge removed once older than DELETED_ROW_RETENTION_DAYS',
      registers: r,
    }),
    localVariantsMade: new Counter({
      name: 'signet_local_variants_made_total',
      help: 'Variants the local driver tried to make on a first request, by result (ok, or why not: unreadable, unsupported, too_large, timeout, busy, error)',
      labelNames: ['result'] as const,
      registers: r,
    }),
    localVariantSeconds: new Histogram({
      name: 'signet_local_variant_seconds',
      help: 'Time to make one local variant on its first request (waiting for a render slot, reading, rendering, writing)',
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: r,
    }),
    placeholdersComputed: new Counter({
      name: 'signet_placeholders_computed_total',
      help: 'ThumbHash placeholders by result: computed, undecodable (marked, never retried), failed (retried later)',
      labelNames: ['result'] as const,
      registers: r,
    }),
    animationChecked: new Counter({
      name: 'signet_animation_checked_total',
      help: 'Rows from before the animated column looked at by the animation backfill, by result: animated, still (recorded, never read again), failed (retried later)',
      labelNames: ['result'] as const,
      registers: r,
    }),
    derivedVariantsMade: new Counter({
      name: 'signet_derived_variants_made_total',
      help: 'Images whose preset variants were made as derived objects (s3), by result: made, unrenderable (never retried), failed (retried later), gone (deleted meanwhile)',
      labelNames: ['result'] as const,
      registers: r,
    }),
    variantFallbacks: new Counter({
      name: 'signet_variant_fallbacks_total',
      help: "Preset URLs handed out as the original's because the preset's derived object was not made yet (s3)",
      labelNames: ['preset'] as const,
      registers: r,
    }),
    requestErrors: new Counter({
      name: 'signet_graphql_errors_total',
      help: 'GraphQL errors by code',
      labelNames: ['code'] as const,
      registers: r,
    }),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;

/** Puts the clock offset's gauge on `/metrics` (idempotent): a node on PostgreSQL, once measured. */
export function exportClockOffset(metrics: Pick<Metrics, 'clockOffsetSeconds' | 'registry'>): void {
  if (!metrics.registry.getSingleMetric('signet_clock_offset_seconds'))
    metrics.registry.registerMetric(metrics.clockOffsetSeconds);
}

/** Puts the read replica's gauges on `/metrics`: a node with DATABASE_READ_URL calls it once. */
export function exportReplicaState(metrics: Metrics): void {
  const gauges = [
    ['signet_db_replica_lag_seconds', metrics.dbReplicaLagSeconds],
    ['signet_db_replica_in_use', metrics.dbReplicaInUse],
  ] as const;
  for (const [name, gauge] of gauges) {
    if (!metrics.registry.getSingleMetric(name)) metrics.registry.registerMetric(gauge);
  }
}
