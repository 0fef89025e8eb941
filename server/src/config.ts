import { createPrivateKey, hkdfSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { type ImageConfig, parseImageConfig } from './config-images.js';
import { checkOwnRegion, parseRegionsConfig, type RegionsConfig } from './config-regions.js';
import { parseS3Config, type S3Config } from './config-s3.js';
import { CDN_AUTH_TYPES } from './storage/cdn/cdn-signer.js';
import type { CdnSettings } from './storage/cdn/create-cdn-signer.js';
import { type PutTiming, putDeadlineMs } from './storage/put-body.js';
import type { Storage } from './storage/storage.js';

/** The one typed configuration, parsed once at start from the environment (docs/architecture.md, "Configuration"). */
export interface Config {
  nodeEnv: string;
  port: number;
  host: string;
  /** Base URL the browser uses to reach this gateway (local bucket URLs and proxy links). */
  publicUrl: string;
  dataDir: string;
  databaseUrl: string | undefined;
  /**
   * DATABASE_READ_URL: a streaming replica of DATABASE_URL for page queries and visibility
   * lookups; writes and a writer's own next reads go to the primary (docs/operations.md).
   */
  databaseReadUrl: string | undefined;
  /** DATABASE_READ_MAX_LAG_MS: a replica further behind than this is skipped (reads go to the primary). */
  databaseReadMaxLagMs: number;
  /**
   * DATABASE_DIRECT_URL: PostgreSQL itself (or a session-mode pool), when DATABASE_URL is a
   * transaction-mode pool such as PgBouncer: the migrations and the work-list index builds, which
   * need a session, run on it; and the pools of DATABASE_URL and DATABASE_READ_URL then send no
   * startup parameter a pooler refuses (docs/operations.md, "PgBouncer").
   */
  databaseDirectUrl: string | undefined;
  redisUrl: string | undefined;
  redisClusterNodes: { host: string; port: number }[];
  /**
   * REDIS_SENTINELS: Sentinel addresses; when set, every Redis connection asks them for the
   * current primary of `redisSentinelName` and follows a failover (docs/operations.md).
   */
  redisSentinels: { host: string; port: number }[];
  /** REDIS_SENTINEL_NAME: the master name the sentinels monitor (default `mymaster`). */
  redisSentinelName: string;
  /**
   * REDIS_USERNAME, REDIS_PASSWORD, REDIS_SENTINEL_USERNAME, REDIS_SENTINEL_PASSWORD, REDIS_TLS:
   * auth and TLS for Sentinel and Cluster (REDIS_URL carries its own: `rediss://user:pass@…`).
   */
  redisAuth: RedisAuth;
  redisPrefix: string;
  /**
   * Per-command timeout: a dead or slow Redis costs at most this much on the hot path. Workers,
   * which have no hot path and send refresh batches of thousands of commands, wait longer.
   */
  redisCommandTimeoutMs: number;
  storageDriver: Storage['driver'];
  cos: {
    secretId: string;
    secretKey: string;
    securityToken: string | undefined;
    bucket: string;
    region: string;
    domain: string | undefined;
    protocol: 'http:' | 'https:';
    /** COS_TIMEOUT_MS: deadline of one COS call (a put gets more: see putDeadlineMs). */
    timeoutMs: number;
    /** COS_PUT_MIN_BYTES_PER_SECOND: the slowest upload rate a put's deadline allows for. */
    putMinBytesPerSecond: number;
  };
  /** IMAGE_PRESETS, IMAGE_TRANSFORMS, IMAGE_MAX_DIMENSION (see config-images.ts). */
  images: ImageConfig;
  /** The `s3` driver's settings (config-s3.ts); undefined with another driver. */
  s3: S3Config | undefined;
  /** Secret the local driver signs its URLs with (the first of `localVerifySecrets`). */
  localSigningSecret: string;
  /**
   * Every secret a local bucket URL may be signed with: LOCAL_SIGNING_SECRET's list (the first
   * signs, every one verifies), or one derived from each PROXY_TOKEN_SECRET key. A rotation adds
   * the new secret everywhere before any node signs with it (docs/operations.md, "Key rotation").
   */
  localVerifySecrets: readonly string[];
  /** A CDN in front of the bucket whose URLs Signet signs instead of the bucket's (CDN_*). */
  cdn: CdnConfig | undefined;
  /**
   * SIGNET_REGION, STORAGE_REGIONS and REPLICATION_DELAY_SECONDS (config-regions.ts); undefined
   * for one region (docs/operations.md, "Several regions").
   */
  regions: RegionsConfig | undefined;
  urlTtlSeconds: number;
  refreshAheadSeconds: number;
  /** Default minTtl: 300 s, or a quarter of the TTL when that is shorter. */
  defaultMinTtlSeconds: number;
  /**
   * An image neither requested nor subscribed to within this window drops out of the refresh
   * schedule (it is signed on demand next time).
   */
  liveWindowSeconds: number;
  auth: {
    jwtSecret: string | undefined;
    jwksUrl: string | undefined;
    issuer: string | undefined;
    audience: string | undefined;
    /** True when neither a secret nor a JWKS URL is set: every request is the admin `demo`. */
    disabled: boolean;
    /**
     * PUBLIC_READ_ANONYMOUS: a request with no credential at all may read PUBLIC images by id
     * (GraphQL `image`, `imagesByIds` and their URLs; `/proxy/:id`). Off: it is UNAUTHENTICATED.
     */
    publicReadAnonymous: boolean;
  };
  proxyTokenSecrets: { kid: string; secret: string }[];
  /** SUBSCRIPTIONS_PER_VIEWER: open `signedUrlRefreshed` streams one viewer may hold per node. */
  subscriptionsPerViewer: number;
  /**
   * STALLED_CLIENT_SECONDS: a response (event stream, download) whose client reads nothing
   * while output waits for this long is ended.
   */
  stalledClientSeconds: number;
  /**
   * SHUTDOWN_DELAY_SECONDS: after SIGTERM or SIGINT, how long the node goes on listening and
   * serving while it drains (`/readyz` 503 `draining`, every response `Connection: close`) before
   * it stops accepting connections; 0 (the default) stops accepting at once. For a load balancer
   * that health-checks `/readyz` (docs/operations.md, "Health, readiness, shutdown").
   */
  shutdownDelaySeconds: number;
  /**
   * MAX_REQUESTS_IN_FLIGHT: GraphQL requests (not event streams) one node serves at once; past
   * it an operation is refused at once, 503 with Retry-After (http/plugins/use-in-flight-bound.ts).
   * 0: no bound.
   */
  maxRequestsInFlight: number;
  /** METRICS_TOKEN: the bearer token `/metrics` asks for (unset: open, for a private network). */
  metricsToken: string | undefined;
  proxyTokenTtlSeconds: number;
  role: 'all' | 'api' | 'worker';
  /** refreshSignedUrls calls a viewer may make per minute. */
  refreshRateLimitPerMinute: number;
  /** preloadSignedUrls calls a viewer may make per minute. */
  preloadRateLimitPerMinute: number;
  /**
   * Preload jobs (of at most 500 ids each) that may wait in the queue, all viewers together; a
   * preload that does not fit is refused with RATE_LIMITED and queues nothing.
   */
  preloadQueueMaxJobs: number;
  uploadMaxBytes: number;
  /** SVG can carry scripts; refused unless UPLOAD_ALLOW_SVG=true. */
  uploadAllowSvg: boolean;
  /**
   * UPLOAD_STRIP_METADATA (default true): a JPEG, PNG, WebP, GIF or AVIF upload is stored without
   * its EXIF, XMP, IPTC, comments, text chunks and appended data, losslessly, its orientation kept
   * (uploads/jpeg-metadata.ts, png-metadata.ts, webp-metadata.ts, gif-metadata.ts,
   * avif-metadata.ts). SVG is stored as it came.
   */
  uploadStripMetadata: boolean;
  /** Bound on width × height declared by an uploaded image's header. */
  uploadMaxPixels: number;
  /** UPLOAD_CONCURRENCY_PER_VIEWER: uploads one viewer may have in flight on this node. */
  uploadConcurrencyPerViewer: number;
  /** UPLOAD_CONCURRENCY: uploads in flight on this node, all viewers together. */
  uploadConcurrency: number;
  /**
   * UPLOAD_MIN_BYTES_PER_SECOND: an upload's body may take 10 s plus a second per this many bytes
   * received; slower, its connection is cut (http/slow-body.ts), so a trickle cannot hold a slot.
   */
  uploadMinBytesPerSecond: number;
  /** UPLOAD_QUOTA_BYTES: bytes of live images a viewer may keep; undefined = no quota. */
  uploadQuotaBytes: number | undefined;
  /** UPLOAD_QUOTA_FILES: live images a viewer may keep; undefined = no quota. */
  uploadQuotaFiles: number | undefined;
  /**
   * VARIANT_CONCURRENCY: variants the local driver renders at once on this node (on s3: images
   * whose derived variants one worker node makes at once). Default: one per
   * core, at most the libuv thread pool less one (sharp works on that pool; file reads must not
   * queue behind renders).
   */
  variantConcurrency: number;
  /**
   * sharp work (variant renders and placeholder decodes together) at once on this node: libuv's
   * thread pool (UV_THREADPOOL_SIZE, 4 by default) less one. Each kind has its own bound too,
   * but sharp runs on that pool, and renders plus placeholders at their own bounds filled it:
   * every file read then waited behind the longest decode (~0.9 s in a review's measurement).
   */
  decodeBudget: number;
  /** VARIANT_QUEUE_MAX: renders that may wait for a slot; more are refused with 503. */
  variantQueueMax: number;
  /** VARIANT_TIMEOUT_SECONDS: the longest one render may take, reading its original included. */
  variantTimeoutSeconds: number;
  /**
   * VARIANT_BACKFILL_INTERVAL_SECONDS: how often workers make the derived variants of images that
   * have none (s3 only; 0 = never; uploads still get theirs from a job right after they are stored).
   */
  variantBackfillIntervalSeconds: number;
  /** ORPHAN_SWEEP_INTERVAL_SECONDS: how often workers look for objects without a row (0 = never). */
  orphanSweepIntervalSeconds: number;
  /**
   * ORPHAN_SWEEP_GRACE_SECONDS: an object without a row is an orphan only once it is this old, so an
   * upload still between its put and its insert is never touched.
   */
  orphanSweepGraceSeconds: number;
  /**
   * DELETED_ROW_RETENTION_DAYS: a deleted image's row (its key, owner and time of deletion) is
   * removed by the purge once deleted this long ago (0 = at the purge's next run).
   */
  deletedRowRetentionDays: number;
  /**
   * PLACEHOLDER_BACKFILL_INTERVAL_SECONDS: how often workers compute the ThumbHash of images that
   * have none (0 = never; uploads still get theirs right after they are stored).
   */
  placeholderBackfillIntervalSeconds: number;
  /** PLACEHOLDER_CONCURRENCY: images one node decodes at once for placeholders. */
  placeholderConcurrency: number;
  /** PLACEHOLDER_TIMEOUT_SECONDS: bound of reading one object, and of decoding it. */
  placeholderTimeoutSeconds: number;
  logLevel: string;
  seedDemo: boolean;
  /** How many demo images a first start seeds (SEED_DEMO_COUNT; the e2e gallery test asks for 100). */
  seedDemoCount: number;
  /** Bound of the in-process URL cache (embedded mode). */
  memoryCacheMaxEntries: number;
  /** GraphQL introspection (GRAPHQL_INTROSPECTION): on by default outside production only. */
  graphqlIntrospection: boolean;
  /**
   * GRAPHQL_JIT: execute operations compiled by graphql-jit (default true) instead of
   * graphql-js' interpreter; `false` switches back. docs/benchmarks.md measures both.
   */
  graphqlJit: boolean;
  /**
   * GRAPHQL_COMPRESSION: GraphQL's JSON answers of a kilobyte or more go out in br or gzip when
   * the request accepts it (default true; http/graphql-compression.ts); `false` leaves that to a
   * reverse proxy or CDN.
   */
  graphqlCompression: boolean;
  /**
   * FEDERATION=true: the schema is also an Apollo Federation v2 subgraph (`Image @key(fields:
   * "id")`, `_entities`, `_service { sdl }`); docs/federation.md.
   */
  federation: boolean;
  /** Largest GraphQL request body that is not a multipart upload. */
  graphqlMaxBodyBytes: number;
  /** JSON map sha256 → document: operations clients may send by hash (the web app's). */
  persistedOperationsFile: string | undefined;
  /** Refuse every document that is not in the persisted operations file. */
  persistedOperationsOnly: boolean;
  /** Browser origins allowed to call /graphql cross-origin (empty: same origin only). */
  corsOrigins: string[];
}

/**
 * How Signet authenticates to Redis behind Sentinel or in a Cluster (with REDIS_URL all of it is
 * in the URL, and this is empty). Passwords are never printed: not in logs, errors or `signet check`.
 */
export interface RedisAuth {
  /** REDIS_USERNAME: the data nodes' ACL user (unset: `default`). */
  username: string | undefined;
  /** REDIS_PASSWORD: the data nodes' password (requirepass, or the ACL user's). */
  password: string | undefined;
  /** REDIS_SENTINEL_USERNAME: the sentinels' own ACL user (Sentinel only). */
  sentinelUsername: string | undefined;
  /** REDIS_SENTINEL_PASSWORD: the sentinels' own password (their requirepass; Sentinel only). */
  sentinelPassword: string | undefined;
  /**
   * REDIS_TLS: TLS to the data nodes and, behind Sentinel, to the sentinels too. The server's
   * certificate is checked against Node's CAs (a private CA: NODE_EXTRA_CA_CERTS).
   */
  tls: boolean;
}

/** `CDN_*` and `CLOUDFRONT_*` (README, "A CDN in front of the bucket"). */
/**
 * CDN_DOMAIN, CDN_AUTH_* and CLOUDFRONT_*: one shape per kind of signer, declared beside the
 * signers that take it (storage/cdn/create-cdn-signer.ts).
 */
export type CdnConfig = CdnSettings;

export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    message: string,
  ) {
    super(`${variable}: ${message}`);
    this.name = 'ConfigError';
  }
}

