import { urlKeys } from '../../server/src/urls/redis-store.js';
import { WindowGrid } from '../../server/src/urls/window-grid.js';
import { type CosAccount, cosEnv } from '../../server/test/support/env.js';
import { signToken } from '../../server/test/support/jwt.js';

/** Fixed, benchmark-only credentials: nothing here protects anything real. */
export const COS: CosAccount = {
  secretId: 'AKIDbenchmarkbenchmarkbenchmark00',
  secretKey: 'benchmark-secret-key-benchmark-key',
  bucket: 'bench-1250000000',
  region: 'ap-guangzhou',
};
/** The s3 driver's benchmark account (only signing is measured: no store is contacted). */
export const S3 = {
  accessKeyId: 'AKIABENCHMARK0000001',
  secretAccessKey: 'benchmark/s3/secret+access+key000000000',
  bucket: 'bench-images',
  region: 'eu-central-1',
  endpoint: 'https://s3.eu-central-1.amazonaws.com',
} as const;
export const JWT_SECRET = 'signet-benchmark-jwt-secret-0123456789abcdef';
export const PROXY_SECRET = 'signet-benchmark-proxy-secret';

/** Owners and how many images each has: the 10k set most scenarios use, and the scaling curve. */
export const OWNERS = {
  main: { id: 'bench', count: 10_000 },
  small: { id: 'bench-1k', count: 1_000 },
  large: { id: 'bench-100k', count: 100_000 },
  /** A few 1 MiB objects for the streaming scenario. */
  stream: { id: 'bench-stream', count: 16 },
} as const;

export const STREAM_OBJECT_BYTES = 1024 * 1024;

export interface Endpoints {
  databaseUrl: string;
  redisUrl: string;
  cosHost: string;
}

/** The environment of a production-like gateway (or worker) process against the bench's services. */
export function gatewayEnv(e: Endpoints, extra: Record<string, string> = {}): Record<string, string> {
  return {
    ...productEnv(),
    NODE_ENV: 'production',
    DATABASE_URL: e.databaseUrl,
    REDIS_URL: e.redisUrl,
    ...cosEnv({ host: e.cosHost }, COS),
    AUTH_JWT_SECRET: JWT_SECRET,
    PROXY_TOKEN_SECRET: PROXY_SECRET,
    SIGNET_ROLE: 'api',
    // The per-request access log would put a JSON line per request on a pipe this harness drains:
    // it costs the gateway and the harness CPU alike, so both servers run with it off.
    LOG_LEVEL: 'warn',
    SEED_DEMO: 'false',
    // Scenario 9 holds 10,000 subscriptions as one viewer (the per-viewer cap guards real apps).
    SUBSCRIPTIONS_PER_VIEWER: '20000',
    ...extra,
  };
}

/**
 * The window grid of every gateway and worker the bench starts: `gatewayEnv` leaves
 * URL_TTL_SECONDS and REFRESH_AHEAD_SECONDS at the product's defaults.
 */
export const GATEWAY_GRID = new WindowGrid({ urlTtlSeconds: 3600, refreshAheadSeconds: 900 });

/**
 * The Redis keys of every gateway and worker the bench starts: `gatewayEnv` leaves REDIS_PREFIX
 * at the product's default.
 */
export const GATEWAY_REDIS_PREFIX = 'signet:';
export const GATEWAY_KEYS = urlKeys(GATEWAY_REDIS_PREFIX);

/** A bearer token for an owner, valid for the whole run. */
export function tokenFor(owner: string): Promise<string> {
  return signToken(owner, { exp: '6h' }, JWT_SECRET);
}

/**
 * The Node.js flags the server runs with (the Dockerfile's CMD; a test keeps the two equal): every
 * contender built from the app gets them (gateway, ceilings, workers), but the embedded start,
 * which is `npm start` (docs/operations.md, "Memory and V8 flags").
 */
export const PRODUCT_NODE_FLAGS = ['--max-semi-space-size=16', '--heap-growing-percent=100'];

/**
 * The environment the server's processes get beyond their settings: the Dockerfile's ENV and
 * `npm start`'s, which a test keeps equal to this (docs/operations.md, "Memory and V8 flags").
 */
export const PRODUCT_ENV = { MALLOC_ARENA_MAX: '2' } as const;

/**
 * PRODUCT_ENV, or glibc's own number of arenas with BENCH_MALLOC_ARENA_MAX=default (another
 * number replaces 2): for measuring the setting side by side.
 */
export function productEnv(): Record<string, string> {
  const arenas = process.env.BENCH_MALLOC_ARENA_MAX;
  if (arenas === 'default') return {};
  return { ...PRODUCT_ENV, ...(arenas ? { MALLOC_ARENA_MAX: arenas } : {}) };
}

/**
 * productEnv() for a process that inherits the bench's environment (a fork, an execFile): a
 * MALLOC_ARENA_MAX of the shell that started the bench is dropped (undefined: node passes no
 * such variable), so `default` means glibc's own there too.
 */
export function productEnvOverInherited(): Record<string, string | undefined> {
  return { MALLOC_ARENA_MAX: undefined, ...productEnv() };
}
