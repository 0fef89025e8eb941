import type { Storage } from './storage/storage.js';

/**
 * Several regions (docs/operations.md, "Several regions"): each region has its own gateways,
 * Redis and bucket; the object keys are the same in every bucket (the storage's cross-region
 * replication copies them); one PostgreSQL is shared.
 */
export interface RegionBucket {
  /** The region's name (SIGNET_REGION of its gateways). */
  name: string;
  bucket: string;
  /**
   * `@host[:port]` of the entry: the bucket's endpoint host (COS_DOMAIN's, or S3_ENDPOINT's
   * host, for this region). Undefined: the driver's own endpoint rule, with the region's name as
   * the cloud region (`{Region}` of COS_DOMAIN, the S3 region).
   */
  host: string | undefined;
}

export interface RegionsConfig {
  /** SIGNET_REGION: this node's region. */
  self: string;
  /** STORAGE_REGIONS, in the order given (this node's region among them). */
  buckets: RegionBucket[];
  /**
   * REPLICATION_DELAY_SECONDS: an object is taken to be in every region's bucket this long after
   * its upload. Undefined: a region serves its own bucket only once the replication check has
   * seen the object there (HEAD).
   */
  replicationDelaySeconds: number | undefined;
}

type Env = Record<string, string | undefined>;
type Fail = (variable: string, message: string) => Error;

const REGION_NAME = /^[a-z0-9][a-z0-9-]{0,31}$/;
const BUCKET_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$/;
const HOST = /^[A-Za-z0-9.-]{1,253}(:\d{1,5})?$/;

function str(env: Env, name: string): string | undefined {
  const v = env[name];
  return v === undefined || v.trim() === '' ? undefined : v.trim();
}

/**
 * Parses SIGNET_REGION, STORAGE_REGIONS (`name=bucket[@host[:port]],…`) and
 * REPLICATION_DELAY_SECONDS. None of them set: undefined (one region, as without them). The
 * checks against the driver's own bucket are loadConfig's (it knows the driver).
 */
export function parseRegionsConfig(env: Env, fail: Fail): RegionsConfig | undefined {
  const self = str(env, 'SIGNET_REGION');
  const raw = str(env, 'STORAGE_REGIONS');
  const delayRaw = str(env, 'REPLICATION_DELAY_SECONDS');
  if (self === undefined && raw === undefined) {
    if (delayRaw !== undefined)
      throw fail('REPLICATION_DELAY_SECONDS', 'needs SIGNET_REGION and STORAGE_REGIONS');
    return undefined;
  }
  if (raw === undefined) throw fail('STORAGE_REGIONS', 'is required with SIGNET_REGION');
  if (self === undefined) throw fail('SIGNET_REGION', 'is required with STORAGE_REGIONS');

  const buckets: RegionBucket[] = [];
  for (const part of raw.split(',')) {
    const entry = part.trim();
    if (entry === '') continue;
    const eq = entry.indexOf('=');
    if (eq < 0) throw fail('STORAGE_REGIONS', `"${entry}" is not region=bucket`);
    const name = entry.slice(0, eq).trim();
    const rest = entry.slice(eq + 1).trim();
    const at = rest.indexOf('@');
    const bucket = (at < 0 ? rest : rest.slice(0, at)).trim();
    const host = at < 0 ? undefined : rest.slice(at + 1).trim();
    if (!REGION_NAME.test(name)) {
      throw fail(
        'STORAGE_REGIONS',
        `"${entry}": the region name must be 1-32 lower-case letters, digits or dashes`,
      );
    }
    if (bucket === '') throw fail('STORAGE_REGIONS', `"${entry}": the bucket is empty`);
    if (!BUCKET_NAME.test(bucket))
      throw fail('STORAGE_REGIONS', `"${entry}": "${bucket}" is not a bucket name`);
    if (host !== undefined && !HOST.test(host)) {
      throw fail('STORAGE_REGIONS', `"${entry}": the endpoint after @ must be a host[:port], got "${host}"`);
    }
    if (buckets.some((b) => b.name === name))
      throw fail('STORAGE_REGIONS', `region "${name}" is named twice`);
    buckets.push({ name, bucket, host });
  }
  if (buckets.length === 0) throw fail('STORAGE_REGIONS', 'names no region');
  if (!buckets.some((b) => b.name === self)) {
    throw fail(
      'SIGNET_REGION',
      `"${self}" is not a region of STORAGE_REGIONS (${buckets.map((b) => b.name).join(', ')})`,
    );
  }

  let replicationDelaySeconds: number | undefined;
  if (delayRaw !== undefined) {
    if (!/^\d{1,7}$/.test(delayRaw) || Number(delayRaw) > 7 * 86400) {
      throw fail('REPLICATION_DELAY_SECONDS', `must be an integer from 0 to 604800, got "${delayRaw}"`);
    }
    replicationDelaySeconds = Number(delayRaw);
  }
  return { self, buckets, replicationDelaySeconds };
}

/**
 * The variables that name a driver's bucket and its endpoint host, for a driver with a bucket per
 * region; undefined for one without (`local`: a folder on this node's disk). Decided per driver:
 * a name added to `Storage['driver']` does not compile until it is here.
 */
function regionVariablesOf(kind: Storage['driver']): { bucket: string; host: string } | undefined {
  switch (kind) {
    case 'cos':
      return { bucket: 'COS_BUCKET', host: 'COS_DOMAIN' };
    case 's3':
      return { bucket: 'S3_BUCKET', host: 'S3_ENDPOINT' };
    case 'local':
      return undefined;
    default: {
      const unknown: never = kind;
      throw new Error(`no region support decided for storage driver ${String(unknown)}`);
    }
  }
}

/**
 * This node's region must sign and store in the bucket the driver is configured for: its entry
 * names COS_BUCKET (S3_BUCKET), and its `@host`, when given, the driver's endpoint host.
 */
export function checkOwnRegion(
  regions: RegionsConfig,
  driver: { kind: Storage['driver']; bucket: string; host: string | undefined },
  fail: Fail,
): void {
  const vars = regionVariablesOf(driver.kind);
  if (!vars) {
    throw fail('STORAGE_REGIONS', 'needs STORAGE_DRIVER=cos or s3 (a bucket per region)');
  }
  const own = regions.buckets.find((b) => b.name === regions.self)!;
  const bucketVar = vars.bucket;
  if (own.bucket !== driver.bucket) {
    throw fail(
      'STORAGE_REGIONS',
      `names bucket "${own.bucket}" for this node's region "${regions.self}", but ${bucketVar} is "${driver.bucket}"`,
    );
  }
  const hostVar = vars.host;
  if (own.host !== undefined && own.host !== driver.host) {
    throw fail(
      'STORAGE_REGIONS',
      `names endpoint "${own.host}" for this node's region "${regions.self}", but ${hostVar} gives "${driver.host ?? '(default)'}"`,
    );
  }
}
