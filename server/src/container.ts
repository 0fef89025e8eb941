import { randomBytes } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { sql } from 'kysely';
import { createProxyLinks, type ProxyLinks } from './auth/proxy-links.js';
import { createProxyTokens, type ProxyTokens } from './auth/proxy-token.js';
import { type Authenticate, createAuthenticator } from './auth/viewer.js';
import { type Clock, systemClock } from './clock.js';
import type { Config } from './config.js';
import type { RegionBucket } from './config-regions.js';
import { type DbOptions, openDatabase } from './db/connect.js';
import { createImagesRepo, type ImagesRepo } from './db/images-repo.js';
import { ReadReplica } from './db/read-replica.js';
import { primaryReads, type ReadRouting, replicaReads } from './db/read-routing.js';
import { RecentRows } from './db/recent-rows.js';
import { createStateRepo } from './db/state-repo.js';
import type { Db } from './db/types.js';
import { WritePins } from './db/write-pins.js';
import type { EventBus } from './events/event-bus.js';
import { MemoryEventBus } from './events/memory-bus.js';
import { RedisEventBus } from './events/redis-bus.js';
import { DELETED_ROW_PURGE_INTERVAL_MS, DeletedRowPurge } from './images/deleted-row-purge.js';
import { DerivedVariants } from './images/derived-variants.js';
import { ImageService } from './images/image-service.js';
import { OrphanSweeper } from './images/orphan-sweep.js';
import { Placeholders } from './images/placeholders.js';
import { ProxyAccess } from './images/proxy-access.js';
import { REPLICATION_CHECK_INTERVAL_MS, ReplicationCheck } from './images/replication-check.js';
import { SweepGuard } from './images/sweep-guard.js';
import { isUploadKey } from './images/upload.js';
import { UploadSlots } from './images/upload-slots.js';
import { VariantCatalog } from './images/variants.js';
import { VisibilityBatch } from './images/visibility-batch.js';
import { BullmqJobEngine } from './jobs/bullmq-engine.js';
import { type JobEngine, tickInterval } from './jobs/job-engine.js';
import { createProcessors } from './jobs/processors.js';
import { TimerJobEngine } from './jobs/timer-engine.js';
import { LogThrottle, suppressedField } from './lib/log-throttle.js';
import { Slots } from './lib/slots.js';
import { createLogger, type Logger } from './logger.js';
import { createMetrics, exportReplicaState, type Metrics } from './metrics.js';
import { createMemoryRateLimiter, createRedisRateLimiter, type RateLimiter } from './rate-limit.js';
import { createRedisClient, quietErrors, type RedisClient } from './redis/connect.js';
import { sendTogether } from './redis/send-together.js';
import { SentinelSwitchWatch } from './redis/sentinel-switch.js';
import type { SchemaServices } from './schema/context.js';
import { createHeartbeat, type Heartbeat } from './stats/heartbeat.js';
import { MemoryStatsStore } from './stats/memory-stats.js';
import { RedisStatsStore } from './stats/redis-stats.js';
import { dayOf, type StatsStore } from './stats/stats-store.js';
import { urlStatsReport } from './stats/url-stats-report.js';
import { createCdnSigner } from './storage/cdn/create-cdn-signer.js';
import { withCdn } from './storage/cdn/with-cdn.js';
import { createCosStorage } from './storage/cos.js';
import { deleteEverywhere } from './storage/delete-everywhere.js';
import { withDerivedVariants } from './storage/derived-variants.js';
import { createLocalStorage, ensureLocalBucket } from './storage/local.js';
import { LocalVariants } from './storage/local-variants.js';
import { createVariantRenderer } from './storage/render-variant.js';
import { createS3Storage } from './storage/s3.js';
import type { Storage } from './storage/storage.js';
import type { AccessTracker } from './urls/access-tracker.js';
import { eventUrlOf } from './urls/event-urls.js';
import { LiveUrls } from './urls/live-urls.js';
import { MemoryUrlStore } from './urls/memory-store.js';
import { RedisUrlStore } from './urls/redis-store.js';
import { Refresher } from './urls/refresher.js';
import { RegionChoice } from './urls/region-choice.js';
import type { ObjectPlacement } from './urls/resolved-url.js';
import type { UrlStore } from './urls/store.js';
import type { UrlTelemetry } from './urls/telemetry.js';
import { createUrlPath } from './urls/url-path.js';
import type { UrlService } from './urls/url-service.js';

