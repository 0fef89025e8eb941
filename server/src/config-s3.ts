import { isIP } from 'node:net';

/** The `s3` driver's settings (README, "S3-compatible storage"). */
export interface S3Config {
  bucket: string;
  region: string;
  /** Where the gateway sends object operations (an origin: scheme, host, port). */
  endpoint: string;
  /** Where browsers fetch signed URLs from; the host is signed, so URLs are made for this one. */
  publicEndpoint: string;
  forcePathStyle: boolean;
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken: string | undefined;
  /** Deadline of one call (a put gets more: see putDeadlineMs); the COS driver's default. */
  timeoutMs: number;
  /** The slowest upload rate a put's deadline allows for; the COS driver's default. */
  putMinBytesPerSecond: number;
}

type Env = Record<string, string | undefined>;
type Fail = (variable: string, message: string) => Error;

function str(env: Env, name: string): string | undefined {
  const v = env[name];
  return v === undefined || v.trim() === '' ? undefined : v.trim();
}

/**
 * An endpoint is an origin: a path would move every key under it and a query or credentials in it
 * would leak into every URL, so both are refused rather than half supported.
 */
function origin(env: Env, name: string, fail: Fail): string | undefined {
  const raw = str(env, name);
  if (raw === undefined) return undefined;
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw fail(name, `is not a valid URL: "${raw}"`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') {
    throw fail(name, `must use http: or https:, got ${u.protocol}`);
  }
  if (u.username || u.password || u.search || u.hash || (u.pathname !== '/' && u.pathname !== '')) {
    throw fail(name, `must be scheme://host[:port] with nothing after it, got "${raw}"`);
  }
  return u.origin;
}

/**
 * Parses the S3_* variables. With another driver they are not read at all (a stray S3_* value
 * never stops a COS or local node). Credentials must be static: URLs are presigned in bulk,
 * synchronously, from the configured keys (no instance-role or SSO credential chain).
 */
export function parseS3Config(env: Env, active: boolean, fail: Fail): S3Config | undefined {
  if (!active) return undefined;
  const required = (name: string) => {
    const v = str(env, name);
    if (v === undefined) throw fail(name, 'is required when STORAGE_DRIVER=s3');
    return v;
  };
  const bucket = required('S3_BUCKET');
  // Bucket names of S3 and the S3-compatible stores (a legacy upper-case name is allowed: it is
  // addressed path-style, as the SDK does).
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{1,254}$/.test(bucket) || isIP(bucket) !== 0) {
    throw fail('S3_BUCKET', `is not a bucket name: "${bucket}"`);
  }
  if (bucket.endsWith('--x-s3')) {
    throw fail(
      'S3_BUCKET',
      'names an S3 Express directory bucket, which needs session auth Signet does not do',
    );
  }
  const endpoint = origin(env, 'S3_ENDPOINT', fail);
  // AWS needs the bucket's region; MinIO and most S3-compatible stores accept us-east-1.
  const region = endpoint === undefined ? required('S3_REGION') : (str(env, 'S3_REGION') ?? 'us-east-1');
  if (!/^[a-z0-9-]{1,64}$/.test(region)) {
    throw fail('S3_REGION', `must be a region name like eu-west-1 (or auto for R2), got "${region}"`);
  }
  const pathStyleRaw = str(env, 'S3_FORCE_PATH_STYLE') ?? 'false';
  if (pathStyleRaw !== 'true' && pathStyleRaw !== 'false') {
    throw fail('S3_FORCE_PATH_STYLE', `must be true or false, got "${pathStyleRaw}"`);
  }
  const sdkEndpoint = endpoint ?? `https://s3.${region}.amazonaws.com`;

  // Variants on s3 are derived objects made from presets: a client's own transform would make an
  // object per distinct request, which nothing bounds (docs/architecture.md, "Variants").
  // Read before config-images.ts parses it: that parse would accept `any` on its own.
  if (str(env, 'IMAGE_TRANSFORMS') === 'any') {
    throw fail(
      'IMAGE_TRANSFORMS',
      'cannot be "any" with STORAGE_DRIVER=s3: variants on s3 are objects Signet renders and keeps in the bucket, one per preset; a transform per request would store an unbounded number of them (use presets)',
    );
  }

  return {
    bucket,
    region,
    endpoint: sdkEndpoint,
    publicEndpoint: origin(env, 'S3_PUBLIC_ENDPOINT', fail) ?? sdkEndpoint,
    forcePathStyle: pathStyleRaw === 'true',
    accessKeyId: required('S3_ACCESS_KEY_ID'),
    secretAccessKey: required('S3_SECRET_ACCESS_KEY'),
    sessionToken: str(env, 'S3_SESSION_TOKEN'),
    timeoutMs: 10_000,
    putMinBytesPerSecond: 256 * 1024,
  };
}