type Env = Record<string, string | undefined>;

function str(env: Env, name: string): string | undefined {
  const v = env[name];
  return v === undefined || v.trim() === '' ? undefined : v.trim();
}

/** libuv's thread pool less one: sharp works on that pool, and file reads must keep a thread. */
function decodeBudget(env: Env): number {
  return Math.max(1, (Number(env.UV_THREADPOOL_SIZE) || 4) - 1);
}

/** See `Config.variantConcurrency`. */
function defaultVariantConcurrency(env: Env): number {
  return Math.max(1, Math.min(os.availableParallelism(), decodeBudget(env)));
}

function int(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = str(env, name);
  if (raw === undefined) return fallback;
  if (!/^-?\d+$/.test(raw)) throw new ConfigError(name, `expected a whole number, got "${raw}"`);
  const n = Number(raw);
  if (n < min || n > max) throw new ConfigError(name, `must be between ${min} and ${max}, got ${n}`);
  return n;
}

/** A whole number when set, undefined when not (an unset limit is no limit). */
function optionalInt(env: Env, name: string, min: number, max: number): number | undefined {
  return str(env, name) === undefined ? undefined : int(env, name, 0, min, max);
}

function oneOf<T extends string>(env: Env, name: string, values: readonly T[], fallback: T): T {
  const raw = str(env, name) ?? fallback;
  if (!values.includes(raw as T)) {
    throw new ConfigError(name, `must be one of ${values.join(', ')}, got "${raw}"`);
  }
  return raw as T;
}