/** What a caller may replace: time, logs, metrics, statement counting (tests and the bench). */
export interface ContainerOverrides {
  clock?: Clock;
  logger?: Logger;
  metrics?: Metrics;
  /** Called for every SQL statement (tests count the hot path's statements). */
  onQuery?: DbOptions['onQuery'];
  /**
   * Told when another process took this node's embedded database over (db/dir-lock.ts), after
   * the error is logged: main stops the process, so an orchestrator restarts it.
   */
  onDatabaseLost?: (err: Error) => void;
}

/**
 * Every service of a node, built once in dependency order by `createContainer` — the one
 * composition root, used by main, the tests and the bench. See docs/architecture.md.
 */
export interface Container {
  config: Config;
  clock: Clock;
  logger: Logger;
  metrics: Metrics;
  db: Db;
  /** DATABASE_READ_URL's replica and its lag poller, when configured. */
  readReplica: ReadReplica | undefined;
  /** The shared command connection, when Redis is configured. */
  redis: RedisClient | undefined;
  store: UrlStore;
  /** This node's region's bucket (the only one with one region). */
  storage: Storage;
  /**
   * Several regions: every region's bucket by name (this node's is `storage`); empty with one
   * region. See docs/operations.md, "Several regions".
   */
  regionStorages: ReadonlyMap<string, Storage>;
  /** The bucket known to hold a row's object: this region's, or its home region's until then. */
  storageFor(row: ObjectPlacement): Storage;
  /** The local driver's variants, made on first request (undefined with another driver). */
  localVariants: LocalVariants | undefined;
  events: EventBus;
  stats: StatsStore;
  access: AccessTracker;
  /** The one observer of the URL path (metrics and access counters). */
  telemetry: UrlTelemetry;
  urls: UrlService;
  refresher: Refresher;
  jobs: JobEngine;
  imagesRepo: ImagesRepo;
  images: ImageService;
  /** ThumbHash placeholders: after each upload, and the backfill job. */
  placeholders: Placeholders;
  /** Whether this database may sweep this bucket (`signet orphan-sweep`). */
  sweepGuard: SweepGuard;
  /** The node's budget of sharp work, renders and placeholder decodes together (Config.decodeBudget). */
  decodes: Slots;
  /** Derived variant objects (s3 only): the after-upload job and the backfill. */
  derivedVariants: DerivedVariants | undefined;
  /** Uploads in flight on this node, per viewer and in all. */
  uploadSlots: UploadSlots;
  /** Live rows remembered for seconds, for `/proxy/:id` (deleting forgets its row at once). */
  recentRows: RecentRows;
  authenticate: Authenticate;
  proxyTokens: ProxyTokens;
  /** Who may fetch an image through `/proxy/:id`. */
  proxyAccess: ProxyAccess;
  links: ProxyLinks;
  variants: VariantCatalog;
  /** What GraphQL resolvers may call. */
  schema: SchemaServices;
  heartbeat: Heartbeat;
  /** This process, as it appears in urlStats.workers. */
  nodeId: string;
  /** Starts the background work this node's role asks for (flushing, heartbeats, refresh jobs). */
  start(): Promise<void>;
  /** Stops timers and flushes what they hold (the access counts, leases), then closes everything. */
  close(): Promise<void>;
}

/** The folder of the `local` driver's bucket. */
export function localBucketRoot(config: Pick<Config, 'dataDir'>): string {
  return path.join(config.dataDir, 'bucket');
}

/**
 * Who makes a driver's variants and how their URLs are signed (docs/architecture.md, "Variants"),
 * decided once per driver: a name added to `Storage['driver']` does not compile until it is here.
 * - `gateway` (`local`): the driver signs the variant key into its URL, and the gateway's own
 *   route renders the variant on its first request (`LocalVariants`) and keeps it.
 * - `derived-objects` (`s3`): a job renders every preset into the bucket after upload
 *   (`DerivedVariants`); `withDerivedVariants` signs that object once the row says it is made.
 * - `store` (`cos`): the store renders on request; the driver signs the processing into the URL.
 */
