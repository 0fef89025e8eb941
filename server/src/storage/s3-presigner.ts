import { createHmac } from 'node:crypto';
import { isIP } from 'node:net';
import { digest, fixedHmac } from '../lib/fixed-hmac.js';
import { OBJECT_CACHE_CONTROL, type SignWindow, type UrlSignature } from './storage.js';

/**
 * Bulk SigV4 query presigning for S3 GETs (docs/architecture.md, "Storage drivers and signing"). Its URLs are
 * byte for byte those of `@aws-sdk/s3-request-presigner`'s getSignedUrl(GetObjectCommand) with
 * `ResponseCacheControl: OBJECT_CACHE_CONTROL`, `signingDate: window.start` and
 * `expiresIn: end - start` (for a window longer than SigV4's week, the week that ends with it:
 * `buildQueryHead`), for a client configured like the driver's (checksums only when
 * required, so no `x-amz-checksum-mode`): s3-presigner.test.ts compares them over random keys.
 * The SDK needs a middleware stack, a promise and several hashes per URL; this needs, per key,
 * one SHA-256 of the canonical request and one HMAC with a signing key derived once per day.
 */

export interface S3PresignerOptions {
  accessKeyId: string;
  secretAccessKey: string;
  /** Temporary credentials: sent (and signed) as X-Amz-Security-Token. */
  sessionToken?: string | undefined;
  bucket: string;
  region: string;
  /** The origin URLs are signed for (the public endpoint when browsers use another host). */
  endpoint: string;
  forcePathStyle: boolean;
}

export interface S3Presigner {
  /** One signature (hex) per key, all for the same window. */
  signMany(keys: readonly string[], window: SignWindow): string[];
  /** The full presigned URL of a key from its cached signature. */
  urlFor(key: string, signature: UrlSignature): string;
  /** The base URL objects live under (`https://bucket.host` or `https://host/bucket`), no slash. */
  readonly base: string;
}

/** SigV4 refuses a presigned URL valid for longer than a week. */
export const MAX_PRESIGN_SECONDS = 604_800;

const ALGORITHM = 'AWS4-HMAC-SHA256';
const SERVICE = 's3';
/** Characters of a SHA-256 in hex: the tail of every string-to-sign. */
const HEX_SHA256 = 64;