function required(env: Env, name: string, why: string): string {
  const v = str(env, name);
  if (v === undefined) throw new ConfigError(name, `is required ${why}`);
  return v;
}

function parseUrl(env: Env, name: string, protocols: string[]): string | undefined {
  const raw = str(env, name);
  if (raw === undefined) return undefined;
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new ConfigError(name, `is not a valid URL: "${raw}"`);
  }
  if (!protocols.includes(u.protocol)) {
    throw new ConfigError(name, `must use ${protocols.join(' or ')}, got ${u.protocol}`);
  }
  return raw;
}

/** A `host:port,…` list (REDIS_CLUSTER_NODES, REDIS_SENTINELS). */
function parseHostPorts(env: Env, name: string): { host: string; port: number }[] {
  const raw = str(env, name);
  if (raw === undefined) return [];
  return raw.split(',').map((part) => {
    const m = /^\s*([^:\s]+):(\d{1,5})\s*$/.exec(part);
    // Five digits still allow ports past 65535 (or 0): refuse them here, not at the first connect.
    if (!m || Number(m[2]) < 1 || Number(m[2]) > 65535)
      throw new ConfigError(name, `expected host:port[,host:port…], got "${part}"`);
    return { host: m[1]!, port: Number(m[2]) };
  });
}

/**
 * One Redis topology: a single server (REDIS_URL), a Cluster (REDIS_CLUSTER_NODES) or a primary
 * behind Sentinel (REDIS_SENTINELS). Two at once would leave it to chance which one is used.
 */
function parseRedisTopology(env: Env) {
  const redisUrl = parseUrl(env, 'REDIS_URL', ['redis:', 'rediss:']);
  const redisClusterNodes = parseHostPorts(env, 'REDIS_CLUSTER_NODES');
  const redisSentinels = parseHostPorts(env, 'REDIS_SENTINELS');
  if (redisSentinels.length > 0 && redisClusterNodes.length > 0) {
    throw new ConfigError(
      'REDIS_SENTINELS',
      'and REDIS_CLUSTER_NODES are mutually exclusive (a Cluster fails over by itself): set one',
    );
  }
  if (redisSentinels.length > 0 && redisUrl !== undefined) {
    throw new ConfigError(
      'REDIS_SENTINELS',
      'and REDIS_URL are mutually exclusive (the sentinels name the primary): set one',
    );
  }
  if (redisClusterNodes.length > 0 && redisUrl !== undefined) {
    throw new ConfigError(
      'REDIS_CLUSTER_NODES',
      'and REDIS_URL are mutually exclusive (the nodes name the Cluster): set one',
    );
  }
  const name = str(env, 'REDIS_SENTINEL_NAME') ?? 'mymaster';
  if (!/^[A-Za-z0-9._-]{1,64}$/.test(name)) {
    throw new ConfigError('REDIS_SENTINEL_NAME', `expected 1-64 of [A-Za-z0-9._-], got "${name}"`);
  }
  const topology =
    redisUrl !== undefined
      ? 'url'
      : redisSentinels.length > 0
        ? 'sentinel'
        : redisClusterNodes.length > 0
          ? 'cluster'
          : 'none';
  const redisAuth = parseRedisAuth(env, topology);
  return { redisUrl, redisClusterNodes, redisSentinels, redisSentinelName: name, redisAuth };
}

/**
 * REDIS_USERNAME, REDIS_PASSWORD, REDIS_SENTINEL_* and REDIS_TLS: for Sentinel and Cluster, whose
 * addresses are bare host:port. With REDIS_URL they belong in the URL; set beside it, one of the
 * two would be ignored. No message here quotes a value: they are secrets.
 */