export type VariantMaker = 'gateway' | 'derived-objects' | 'store';

export function variantMakerOf(driver: Storage['driver']): VariantMaker {
  switch (driver) {
    case 'local':
      return 'gateway';
    case 's3':
      return 'derived-objects';
    case 'cos':
      return 'store';
    default: {
      const unknown: never = driver;
      throw new Error(`no variant maker decided for storage driver ${String(unknown)}`);
    }
  }
}

/** The configured driver, its URLs signed for the CDN when `CDN_DOMAIN` is set. */
export function createStorage(config: Config, logger?: Logger): Storage {
  const driver = createDriver(config, logger);
  const signed = config.cdn ? withCdn(driver, createCdnSigner(config.cdn)) : driver;
  // On s3 a variant is a derived object in the same bucket (docs/architecture.md, "Variants on s3").
  return variantMakerOf(driver.driver) === 'derived-objects' ? withDerivedVariants(signed) : signed;
}

/**
 * Every region's bucket by name (several regions; empty with one): this node's is `own`; another
 * region's is the same driver with that region's bucket and, with `@host`, its endpoint host.
 * Without one, the region's name is its cloud region (COS's `{Region}`; on AWS S3 the regional
 * endpoint; a custom S3_ENDPOINT serves every bucket). No CDN in front of another region's bucket.
 */
export function createRegionStorages(config: Config, own: Storage, logger?: Logger): Map<string, Storage> {
  const out = new Map<string, Storage>();
  if (!config.regions) return out;
  for (const b of config.regions.buckets) {
    if (b.name === config.regions.self) {
      out.set(b.name, own);
      continue;
    }
    const driver = createDriver(regionConfig(config, b), logger);
    // Its variants are derived objects too: their marked signatures build its URLs, and a delete
    // there removes them (docs/architecture.md, "Several regions and derived variants").
    out.set(
      b.name,
      variantMakerOf(driver.driver) === 'derived-objects' ? withDerivedVariants(driver) : driver,
    );
  }
  return out;
}

/**
 * The storage images are put to and deleted from: a delete removes the object from every region's
 * bucket (cross-region replication may or may not carry deletes: docs/operations.md, "Several
 * regions"; deleting a missing one succeeds), and an upload's copy in a bucket that cannot be
 * reached for the moment is left to its region's orphan sweep (storage/delete-everywhere.ts).
 * The gateway's deletes and `signet erase-owner`'s.
 */
export function deletingEverywhere(
  own: Storage,
  regions: ReadonlyMap<string, Storage>,
): Pick<Storage, 'put' | 'delete'> {
  if (regions.size <= 1) return own;
  return {
    put: (...args) => own.put(...args),
    delete: (key) => deleteEverywhere(regions, key, { swept: isUploadKey }),
  };
}

/** The configuration of another region's bucket: this node's driver, with that bucket and endpoint. */
function regionConfig(config: Config, b: RegionBucket): Config {
  const driver = config.storageDriver;
  switch (driver) {
    case 'cos':
      return {
        ...config,
        cos: {
          ...config.cos,
          bucket: b.bucket,
          ...(b.host !== undefined ? { domain: b.host } : { region: b.name }),
        },
      };
    case 's3': {
      const s3 = config.s3!; // loadConfig parses the S3_* settings whenever STORAGE_DRIVER=s3
      return {
        ...config,
        s3: {
          ...s3,
          bucket: b.bucket,
          ...(b.host !== undefined
            ? { endpoint: withHost(s3.endpoint, b.host), publicEndpoint: withHost(s3.publicEndpoint, b.host) }
            : awsEndpoint(s3.region) === s3.endpoint
              ? { region: b.name, endpoint: awsEndpoint(b.name), publicEndpoint: awsEndpoint(b.name) }
              : {}), // one S3-compatible endpoint for every bucket
        },
      };
    }
    case 'local':
      // loadConfig refuses STORAGE_REGIONS without a bucket per region (checkOwnRegion).
      throw new Error('several regions need STORAGE_DRIVER=cos or s3');
    default: {
      const unknown: never = driver;
      throw new Error(`no regional bucket decided for storage driver ${String(unknown)}`);
    }
  }
}