/** RFC 3986 encoding, as SigV4 and the SDK's S3 path builder use it: encodeURIComponent plus !'()*. */
export function rfc3986(value: string): string {
  return encodeURIComponent(value).replace(
    /[!'()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
}

/**
 * An object key as the SDK puts it in the path: each segment encoded, slashes kept. (`%2F` in the
 * encoded key can only come from a slash: a literal `%` is encoded as `%25`.)
 */
export function s3KeyPath(key: string): string {
  return rfc3986(key).replaceAll('%2F', '/');
}

/** `20231114T221320Z` from unix seconds. */
export function amzDate(seconds: number): string {
  return new Date(seconds * 1000)
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d{3}/, '');
}

/**
 * Where the SDK puts the bucket for an endpoint: in the host (virtual-hosted) only when path style
 * is not forced, the name is a DNS label (no dots, lower case) and the endpoint is not an IP.
 */
export function s3Base(opts: Pick<S3PresignerOptions, 'bucket' | 'endpoint' | 'forcePathStyle'>): {
  origin: string;
  host: string;
  pathPrefix: string;
} {
  const u = new URL(opts.endpoint);
  const virtual =
    !opts.forcePathStyle &&
    /^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$/.test(opts.bucket) &&
    isIP(u.hostname.replace(/^\[|\]$/g, '')) === 0;
  // URL drops a default port, as the SDK does.
  const host = virtual ? `${opts.bucket}.${u.host}` : u.host;
  return {
    origin: `${u.protocol}//${host}`,
    host,
    pathPrefix: virtual ? '' : `/${rfc3986(opts.bucket)}`,
  };
}

/** The AWS endpoint of a region, as the SDK resolves it without an endpoint of its own. */
export function awsEndpoint(region: string): string {
  return `https://s3.${region}.amazonaws.com`;
}

export function createS3Presigner(opts: S3PresignerOptions): S3Presigner {
  const { origin, host, pathPrefix } = s3Base(opts);
  const scopeTail = `/${opts.region}/${SERVICE}/aws4_request`;
  const credentialHead = `${rfc3986(opts.accessKeyId)}%2F`;
  const token = opts.sessionToken ? `&X-Amz-Security-Token=${rfc3986(opts.sessionToken)}` : '';
  // Everything after X-Amz-Signature in sorted order; the same in the URL and the canonical query.
  const signedTail = `&X-Amz-SignedHeaders=host&response-cache-control=${rfc3986(OBJECT_CACHE_CONTROL)}&x-id=GetObject`;
  const canonicalTail = `\nhost:${host}\n\nhost\nUNSIGNED-PAYLOAD`;

  /** Signing keys by date (yyyymmdd): one HMAC chain per day, not per key. */
  const signingKeys = new Map<string, Buffer>();
  function signingKey(date: string): Buffer {
    let k = signingKeys.get(date);
    if (k === undefined) {
      const kDate = createHmac('sha256', `AWS4${opts.secretAccessKey}`).update(date).digest();
      const kRegion = createHmac('sha256', kDate).update(opts.region).digest();
      const kService = createHmac('sha256', kRegion).update(SERVICE).digest();
      k = createHmac('sha256', kService).update('aws4_request').digest();
      // A batch signs for one window, so only a few dates are ever live at once.
      if (signingKeys.size >= 8) signingKeys.clear();
      signingKeys.set(date, k);
    }
    return k;
  }

  /**
   * The query before X-Amz-Signature (also the start of the canonical query string). Pages and
   * refresh batches share a window, so the last one is kept: urlFor rebuilds it for every URL.
   */
  let last: { start: number; end: number; value: { head: string; time: string; scope: string } } | undefined;
  function queryHead(window: SignWindow): { head: string; time: string; scope: string } {
    if (last !== undefined && last.start === window.start && last.end === window.end) return last.value;
    const value = buildQueryHead(window);
    last = { start: window.start, end: window.end, value };
    return value;
  }

  function buildQueryHead(window: SignWindow): { head: string; time: string; scope: string } {
    // A window is back-dated by the grid's clock-skew allowance (a minute) before the step
    // starts, so with URL_TTL_SECONDS near the week SigV4 allows it would span more than a week.
    // The URL still ends when the window does: it is back-dated less (DESIGN: any TTL up to
    // 604800 works), so with a TTL over 604740 a storage clock behind ours has less than the
    // minute's allowance (none at 604800). Every node starts it alike: one URL per image per step.
    const start = Math.max(window.start, window.end - MAX_PRESIGN_SECONDS);
    const expires = window.end - start;
    if (!Number.isSafeInteger(expires) || expires < 1) {
      throw new RangeError(`an S3 URL is valid for 1 s to 7 days, not ${expires} s`);
    }
    const time = amzDate(start);
    const scope = `${time.slice(0, 8)}${scopeTail}`;
    const head =
      `X-Amz-Algorithm=${ALGORITHM}&X-Amz-Content-Sha256=UNSIGNED-PAYLOAD` +
      `&X-Amz-Credential=${credentialHead}${rfc3986(scope)}` +
      `&X-Amz-Date=${time}&X-Amz-Expires=${expires}${token}`;
    return { head, time, scope };
  }

  return {
    base: `${origin}${pathPrefix}`,

    signMany(keys, window) {
      const { head, time, scope } = queryHead(window);
      const hmac = fixedHmac(
        'sha256',
        signingKey(time.slice(0, 8)),
        `${ALGORITHM}\n${time}\n${scope}\n`,
        HEX_SHA256,
      );
      const canonicalHead = `GET\n${pathPrefix}/`;
      const canonicalRest = `\n${head}${signedTail}${canonicalTail}`;
      const out = new Array<string>(keys.length);
      for (let i = 0; i < keys.length; i++) {
        out[i] = hmac(digest('sha256', `${canonicalHead}${s3KeyPath(keys[i]!)}${canonicalRest}`, 'hex'));
      }
      return out;
    },

    urlFor(k, s) {
      const { head } = queryHead(s);
      return `${origin}${pathPrefix}/${s3KeyPath(k)}?${head}&X-Amz-Signature=${s.sig}${signedTail}`;
    },
  };
}