function parseRedisAuth(env: Env, topology: 'url' | 'sentinel' | 'cluster' | 'none'): RedisAuth {
  const username = str(env, 'REDIS_USERNAME');
  const password = str(env, 'REDIS_PASSWORD');
  const sentinelUsername = str(env, 'REDIS_SENTINEL_USERNAME');
  const sentinelPassword = str(env, 'REDIS_SENTINEL_PASSWORD');
  const tls = oneOf(env, 'REDIS_TLS', ['true', 'false'] as const, 'false') === 'true';
  if (topology === 'url') {
    if (username !== undefined)
      throw new ConfigError(
        'REDIS_USERNAME',
        'cannot be set with REDIS_URL: put the user in the URL (redis://user:password@host:port)',
      );
    if (password !== undefined)
      throw new ConfigError(
        'REDIS_PASSWORD',
        'cannot be set with REDIS_URL: put the password in the URL (redis://:password@host:port)',
      );
    if (tls) throw new ConfigError('REDIS_TLS', 'cannot be set with REDIS_URL: use a rediss:// URL for TLS');
  }
  if (topology === 'none') {
    // Embedded mode: set without a Redis, they would be ignored (a topology variable forgotten?).
    const what = 'needs REDIS_SENTINELS or REDIS_CLUSTER_NODES (there is no Redis to use it with)';
    if (username !== undefined) throw new ConfigError('REDIS_USERNAME', what);
    if (password !== undefined) throw new ConfigError('REDIS_PASSWORD', what);
    if (tls) throw new ConfigError('REDIS_TLS', what);
  }
  if (topology !== 'sentinel') {
    if (sentinelUsername !== undefined)
      throw new ConfigError(
        'REDIS_SENTINEL_USERNAME',
        "needs REDIS_SENTINELS (it is the sentinels' own user)",
      );
    if (sentinelPassword !== undefined)
      throw new ConfigError(
        'REDIS_SENTINEL_PASSWORD',
        "needs REDIS_SENTINELS (it is the sentinels' own password)",
      );
  }
  if (username !== undefined && password === undefined)
    throw new ConfigError(
      'REDIS_USERNAME',
      "needs REDIS_PASSWORD (Redis' AUTH takes a user with its password)",
    );
  if (sentinelUsername !== undefined && sentinelPassword === undefined)
    throw new ConfigError(
      'REDIS_SENTINEL_USERNAME',
      "needs REDIS_SENTINEL_PASSWORD (Redis' AUTH takes a user with its password)",
    );
  return { username, password, sentinelUsername, sentinelPassword, tls };
}

/** `PROXY_TOKEN_SECRET` is `secret` or `kid1:secret1,kid0:secret0` (first signs, all verify). */
function parseProxySecrets(env: Env, fallback: string): { kid: string; secret: string }[] {
  const raw = str(env, 'PROXY_TOKEN_SECRET');
  if (raw === undefined) return [{ kid: 'k0', secret: fallback }];
  const parts = raw.split(',').map((p) => p.trim());
  const secrets = parts.map((p) => {
    const i = p.indexOf(':');
    const kid = i > 0 ? p.slice(0, i) : 'k0';
    const secret = i > 0 ? p.slice(i + 1) : p;
    if (!/^[A-Za-z0-9_-]{1,16}$/.test(kid)) {
      throw new ConfigError('PROXY_TOKEN_SECRET', `key id "${kid}" must be 1-16 of [A-Za-z0-9_-]`);
    }
    if (secret.length < 16)
      throw new ConfigError('PROXY_TOKEN_SECRET', 'each secret needs at least 16 characters');
    return { kid, secret };
  });
  // Links name the key that signed them by its id: two secrets under one id would verify a new
  // link against the wrong one (a bare secret is `k0`, so two bare secrets are two `k0`s).
  const seen = new Set<string>();
  for (const { kid } of secrets) {
    if (seen.has(kid)) {
      throw new ConfigError(
        'PROXY_TOKEN_SECRET',
        `key id "${kid}" is given twice (a secret without "id:" is "k0"): name each key, e.g. k1:new-secret,k0:old-secret`,
      );
    }
    seen.add(kid);
  }
  return secrets;
}

/** The key signing proxy links and local URLs while auth is off. Public: development only. */
const DEV_SECRET = 'signet-dev-only-secret-do-not-use-in-production';

/** A key of its own for another use of a secret (HKDF-SHA256 with a label), never the secret itself. */
function deriveKey(secret: string, label: string): string {
  return Buffer.from(hkdfSync('sha256', secret, 'signet', label, 32)).toString('base64url');
}

/**
 * `HOST`: what the server listens on, a hostname or an IP address (IPv6 without brackets). A port
 * here (`0.0.0.0:8080`) or a URL would otherwise surface only as a failed listen after the
 * database had opened.
 */