const awsEndpoint = (region: string) => `https://s3.${region}.amazonaws.com`;

function withHost(origin: string, host: string): string {
  const u = new URL(origin);
  u.host = host;
  return u.origin;
}

function createDriver(config: Config, logger?: Logger): Storage {
  const driver = config.storageDriver;
  switch (driver) {
    case 'cos':
      return createCosStorage({
        secretId: config.cos.secretId,
        secretKey: config.cos.secretKey,
        securityToken: config.cos.securityToken,
        bucket: config.cos.bucket,
        region: config.cos.region,
        domain: config.cos.domain,
        protocol: config.cos.protocol,
        timeoutMs: config.cos.timeoutMs,
        putMinBytesPerSecond: config.cos.putMinBytesPerSecond,
        ...(logger ? { logger } : {}),
      });
    case 's3':
      // loadConfig parses the S3_* settings whenever STORAGE_DRIVER=s3.
      if (!config.s3) throw new Error('STORAGE_DRIVER=s3 without its S3_* settings');
      return createS3Storage({ ...config.s3, ...(logger ? { logger } : {}) });
    case 'local':
      return createLocalStorage({
        root: localBucketRoot(config),
        publicUrl: config.publicUrl,
        secret: config.localSigningSecret,
        variantsRoot: localVariantsRoot(config),
      });
    default: {
      const unknown: never = driver;
      throw new Error(`no constructor for storage driver ${String(unknown)}`);
    }
  }
}

/** Beside the bucket folder, not in it: see storage/local-variants.ts. */
function localVariantsRoot(config: Config): string {
  return path.join(config.dataDir, 'variants');
}

/**
 * The variant maker of a driver whose variants the gateway renders on request (`local`): bounded
 * like an upload (no original over UPLOAD_MAX_PIXELS or UPLOAD_MAX_BYTES is decoded) and by the
 * VARIANT_* knobs.
 */
function createLocalVariants(
  config: Config,
  storage: Storage,
  metrics: Metrics,
  logger: Logger,
  decodes: Slots,
) {
  if (variantMakerOf(storage.driver) !== 'gateway') return undefined;
  return new LocalVariants(
    { storage, renderer: createRenderer(config, decodes), metrics, logger },
    localVariantsRoot(config),
  );
}

/** The bounded variant renderer of the drivers whose variants Signet makes (local, s3). */
function createRenderer(config: Config, decodes: Slots) {
  return createVariantRenderer({
    decodes,
    maxInputPixels: config.uploadMaxPixels,
    maxInputBytes: config.uploadMaxBytes,
    maxOutputDimension: config.images.maxDimension,
    timeoutSeconds: config.variantTimeoutSeconds,
    concurrency: config.variantConcurrency,
    maxQueue: config.variantQueueMax,
  });
}

/** The Redis connections a node needs, or none (the embedded mode: everything in process). */
function openRedis(config: Config, logger: Logger) {
  if (!config.redisUrl && config.redisClusterNodes.length === 0 && config.redisSentinels.length === 0)
    return undefined;
  const connect = (kind: 'command' | 'blocking' | 'subscriber') =>
    createRedisClient({
      url: config.redisUrl,
      clusterNodes: config.redisClusterNodes,
      sentinels: config.redisSentinels,
      sentinelName: config.redisSentinelName,
      auth: config.redisAuth,
      commandTimeoutMs: config.redisCommandTimeoutMs,
      blocking: kind !== 'command',
      resubscribedByOwner: kind === 'subscriber',
    });
  // Sentinel mode: every connection follows a promotion as soon as it is announced
  // (redis/sentinel-switch.ts), not when the old primary is demoted.
  const watch =
    config.redisSentinels.length > 0
      ? new SentinelSwitchWatch({
          sentinels: config.redisSentinels,
          name: config.redisSentinelName,
          auth: config.redisAuth,
          logger,
        })
      : undefined;
  watch?.start();
  const open = (kind: Parameters<typeof connect>[0]) => {
    const client = connect(kind);
    if (watch && client instanceof Redis) watch.track(client);
    return client;
  };
  // Reconnect attempts fail many times a second while Redis is down: log one a minute.
  const errors = new LogThrottle();
  const command = quietErrors(open('command'), (err) =>
    errors.run('command', (suppressed) =>
      logger.warn(
        { err: err.message, ...suppressedField(suppressed) },
        'redis connection error (requests fall back to direct signing)',
      ),
    ),
  );
  return {
    command,
    blocking: () => quietErrors(open('blocking')),
    /** For the event bus, which subscribes again itself after a reconnect (events/redis-bus.ts). */
    subscriber: () => quietErrors(open('subscriber')),
    async close() {
      await watch?.close();
      command.disconnect();
    },
  };
}

/**
 * Where page queries and visibility lookups run: the read replica when DATABASE_READ_URL is set
 * (with write pins for read-your-own-writes, shared over the event bus), else the
 * primary. See docs/operations.md, "PostgreSQL read replica". `catchUpMs`: how long after a
 * write a replica in use may still lack it (0 without one).
 */
async function openReads(
  config: Config,
  db: Db,
  events: EventBus,
  logger: Logger,
  metrics: Metrics,
): Promise<{ readReplica: ReadReplica | undefined; reads: ReadRouting; catchUpMs: number }> {
  if (!config.databaseReadUrl)
    return { readReplica: undefined, reads: primaryReads(db.kysely), catchUpMs: 0 };
  exportReplicaState(metrics);
  const readReplica = new ReadReplica({
    url: config.databaseReadUrl,
    primary: db.kysely,
    maxLagMs: config.databaseReadMaxLagMs,
    pooled: config.databaseDirectUrl !== undefined,
    logger,
    onState: (s) => {
      metrics.dbReplicaLagSeconds.set(s.lagMs / 1000);
      metrics.dbReplicaInUse.set(s.usable ? 1 : 0);
    },
  });
  await readReplica.start();
  // By then any replica still in use has replayed the write: it is at most the bound behind,
  // measured at most a poll ago.
  const catchUpMs = config.databaseReadMaxLagMs + 2 * readReplica.pollMs;
  // Every role publishes the pins of its writes; the bus delivers them to the nodes that serve
  // pages (api, all), a worker's does not subscribe to them (events/redis-bus.ts).
  const pins = new WritePins({
    pinMs: catchUpMs,
    bus: { events, timeoutMs: config.redisCommandTimeoutMs * 2 },
    logger,
  });
  return { readReplica, reads: replicaReads({ primary: db.kysely, replica: readReplica, pins }), catchUpMs };
}

/**
 * Behind a pooler (DATABASE_DIRECT_URL set) the pools send no statement timeout of their own
 * (db/statement-timeout.ts): the role's is the one requests get. Without one, a runaway
 * statement holds a server connection of the pooler until it ends: said once, at start.
 */
async function warnWithoutStatementTimeout(db: Db, logger: Logger): Promise<void> {
  const r = await sql<{ t: string }>`select current_setting('statement_timeout') as t`.execute(db.kysely);
  if (r.rows[0]?.t === '0') {
    logger.warn(
      "DATABASE_URL's sessions have no statement timeout: set one on the role the pooler logs in as, e.g. alter role signet set statement_timeout = '10s' (docs/operations.md, \"PgBouncer\")",
    );
  }
}