function parseHost(env: Env, fallback: string): string {
  const host = str(env, 'HOST');
  if (host === undefined) return fallback;
  // Dot-separated labels of letters, digits, `-` (and `_`, which container names use).
  const hostname =
    /^[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?(\.[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*\.?$/;
  if (isIP(host) === 0 && !(host.length <= 253 && hostname.test(host))) {
    throw new ConfigError(
      'HOST',
      `must be a hostname or an IP address to listen on, without a port, scheme or brackets (e.g. 0.0.0.0, ::, 127.0.0.1; the port is PORT), got "${host}"`,
    );
  }
  return host;
}

/**
 * `PERSISTED_OPERATIONS_FILE` can be read and is a JSON object. Found only when the HTTP app is
 * built, a missing or broken file stopped start-up after the database had opened, with a stack,
 * and `signet check` said the configuration was fine. Its entries (each key the sha256 of its
 * document) are checked when it is loaded (http/plugins/use-persisted-documents.ts).
 */
function checkPersistedFile(file: string): void {
  let manifest: unknown;
  try {
    manifest = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const why = e.code ? `cannot read it (${e.code})` : `not JSON (${e.message})`;
    throw new ConfigError(
      'PERSISTED_OPERATIONS_FILE',
      `${file}: ${why}; point it at the file \`npm run persisted\` writes, or unset it`,
    );
  }
  if (typeof manifest !== 'object' || manifest === null || Object.keys(manifest).length === 0) {
    throw new ConfigError(
      'PERSISTED_OPERATIONS_FILE',
      `${file}: expected a non-empty JSON object of sha256 → document (\`npm run persisted\` writes one)`,
    );
  }
}

/**
 * `PUBLIC_URL`: an http(s) origin with an optional path prefix, without its trailing slash. Links
 * are made by appending paths to it, so a query or fragment would swallow them (`…#x/proxy/…`).
 */
function parsePublicUrl(env: Env, port: number): string {
  const raw = parseUrl(env, 'PUBLIC_URL', ['http:', 'https:']);
  if (raw === undefined) {
    // Port 0 is chosen by the system at listen: http://localhost:0 would be a dead link.
    if (port === 0) {
      throw new ConfigError(
        'PUBLIC_URL',
        'is required when PORT=0 (the port is only known after listen; set the URL clients reach this gateway at)',
      );
    }
    return `http://localhost:${port}`;
  }
  const u = new URL(raw);
  if (u.search || u.hash || raw.includes('?') || raw.includes('#') || u.username || u.password) {
    throw new ConfigError(
      'PUBLIC_URL',
      `must be an http(s)://host[:port][/path] URL without a query, fragment or credentials (links are appended to it), got "${raw}"`,
    );
  }
  return raw.replace(/\/+$/, '');
}

/**
 * COS_BUCKET and COS_REGION go into every URL's host (`<bucket>.cos.<region>.myqcloud.com`) and
 * signature: a typo (an upper-case letter, the APPID left off) otherwise shows up only as failed
 * requests. COS's rule: `<BucketName>-<APPID>`, BucketName of a-z, 0-9 and `-`, not starting or
 * ending with `-` (its length limit depends on the region's, so it is left to COS).
 */
function checkCosBucketAndRegion(env: Env): void {
  const bucket = str(env, 'COS_BUCKET');
  if (bucket !== undefined && !/^[a-z0-9]([a-z0-9-]*[a-z0-9])?-\d+$/.test(bucket)) {
    throw new ConfigError(
      'COS_BUCKET',
      `must be <name>-<APPID> (e.g. photos-1250000000: name of a-z, 0-9 and -, not starting or ending with -, then your account's APPID), got "${bucket}"`,
    );
  }
  const region = str(env, 'COS_REGION');
  if (region !== undefined && !/^[a-z0-9-]+$/.test(region)) {
    throw new ConfigError(
      'COS_REGION',
      `must be a COS region of a-z, 0-9 and - (e.g. ap-guangzhou), got "${region}"`,
    );
  }
}

/** `METRICS_TOKEN`: when set, `/metrics` wants it as a bearer token. */
function parseMetricsToken(env: Env): string | undefined {
  const token = str(env, 'METRICS_TOKEN');
  if (token !== undefined && token.length < 16) {
    throw new ConfigError('METRICS_TOKEN', 'needs at least 16 characters');
  }
  return token;
}

/** `CORS_ORIGINS`: a comma list of exact origins (`scheme://host[:port]`, no path, no `*`). */
function parseCorsOrigins(env: Env): string[] {
  const raw = str(env, 'CORS_ORIGINS');
  if (raw === undefined) return [];
  return raw.split(',').map((part) => {
    const o = part.trim().replace(/\/$/, '');
    let origin: string | undefined;
    try {
      const u = new URL(o);
      if (u.protocol === 'http:' || u.protocol === 'https:') origin = u.origin;
    } catch {
      // reported below
    }
    if (!origin || origin !== o.toLowerCase()) {
      throw new ConfigError(
        'CORS_ORIGINS',
        `expected origins like https://app.example[:port], got "${part}"`,
      );
    }
    return origin;
  });
}

/** Tencent's rule for authentication keys: 6–40 letters and digits. */
function tencentKey(env: Env, name: string): string | undefined {
  const key = str(env, name);
  if (key !== undefined && !/^[A-Za-z0-9]{6,40}$/.test(key)) {
    throw new ConfigError(name, 'must be 6-40 letters and digits (Tencent CDN authentication key)');
  }
  return key;
}

/** Tencent's rule for parameter names: 1–100 of letters, digits and `_`, not starting with a digit. */
/**
 * REDIS_PREFIX, without braces on a Cluster: Redis Cluster places a key by the first `{…}` in it,
 * and the keys carry their own hash tags after the prefix (`{u<n>}`, `{refresh}`, BullMQ's
 * `{<prefix>-bull}`): a tag in the prefix would put every key in one slot, the whole cache on one
 * shard. A single Redis or Sentinel has no slots: braces there are harmless, and kept (changing a
 * prefix splits the nodes of a rolling upgrade across two sets of keys).
 */
function redisPrefix(env: Env): string {
  const prefix = str(env, 'REDIS_PREFIX') ?? 'signet:';
  if (str(env, 'REDIS_CLUSTER_NODES') !== undefined && /[{}]/.test(prefix)) {
    throw new ConfigError(
      'REDIS_PREFIX',
      `must not contain { or } with REDIS_CLUSTER_NODES (Signet puts its own hash tags after it; one in the prefix would put every key in one Cluster slot), got "${prefix}"`,
    );
  }
  return prefix;
}

function paramName(env: Env, name: string, fallback: string): string {
  const v = str(env, name) ?? fallback;
  if (!/^[A-Za-z_][A-Za-z0-9_]{0,99}$/.test(v)) {
    throw new ConfigError(name, `must be 1-100 letters, digits or _, not starting with a digit, got "${v}"`);
  }
  return v;
}

/** `CDN_DOMAIN`: a host (https) or an http(s) URL with nothing after the host. */
function cdnDomain(raw: string): string {
  let u: URL | undefined;
  try {
    u = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(raw) ? raw : `https://${raw}`);
  } catch {
    // reported below
  }
  if (
    !u ||
    (u.protocol !== 'https:' && u.protocol !== 'http:') ||
    u.pathname !== '/' ||
    u.search ||
    u.hash ||
    u.username ||
    u.password
  ) {
    throw new ConfigError(
      'CDN_DOMAIN',
      `must be a host or an http(s)://host[:port] URL without a path, got "${raw}"`,
    );
  }
  return u.origin;
}

/** PEM text; `\n` escapes (one-line environment files) become newlines. */
function rsaPrivateKey(env: Env, name: string): string {
  const pem = required(env, name, 'when CDN_AUTH_TYPE=cloudfront').replace(/\\n/g, '\n');
  let type: string | undefined;
  try {
    type = pem.startsWith('-----BEGIN') ? createPrivateKey(pem).asymmetricKeyType : undefined;
  } catch {
    // reported below
  }
  if (type !== 'rsa') throw new ConfigError(name, 'is not a PEM RSA private key');
  return pem;
}

function parseCdn(env: Env, storageDriver: Storage['driver']): CdnConfig | undefined {
  const rawDomain = str(env, 'CDN_DOMAIN');
  const rawType = str(env, 'CDN_AUTH_TYPE');
  if (rawDomain === undefined) {
    if (rawType !== undefined) throw new ConfigError('CDN_DOMAIN', 'is required with CDN_AUTH_TYPE');
    return undefined;
  }
  if (rawType === undefined) {
    throw new ConfigError(
      'CDN_AUTH_TYPE',
      `is required with CDN_DOMAIN (one of ${CDN_AUTH_TYPES.join(', ')})`,
    );
  }
  const authType = oneOf(env, 'CDN_AUTH_TYPE', CDN_AUTH_TYPES, 'tencent-a');
  const domain = cdnDomain(rawDomain);
  // Whether the driver's store can be a CDN's origin (an allowlist: a new driver must decide).
  switch (storageDriver) {
    case 'cos':
    case 's3':
      break;
    case 'local':
      // The local bucket route wants its own signature on every request, which no CDN can add.
      throw new ConfigError(
        'CDN_DOMAIN',
        'needs STORAGE_DRIVER=cos or s3 (the local bucket cannot be a CDN origin)',
      );
    default: {
      const unknown: never = storageDriver;
      throw new Error(`no CDN support decided for storage driver ${String(unknown)}`);
    }
  }
  switch (authType) {
    case 'cloudfront': {
      const keyPairId = required(env, 'CLOUDFRONT_KEY_PAIR_ID', 'when CDN_AUTH_TYPE=cloudfront');
      if (!/^[A-Za-z0-9]{1,128}$/.test(keyPairId)) {
        throw new ConfigError(
          'CLOUDFRONT_KEY_PAIR_ID',
          `must be letters and digits (a CloudFront public key ID), got "${keyPairId}"`,
        );
      }
      const privateKey = rsaPrivateKey(env, 'CLOUDFRONT_PRIVATE_KEY');
      return { domain, authType, cloudfront: { keyPairId, privateKey } };
    }
    case 'tencent-a':
    case 'tencent-b':
    case 'tencent-c':
    case 'tencent-d': {
      const authKey = tencentKey(env, 'CDN_AUTH_KEY');
      if (authKey === undefined)
        throw new ConfigError('CDN_AUTH_KEY', `is required when CDN_AUTH_TYPE=${authType}`);
      const backupKey = tencentKey(env, 'CDN_AUTH_BACKUP_KEY');
      const authParam = paramName(env, 'CDN_AUTH_PARAM', 'sign');
      const timeParam = paramName(env, 'CDN_AUTH_TIME_PARAM', 't');
      if (timeParam === authParam)
        throw new ConfigError('CDN_AUTH_TIME_PARAM', 'must differ from CDN_AUTH_PARAM');
      return { domain, authType, authKey, backupKey, authParam, timeParam };
    }
    default: {
      const unknown: never = authType;
      throw new Error(`no CDN settings decided for CDN_AUTH_TYPE ${String(unknown)}`);
    }
  }
}

/**
 * The values of STORAGE_DRIVER: every `Storage['driver']`, so a name added there does not compile
 * until it is here too (docs/architecture.md, "A storage driver").
 */
const STORAGE_DRIVER_NAMES: { [D in Storage['driver']]: D } = { local: 'local', cos: 'cos', s3: 's3' };

/**
 * The bucket (and endpoint host) the driver is configured for, which this node's STORAGE_REGIONS
 * entry must name (checkOwnRegion refuses a driver without a bucket per region).
 */
function configuredBucket(
  env: Env,
  driver: Storage['driver'],
  s3: S3Config | undefined,
  cosDomain: string | undefined,
): { kind: Storage['driver']; bucket: string; host: string | undefined } {
  switch (driver) {
    case 's3':
      return { kind: 's3', bucket: s3!.bucket, host: new URL(s3!.endpoint).host };
    case 'cos':
      return { kind: 'cos', bucket: str(env, 'COS_BUCKET') ?? '', host: cosDomain };
    case 'local':
      return { kind: 'local', bucket: '', host: undefined };
    default: {
      const unknown: never = driver;
      throw new Error(`no bucket variables decided for storage driver ${String(unknown)}`);
    }
  }
}

/**
 * What bounds a put on this driver (the orphan sweep's grace must outlast the longest), and the
 * settings that do, for a message; undefined for a driver whose put has no deadline (`local`
 * writes a file).
 */
function putDeadlineOf(
  driver: Storage['driver'],
  cos: PutTiming,
  s3: S3Config | undefined,
): { timing: PutTiming; setBy: string } | undefined {
  switch (driver) {
    case 'cos':
      return { timing: cos, setBy: 'COS_TIMEOUT_MS plus UPLOAD_MAX_BYTES at COS_PUT_MIN_BYTES_PER_SECOND' };
    case 's3':
      return {
        timing: s3!,
        setBy: `the s3 driver's fixed ${s3!.timeoutMs / 1000} s plus UPLOAD_MAX_BYTES at ${s3!.putMinBytesPerSecond / 1024} KiB/s`,
      };
    case 'local':
      return undefined;
    default: {
      const unknown: never = driver;
      throw new Error(`no put deadline decided for storage driver ${String(unknown)}`);
    }
  }
}

export function loadConfig(env: Env = process.env): Config {
  const nodeEnv = str(env, 'NODE_ENV') ?? 'development';
  const production = nodeEnv === 'production';
  const port = int(env, 'PORT', 4000, 0, 65535);
  const dataDir = path.resolve(str(env, 'DATA_DIR') ?? './data');

  const urlTtlSeconds = int(env, 'URL_TTL_SECONDS', 3600, 5, 604800);
  const refreshAheadSeconds = int(
    env,
    'REFRESH_AHEAD_SECONDS',
    Math.min(900, Math.floor(urlTtlSeconds / 4)),
    1,
    604799,
  );
  if (refreshAheadSeconds >= urlTtlSeconds) {
    throw new ConfigError('REFRESH_AHEAD_SECONDS', `must be below URL_TTL_SECONDS (${urlTtlSeconds})`);
  }
  // A step's URL has just over REFRESH_AHEAD_SECONDS left at the step's end. Below the default
  // minTtl, every default request late in a step would get an off-grid URL of its own, defeating
  // "one URL per window" (DESIGN, "Edge semantics").
  const defaultMinTtlSeconds = Math.min(300, Math.floor(urlTtlSeconds / 4));
  if (refreshAheadSeconds < defaultMinTtlSeconds) {
    throw new ConfigError(
      'REFRESH_AHEAD_SECONDS',
      `must be at least ${defaultMinTtlSeconds}, the default minTtl (300 s, or a quarter of URL_TTL_SECONDS when shorter): a step's URL has only REFRESH_AHEAD_SECONDS left at its end, so a lower value gives default requests near a step's end URLs of their own; got ${refreshAheadSeconds}`,
    );
  }

  const storageDriver = oneOf(env, 'STORAGE_DRIVER', Object.values(STORAGE_DRIVER_NAMES), 'local');
  const s3 = parseS3Config(
    env,
    storageDriver === 's3',
    (variable, message) => new ConfigError(variable, message),
  );
  const cosRequired = (name: string) =>
    storageDriver === 'cos' ? required(env, name, 'when STORAGE_DRIVER=cos') : (str(env, name) ?? '');
  if (storageDriver === 'cos') checkCosBucketAndRegion(env);
  const cosProtocolRaw = str(env, 'COS_PROTOCOL') ?? 'https';
  const cosProtocol = cosProtocolRaw.replace(/:$/, '');
  if (cosProtocol !== 'http' && cosProtocol !== 'https') {
    throw new ConfigError('COS_PROTOCOL', `must be http or https, got "${cosProtocolRaw}"`);
  }
  const cdn = parseCdn(env, storageDriver);
  const cosDomain = str(env, 'COS_DOMAIN');
  if (cosDomain !== undefined && /[/\s?#]/.test(cosDomain)) {
    throw new ConfigError(
      'COS_DOMAIN',
      `must be a host[:port] (may use {Bucket} and {Region}), got "${cosDomain}"`,
    );
  }

  const regions = parseRegionsConfig(env, (variable, message) => new ConfigError(variable, message));
  if (regions) {
    checkOwnRegion(
      regions,
      configuredBucket(env, storageDriver, s3, cosDomain),
      (variable, message) => new ConfigError(variable, message),
    );
  }

  const jwtSecret = str(env, 'AUTH_JWT_SECRET');
  // A JWKS fetched over plain http could be swapped on the way: https only in production.
  const jwksUrl = parseUrl(env, 'AUTH_JWKS_URL', production ? ['https:'] : ['https:', 'http:']);
  if (jwtSecret !== undefined && jwtSecret.length < 32) {
    throw new ConfigError('AUTH_JWT_SECRET', 'must be at least 32 characters (HS256 needs a 256-bit key)');
  }
  // Both set used to mean the secret alone, the JWKS silently unused: a deployment that meant its
  // identity provider's keys would have taken tokens signed with a shared secret instead.
  if (jwtSecret !== undefined && jwksUrl !== undefined) {
    throw new ConfigError('AUTH_JWKS_URL', 'cannot be combined with AUTH_JWT_SECRET: set one of them');
  }
  const authDisabled = jwtSecret === undefined && jwksUrl === undefined;
  if (authDisabled && production) {
    throw new ConfigError('AUTH_JWT_SECRET', 'or AUTH_JWKS_URL is required when NODE_ENV=production');
  }
  const issuer = str(env, 'AUTH_ISSUER');
  const audience = str(env, 'AUTH_AUDIENCE');
  if (jwksUrl !== undefined && production) {
    // A JWKS (an identity provider's keys) signs tokens for many applications: without both
    // checks, a token that provider issued for anyone else would be accepted here.
    if (issuer === undefined)
      throw new ConfigError('AUTH_ISSUER', 'is required with AUTH_JWKS_URL in production');
    if (audience === undefined) {
      throw new ConfigError('AUTH_AUDIENCE', 'is required with AUTH_JWKS_URL in production');
    }
  }

  // The development key is public (it is in this file): it may sign only while auth is off,
  // i.e. on a developer's machine where every request is the demo admin anyway.
  const proxyRaw = str(env, 'PROXY_TOKEN_SECRET');
  if (proxyRaw === undefined && !authDisabled) {
    throw new ConfigError(
      'PROXY_TOKEN_SECRET',
      'is required when auth is on (AUTH_JWT_SECRET or AUTH_JWKS_URL): the built-in development key is public',
    );
  }
  const proxyTokenSecrets = parseProxySecrets(env, DEV_SECRET);
  // A secret, or a list `new,old,…`: the first signs, every one verifies (as PROXY_TOKEN_SECRET's
  // keys). Unset: one derived from each proxy key, so that key's rotation rotates these too.
  const ownLocalSecrets = str(env, 'LOCAL_SIGNING_SECRET')
    ?.split(',')
    .map((p) => p.trim());
  // The same floor as PROXY_TOKEN_SECRET: an HMAC key a few characters long can be guessed.
  if (ownLocalSecrets?.some((p) => p.length < 16)) {
    throw new ConfigError(
      'LOCAL_SIGNING_SECRET',
      'must be a secret of at least 16 characters, or a comma-separated list of them, the signing one first (or unset it to derive them)',
    );
  }
  const localSecrets =
    ownLocalSecrets ?? proxyTokenSecrets.map((k) => deriveKey(k.secret, 'signet local-bucket v1'));

  const publicUrl = parsePublicUrl(env, port);

  const redis = parseRedisTopology(env);
  const databaseUrl = parseUrl(env, 'DATABASE_URL', ['postgres:', 'postgresql:']);
  const databaseReadUrl = parseUrl(env, 'DATABASE_READ_URL', ['postgres:', 'postgresql:']);
  if (databaseReadUrl !== undefined && databaseUrl === undefined) {
    throw new ConfigError(
      'DATABASE_READ_URL',
      'needs DATABASE_URL (the primary it replicates; embedded PGlite has no replicas)',
    );
  }
  const databaseDirectUrl = parseUrl(env, 'DATABASE_DIRECT_URL', ['postgres:', 'postgresql:']);
  if (databaseDirectUrl !== undefined && databaseUrl === undefined) {
    throw new ConfigError(
      'DATABASE_DIRECT_URL',
      'needs DATABASE_URL (the pool in front of the same PostgreSQL; embedded PGlite has no pooler)',
    );
  }
  const role = oneOf(env, 'SIGNET_ROLE', ['all', 'api', 'worker'] as const, 'all');

  const cosTimeouts = {
    timeoutMs: int(env, 'COS_TIMEOUT_MS', 10_000, 100, 600_000),
    putMinBytesPerSecond: int(env, 'COS_PUT_MIN_BYTES_PER_SECOND', 256 * 1024, 1024, 1024 * 1024 * 1024),
  };
  const uploadMaxBytes = int(env, 'UPLOAD_MAX_BYTES', 20 * 1024 * 1024, 1, 5 * 1024 * 1024 * 1024);
  // An object lands when its put completes and gets its row right after. A put may run until its
  // deadline, so the grace must outlast the longest one, or the sweep could take a live upload.
  const putDeadline = putDeadlineOf(storageDriver, cosTimeouts, s3);
  const longestPutSeconds = putDeadline
    ? Math.ceil(putDeadlineMs(putDeadline.timing, uploadMaxBytes) / 1000)
    : 0;
  const orphanSweepGraceSeconds = int(
    env,
    'ORPHAN_SWEEP_GRACE_SECONDS',
    Math.max(3600, 2 * longestPutSeconds),
    1,
    30 * 86400,
  );
  if (orphanSweepGraceSeconds <= longestPutSeconds) {
    // Name only what sets the deadline on this driver: the COS_* settings do nothing on s3.
    throw new ConfigError(
      'ORPHAN_SWEEP_GRACE_SECONDS',
      `must be above ${longestPutSeconds} s, the deadline of the largest upload's put (${putDeadline?.setBy}): raise it or lower UPLOAD_MAX_BYTES`,
    );
  }

  const introspection = production ? 'false' : 'true';
  const persistedFile = str(env, 'PERSISTED_OPERATIONS_FILE');
  const persistedOperationsOnly =
    oneOf(env, 'PERSISTED_OPERATIONS_ONLY', ['true', 'false'] as const, 'false') === 'true';
  if (persistedOperationsOnly && persistedFile === undefined) {
    throw new ConfigError('PERSISTED_OPERATIONS_ONLY', 'needs PERSISTED_OPERATIONS_FILE (the allow-list)');
  }
  const federation = oneOf(env, 'FEDERATION', ['true', 'false'] as const, 'false') === 'true';
  // A federation gateway sends the documents its query planner writes (`_entities` with the
  // fields a client asked for): no allow-list can hold them (docs/federation.md).
  if (federation && persistedOperationsOnly) {
    throw new ConfigError(
      'FEDERATION',
      'cannot be combined with PERSISTED_OPERATIONS_ONLY=true (a gateway sends documents its query planner writes); enforce persisted operations on the gateway instead',
    );
  }
  const persistedOperationsFile = persistedFile === undefined ? undefined : path.resolve(persistedFile);
  if (persistedOperationsFile !== undefined) checkPersistedFile(persistedOperationsFile);

  return {
    nodeEnv,
    port,
    // Auth off makes every caller the admin: then only this machine may call, unless HOST says.
    host: parseHost(env, authDisabled ? '127.0.0.1' : '0.0.0.0'),
    publicUrl,
    dataDir,
    databaseUrl,
    databaseReadUrl,
    databaseReadMaxLagMs: int(env, 'DATABASE_READ_MAX_LAG_MS', 5000, 100, 600_000),
    databaseDirectUrl,
    ...redis,
    redisPrefix: redisPrefix(env),
    // 150 ms spuriously failed refresh batches on a busy worker (a reply that came in while the
    // event loop was busy still times out), and a timed-out claim strands its batch for a lease.
    redisCommandTimeoutMs: int(env, 'REDIS_COMMAND_TIMEOUT_MS', role === 'worker' ? 2000 : 150, 10, 10000),
    storageDriver,
    cos: {
      secretId: cosRequired('COS_SECRET_ID'),
      secretKey: cosRequired('COS_SECRET_KEY'),
      securityToken: str(env, 'COS_SECURITY_TOKEN'),
      bucket: cosRequired('COS_BUCKET'),
      region: cosRequired('COS_REGION'),
      domain: cosDomain,
      protocol: `${cosProtocol}:`,
      ...cosTimeouts,
    },
    images: parseImageConfig(env, (variable, message) => new ConfigError(variable, message)),
    s3,
    localSigningSecret: localSecrets[0]!,
    localVerifySecrets: localSecrets,
    cdn,
    regions,
    urlTtlSeconds,
    refreshAheadSeconds,
    defaultMinTtlSeconds,
    liveWindowSeconds: int(env, 'LIVE_WINDOW_SECONDS', Math.max(urlTtlSeconds, 60), 1, 30 * 86400),
    auth: {
      jwtSecret,
      jwksUrl,
      issuer,
      audience,
      disabled: authDisabled,
      publicReadAnonymous:
        oneOf(env, 'PUBLIC_READ_ANONYMOUS', ['true', 'false'] as const, 'false') === 'true',
    },
    proxyTokenSecrets,
    proxyTokenTtlSeconds: int(env, 'PROXY_TOKEN_TTL_SECONDS', 30 * 86400, 0, 10 * 365 * 86400),
    role,
    refreshRateLimitPerMinute: int(env, 'REFRESH_RATE_LIMIT_PER_MINUTE', 60, 1, 100_000),
    preloadRateLimitPerMinute: int(env, 'PRELOAD_RATE_LIMIT_PER_MINUTE', 30, 1, 100_000),
    // At least 20: the jobs of one preload of the most ids a call may name (10,000 in jobs of
    // 500), so the largest allowed call can fit in an empty queue.
    preloadQueueMaxJobs: int(env, 'PRELOAD_QUEUE_MAX_JOBS', 200, 20, 100_000),
    uploadMaxBytes,
    uploadAllowSvg: oneOf(env, 'UPLOAD_ALLOW_SVG', ['true', 'false'] as const, 'false') === 'true',
    uploadStripMetadata: oneOf(env, 'UPLOAD_STRIP_METADATA', ['true', 'false'] as const, 'true') === 'true',
    uploadMaxPixels: int(env, 'UPLOAD_MAX_PIXELS', 100_000_000, 1, Number.MAX_SAFE_INTEGER),
    uploadConcurrencyPerViewer: int(env, 'UPLOAD_CONCURRENCY_PER_VIEWER', 4, 1, 10_000),
    uploadConcurrency: int(env, 'UPLOAD_CONCURRENCY', 32, 1, 100_000),
    uploadMinBytesPerSecond: int(env, 'UPLOAD_MIN_BYTES_PER_SECOND', 1024, 1, 1_000_000_000),
    uploadQuotaBytes: optionalInt(env, 'UPLOAD_QUOTA_BYTES', 1, Number.MAX_SAFE_INTEGER),
    uploadQuotaFiles: optionalInt(env, 'UPLOAD_QUOTA_FILES', 1, 1_000_000_000),
    variantConcurrency: int(env, 'VARIANT_CONCURRENCY', defaultVariantConcurrency(env), 1, 256),
    decodeBudget: decodeBudget(env),
    variantQueueMax: int(env, 'VARIANT_QUEUE_MAX', 64, 0, 100_000),
    variantTimeoutSeconds: int(env, 'VARIANT_TIMEOUT_SECONDS', 20, 1, 600),
    variantBackfillIntervalSeconds: int(env, 'VARIANT_BACKFILL_INTERVAL_SECONDS', 300, 0, 7 * 86400),
    orphanSweepIntervalSeconds: int(env, 'ORPHAN_SWEEP_INTERVAL_SECONDS', 600, 0, 7 * 86400),
    orphanSweepGraceSeconds,
    deletedRowRetentionDays: int(env, 'DELETED_ROW_RETENTION_DAYS', 30, 0, 36_500),
    placeholderBackfillIntervalSeconds: int(env, 'PLACEHOLDER_BACKFILL_INTERVAL_SECONDS', 300, 0, 7 * 86400),
    placeholderConcurrency: int(env, 'PLACEHOLDER_CONCURRENCY', 2, 1, 64),
    placeholderTimeoutSeconds: int(env, 'PLACEHOLDER_TIMEOUT_SECONDS', 10, 1, 600),
    logLevel: oneOf(
      env,
      'LOG_LEVEL',
      ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const,
      'info',
    ),
    // Like every boolean here, only true or false: `1` or `yes` used to mean false, silently.
    seedDemo: oneOf(env, 'SEED_DEMO', ['true', 'false'] as const, databaseUrl ? 'false' : 'true') === 'true',
    seedDemoCount: int(env, 'SEED_DEMO_COUNT', 8, 1, 1000),
    memoryCacheMaxEntries: int(env, 'MEMORY_CACHE_MAX_ENTRIES', 100_000, 100, 10_000_000),
    graphqlIntrospection:
      oneOf(env, 'GRAPHQL_INTROSPECTION', ['true', 'false'] as const, introspection) === 'true',
    graphqlJit: oneOf(env, 'GRAPHQL_JIT', ['true', 'false'] as const, 'true') === 'true',
    graphqlCompression: oneOf(env, 'GRAPHQL_COMPRESSION', ['true', 'false'] as const, 'true') === 'true',
    federation,
    graphqlMaxBodyBytes: int(env, 'GRAPHQL_MAX_BODY_BYTES', 1024 * 1024, 1024, 100 * 1024 * 1024),
    persistedOperationsFile,
    persistedOperationsOnly,
    corsOrigins: parseCorsOrigins(env),
    metricsToken: parseMetricsToken(env),
    subscriptionsPerViewer: int(env, 'SUBSCRIPTIONS_PER_VIEWER', 64, 1, 1_000_000),
    stalledClientSeconds: int(env, 'STALLED_CLIENT_SECONDS', 30, 1, 3600),
    shutdownDelaySeconds: int(env, 'SHUTDOWN_DELAY_SECONDS', 0, 0, 300),
    maxRequestsInFlight: int(env, 'MAX_REQUESTS_IN_FLIGHT', 512, 0, 1_000_000),
  };
}