/** Builds every service once, in dependency order. Closing it releases them in reverse. */
export async function createContainer(
  config: Config,
  overrides: ContainerOverrides = {},
): Promise<Container> {
  const clock = overrides.clock ?? systemClock;
  const logger = overrides.logger ?? createLogger(config.logLevel);
  const metrics = overrides.metrics ?? createMetrics({ defaultMetrics: true });
  const nodeId = `${os.hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;

  const db = await openDatabase({
    databaseUrl: config.databaseUrl,
    directUrl: config.databaseDirectUrl,
    dataDir: config.dataDir,
    ...(overrides.onQuery ? { onQuery: overrides.onQuery } : {}),
    onMigration: (event) => {
      // A long one (a table rewrite) holds the start, and locks what it changes: say so.
      if (event.kind === 'running') logger.info({ pending: event.pending }, 'database: running migrations');
      else if (event.kind === 'done')
        logger.info({ ran: event.ran, ms: event.ms }, 'database: migrations done');
      else
        logger.warn(
          { unknown: event.unknown },
          'database: migrated by a newer version of Signet; this one runs on it without those migrations',
        );
    },
    onFirstStart: ({ source, childPeakMiB }) => {
      if (source === 'template') logger.info('embedded database: new cluster copied from the build template');
      // Without a build's template (PGlite upgraded since the build, or a start from the sources).
      else
        logger.warn(
          { childPeakMiB: childPeakMiB === undefined ? undefined : Math.round(childPeakMiB) },
          "embedded database: no build template for this PGlite version, the new cluster was made by initdb (530-660 MiB in a child process): run the server's build to make one",
        );
    },
    // The embedded database's DATA_DIR lock (db/dir-lock.ts): a wait for a holder elsewhere is
    // logged; a lock another process took over makes statements fail as the database unavailable,
    // and main stops the process.
    lock: {
      onWait: (holder) =>
        logger.warn(
          { holder },
          'embedded database: its DATA_DIR lock is held elsewhere; waiting up to 17 s for it to go stale',
        ),
      onLost: (err) => {
        logger.error({ err: err.message }, 'embedded database: lost its DATA_DIR lock, no longer using it');
        overrides.onDatabaseLost?.(err);
      },
      // A lock that came with a copy of another DATA_DIR (a backup started elsewhere): taken over.
      onCopied: (message) => logger.warn(message),
    },
  });
  if (config.databaseDirectUrl !== undefined) await warnWithoutStatementTimeout(db, logger);
  const redis = openRedis(config, logger);
  const storage = createStorage(config, logger);
  // The local driver's folder is made here, by a node, never by a probe (storage/local.ts, ping).
  if (config.storageDriver === 'local') await ensureLocalBucket(localBucketRoot(config));
  const regionStorages = createRegionStorages(config, storage, logger);
  const regionChoice = config.regions ? new RegionChoice(config.regions) : undefined;
  const storageFor = (row: ObjectPlacement): Storage => {
    const region = regionChoice?.regionOf(row, clock.now());
    return region === undefined ? storage : (regionStorages.get(region) ?? storage);
  };
  const deleteStorage = deletingEverywhere(storage, regionStorages);
  // One budget of sharp work for the node: renders and placeholder decodes share libuv's pool
  // with every file read (Config.decodeBudget).
  const decodes = new Slots(config.decodeBudget);
  const localVariants = createLocalVariants(config, storage, metrics, logger, decodes);
  const limit = { limit: config.refreshRateLimitPerMinute, windowMs: 60_000 };
  const preloadLimit = { limit: config.preloadRateLimitPerMinute, windowMs: 60_000, name: 'rl-preload' };

  const store: UrlStore = redis
    ? new RedisUrlStore(redis.command, config.redisPrefix, config.redisCommandTimeoutMs * 2)
    : new MemoryUrlStore(clock, config.memoryCacheMaxEntries);
  const events: EventBus = redis
    ? new RedisEventBus(
        redis.command,
        redis.subscriber(),
        `${config.redisPrefix}events`,
        logger,
        eventUrlOf({
          storage,
          regions: regionStorages,
          refreshAheadSeconds: config.refreshAheadSeconds,
        }),
        config.role !== 'worker',
      )
    : new MemoryEventBus((err) => logger.error({ err }, 'a refresh-event listener failed'));
  const stats: StatsStore = redis
    ? new RedisStatsStore(redis.command, config.redisPrefix)
    : new MemoryStatsStore();
  const refreshLimiter: RateLimiter = redis
    ? createRedisRateLimiter(redis.command, config.redisPrefix, clock, limit)
    : createMemoryRateLimiter(clock, limit);
  const preloadLimiter: RateLimiter = redis
    ? createRedisRateLimiter(redis.command, config.redisPrefix, clock, preloadLimit)
    : createMemoryRateLimiter(clock, preloadLimit);

  const { access, telemetry, urls } = createUrlPath({
    storage,
    ...(regionChoice ? { regions: { storages: regionStorages, choice: regionChoice } } : {}),
    store,
    events,
    metrics,
    clock,
    logger,
    timing: {
      urlTtlSeconds: config.urlTtlSeconds,
      refreshAheadSeconds: config.refreshAheadSeconds,
      defaultMinTtlSeconds: config.defaultMinTtlSeconds,
    },
    usage: (usage) => stats.add(dayOf(clock.now()), usage),
    liveIds: () => events.subscribedIds(),
    // A quarter of the live window (at most 15 s): a subscribed image never leaves it.
    liveMarkMs: Math.min(15_000, config.liveWindowSeconds * 250),
    // The store and the bus share the command connection: a write-back and its event leave in
    // one socket write.
    ...(redis ? { sendTogether: sendTogether(redis.command) } : {}),
  });

  const { readReplica, reads, catchUpMs } = await openReads(config, db, events, logger, metrics);
  const imagesRepo = createImagesRepo(db, reads);
  const variants = new VariantCatalog(config.images, {
    derivedObjects: variantMakerOf(storage.driver) === 'derived-objects',
    onFallback: (preset) => metrics.variantFallbacks.inc({ preset }),
  });
  const refresher = new Refresher(
    {
      schedule: store,
      images: imagesRepo,
      urls,
      clock,
      logger,
      metrics,
      objectKeyFor: (row, variant) => variants.objectKeyFor(row, variant),
    },
    { refreshAheadSeconds: config.refreshAheadSeconds, liveWindowSeconds: config.liveWindowSeconds },
  );
  const sweepGuard = new SweepGuard(
    { storage, state: createStateRepo(db) },
    `orphan-sweep:${config.regions?.self ?? 'bucket'}`,
  );
  const orphans = new OrphanSweeper(
    { storage, images: imagesRepo, guard: sweepGuard, metrics, clock, logger },
    { graceSeconds: config.orphanSweepGraceSeconds },
  );
  const placeholders = new Placeholders(
    { storage, ...(regionChoice ? { storageFor } : {}), images: imagesRepo, events, metrics, logger, clock },
    {
      concurrency: config.placeholderConcurrency,
      maxBytes: config.uploadMaxBytes,
      maxPixels: config.uploadMaxPixels,
      timeoutSeconds: config.placeholderTimeoutSeconds,
      decodes,
    },
  );
  const derivedVariants = variants.derivedObjects
    ? new DerivedVariants(
        {
          storage,
          images: imagesRepo,
          catalog: variants,
          renderer: createRenderer(config, decodes),
          urls,
          events,
          metrics,
          logger,
        },
        {
          concurrency: config.variantConcurrency,
          maxBytes: config.uploadMaxBytes,
          timeoutSeconds: config.variantTimeoutSeconds,
          homeRegion: config.regions?.self,
        },
      )
    : undefined;
  // Several regions without REPLICATION_DELAY_SECONDS: this region's bucket is asked (HEAD).
  const replication =
    config.regions && config.regions.replicationDelaySeconds === undefined && regionStorages.size > 1
      ? new ReplicationCheck({ storage, images: imagesRepo, region: config.regions.self, clock, logger })
      : undefined;
  const replicationCheckMs = replication ? REPLICATION_CHECK_INTERVAL_MS : 0;
  // Rows of deleted images, once past DELETED_ROW_RETENTION_DAYS (docs/architecture.md,
  // "Deleting an image").
  const deletedRows = new DeletedRowPurge(
    { images: imagesRepo, metrics, clock, logger },
    { retentionDays: config.deletedRowRetentionDays },
  );
  const processors = createProcessors({
    replication,
    deletedRows,
    refresher,
    preload: { images: imagesRepo, urls, minTtlSeconds: config.defaultMinTtlSeconds },
    stats,
    orphans,
    placeholders,
    derivedVariants,
    clock,
  });
  const orphanSweepMs = config.orphanSweepIntervalSeconds * 1000;
  const placeholderBackfillMs = config.placeholderBackfillIntervalSeconds * 1000;
  const variantsBackfillMs = derivedVariants ? config.variantBackfillIntervalSeconds * 1000 : 0;
  const jobs: JobEngine = redis
    ? new BullmqJobEngine(processors, {
        connect: redis.blocking,
        prefix: config.redisPrefix,
        tickMs: tickInterval(config.refreshAheadSeconds),
        batchSize: 500,
        maxWaitingPreloads: config.preloadQueueMaxJobs,
        orphanSweepMs,
        placeholderBackfillMs,
        variantsBackfillMs,
        variantConcurrency: derivedVariants ? config.variantConcurrency : 0,
        replicationCheckMs,
        deletedRowPurgeMs: DELETED_ROW_PURGE_INTERVAL_MS,
        logger,
      })
    : new TimerJobEngine(
        processors,
        tickInterval(config.refreshAheadSeconds),
        logger,
        config.preloadQueueMaxJobs,
        orphanSweepMs,
        placeholderBackfillMs,
        variantsBackfillMs,
        replicationCheckMs,
        DELETED_ROW_PURGE_INTERVAL_MS,
      );

  // A row just forgotten (made private, deleted) is looked up on the primary while the replica
  // may still have it as it was: a revoked public link stops at once.
  const recentRows = new RecentRows(imagesRepo, clock, { primaryAfterForgetMs: catchUpMs });
  // A visibility change or delete on any node: this node's proxy forgets the row at once.
  events.onAccessChange((changes) => {
    for (const c of changes) recentRows.forget(c.imageId);
  });
  // A row recorded as animated (the animation backfill, the s3 variants job): a proxy link's
  // preset goes to the original from the next hit, not up to RECENT_ROW_MS later.
  events.onAnimated((ids) => {
    for (const id of ids) recentRows.forget(id);
  });
  const images = new ImageService({
    variants,
    config,
    images: imagesRepo,
    storage: deleteStorage,
    placeholders,
    urls,
    counters: store,
    recentRows,
    events,
    refreshLimiter,
    preloadLimiter,
    jobs,
    clock,
    logger,
  });
  const uploadSlots = new UploadSlots(
    { perViewer: config.uploadConcurrencyPerViewer, perNode: config.uploadConcurrency },
    (n) => metrics.uploadsInFlight.set(n),
  );
  const proxyTokens = createProxyTokens({
    secrets: config.proxyTokenSecrets,
    ttlSeconds: config.proxyTokenTtlSeconds,
    clock,
  });
  const links = createProxyLinks({ publicUrl: config.publicUrl, tokens: proxyTokens });
  const heartbeat = createHeartbeat({ nodeId, role: config.role, stats, metrics, clock, logger });
  const schema: SchemaServices = {
    images,
    urls,
    live: new LiveUrls({
      // Subscriptions opened together check visibility in one statement (images/visibility-batch.ts).
      images: new VisibilityBatch(imagesRepo),
      events,
      metrics,
      limits: { perViewer: config.subscriptionsPerViewer, stalledMs: config.stalledClientSeconds * 1000 },
      logger,
    }),
    links,
    variants,
    urlStats: (viewer, days) => urlStatsReport({ stats, access, refresher, clock }, viewer, days),
    limits: config,
  };

  let started = false;
  return {
    config,
    clock,
    logger,
    metrics,
    db,
    readReplica,
    redis: redis?.command,
    store,
    storage,
    regionStorages,
    storageFor,
    localVariants,
    events,
    stats,
    access,
    telemetry,
    urls,
    refresher,
    jobs,
    imagesRepo,
    images,
    placeholders,
    sweepGuard,
    decodes,
    derivedVariants,
    uploadSlots,
    recentRows,
    authenticate: createAuthenticator(config.auth),
    proxyTokens,
    proxyAccess: new ProxyAccess({ tokens: proxyTokens, rows: recentRows }),
    variants,
    links,
    schema,
    heartbeat,
    nodeId,
    async start() {
      if (started) return;
      started = true;
      access.start();
      if (config.role !== 'api') {
        heartbeat.start();
        await jobs.startWorkers();
      }
    },
    async close() {
      heartbeat.stop();
      // First, so a backfill run stops after its batch and jobs.stop() does not wait out its
      // budget. Placeholders being decoded finish (each bounded by its timeouts); waiting ones
      // are left to the next backfill.
      const placeholdersClosed = placeholders.close();
      deletedRows.close();
      const variantsClosed = derivedVariants?.close();
      await jobs.stop();
      await placeholdersClosed;
      await variantsClosed;
      await access.stop();
      await events.close();
      await store.close();
      await redis?.close();
      await readReplica?.close();
      await db.close();
    },
  };
}
