import http from 'node:http';
import https from 'node:https';
import type { Readable } from 'node:stream';
import {
  DeleteObjectCommand,
  GetObjectCommand,
  type GetObjectCommandOutput,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { putDeadlineMs, tapBody } from './put-body.js';
import { createS3Presigner } from './s3-presigner.js';
import {
  type ByteRange,
  type GetOptions,
  type ListPage,
  MAX_LIST_KEYS,
  OBJECT_CACHE_CONTROL,
  type ObjectStream,
  type PutBody,
  type Storage,
  StorageError,
  signerFingerprint,
} from './storage.js';
import {
  CONTROL_SOCKETS,
  DEFAULT_PUT_MIN_BYTES_PER_SECOND,
  DEFAULT_TIMEOUT_MS,
  IDLE_SOCKET_MS,
  STREAM_SOCKETS,
  type TransportOptions,
} from './transport.js';

export interface S3StorageOptions extends TransportOptions {
  accessKeyId: string;
  secretAccessKey: string;
  /** Temporary credentials: sent with every request and signed into every URL. */
  sessionToken?: string | undefined;
  bucket: string;
  region: string;
  /** Where object operations go (an origin); default the region's AWS endpoint. */
  endpoint: string;
  /** The origin URLs are signed for (browsers reach it); default `endpoint`. */
  publicEndpoint?: string | undefined;
  forcePathStyle: boolean;
}

function abortError(signal: AbortSignal): Error {
  return Object.assign(new Error('The operation was aborted', { cause: signal.reason }), {
    name: 'AbortError',
    code: 'ABORT_ERR',
  });
}

/** Why a deadline fired (the reason of our own aborts, so they map to 'timeout'). */
class Deadline extends Error {}

/** The SDK's failure as a StorageError kind, as the COS driver maps its SDK's. */
function toStorageError(err: unknown, what: string): StorageError {
  if (err instanceof StorageError) return err;
  if (err instanceof Deadline) return new StorageError('timeout', `${what}: ${err.message}`, { cause: err });
  const e = (err ?? {}) as {
    name?: string;
    code?: string;
    message?: string;
    $metadata?: { httpStatusCode?: number };
  };
  const status = e.$metadata?.httpStatusCode;
  const detail = `${what}: ${e.name ?? e.code ?? 'error'} ${e.message ?? ''}`.trim();
  // A missing bucket is the configuration's fault, not a missing object's (a 404 for every image).
  if (status === 404 && (e.name ?? e.code) === 'NoSuchBucket') {
    return new StorageError('unavailable', `${what}: no such bucket`, { cause: err });
  }
  if (status === 404) return new StorageError('not_found', `${what}: no such object`, { cause: err });
  if (status === 416) return new StorageError('rejected', `${what}: range not satisfiable`, { cause: err });
  // Any other refusal of a request Signet built is never the caller's input: denied (credentials,
  // clock), throttled (429), a wrong region or a stalled body (400). Retried later, and the
  // operator reads the detail (docs/architecture.md, "Storage drivers and signing").
  if (status !== undefined && status >= 400 && status < 500) {
    return new StorageError('unavailable', detail, { cause: err, status });
  }
  const timedOut = e.name === 'TimeoutError' || e.code === 'ETIMEDOUT';
  return new StorageError(timedOut ? 'timeout' : 'unavailable', detail, { cause: err });
}

/**
 * A failed HeadBucket, said in the operator's terms: its answer has no body, so the SDK's own
 * error is only `Unknown`/`UnknownError` whatever went wrong, and its 404 is no missing object.
 * What `signet check` and the readiness log print.
 */
function pingFailure(err: unknown, bucket: string, region: string): unknown {
  if (!(err instanceof StorageError) || err.kind === 'timeout') return err;
  const sdk = err.cause as
    | { $metadata?: { httpStatusCode?: number }; $response?: { headers?: Record<string, string> } }
    | undefined;
  const status = sdk?.$metadata?.httpStatusCode;
  if (status === undefined) return err;
  const actual = sdk?.$response?.headers?.['x-amz-bucket-region'];
  let why: string;
  if (status === 404) why = `no bucket named ${JSON.stringify(bucket)} (S3_BUCKET)`;
  else if (actual && actual !== region) why = `the bucket is in region ${actual}, not ${region} (S3_REGION)`;
  else if (status === 401 || status === 403)
    why = 'access denied: check S3_ACCESS_KEY_ID, S3_SECRET_ACCESS_KEY, S3_REGION and the clock';
  else why = `the store answered HTTP ${status}`;
  return new StorageError(err.kind === 'not_found' ? 'unavailable' : err.kind, `ping: ${why}`, {
    cause: err,
  });
}

/**
 * The `s3` driver (docs/architecture.md, "Storage drivers and signing"): AWS S3 and the S3-compatible stores
 * (MinIO, Cloudflare R2, COS's S3 API) through @aws-sdk/client-s3, URLs from the bulk presigner.
 */
export function createS3Storage(opts: S3StorageOptions): Storage {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const putTiming = {
    timeoutMs,
    putMinBytesPerSecond: opts.putMinBytesPerSecond ?? DEFAULT_PUT_MIN_BYTES_PER_SECOND,
  };
  const Bucket = opts.bucket;
  const presigner = createS3Presigner({
    accessKeyId: opts.accessKeyId,
    secretAccessKey: opts.secretAccessKey,
    sessionToken: opts.sessionToken,
    bucket: opts.bucket,
    region: opts.region,
    endpoint: opts.publicEndpoint ?? opts.endpoint,
    forcePathStyle: opts.forcePathStyle,
  });

  const note = (...args: unknown[]) => opts.logger?.debug({ sdk: args.map(String).join(' ') }, 's3 sdk');
  const sdkLogger = { trace: note, debug: note, info: note, warn: note, error: note };
  const https_ = opts.endpoint.startsWith('https:');
  /**
   * One client per socket pool: object downloads (held as long as a client reads, in stream mode)
   * and everything else (puts, heads, deletes, listings, probes), so slow readers holding every
   * download socket never stop uploads, deletes or readiness. Both keep sockets alive.
   */
  function client(maxSockets: number, socketTimeout: number | undefined): S3Client {
    const Agent = https_ ? https.Agent : http.Agent;
    const agent = new Agent({ keepAlive: true, maxSockets, timeout: IDLE_SOCKET_MS });
    return new S3Client({
      region: opts.region,
      endpoint: opts.endpoint,
      forcePathStyle: opts.forcePathStyle,
      credentials: {
        accessKeyId: opts.accessKeyId,
        secretAccessKey: opts.secretAccessKey,
        ...(opts.sessionToken ? { sessionToken: opts.sessionToken } : {}),
      },
      // Checksums only where an operation requires them: the default (a CRC32 trailer in an
      // aws-chunked body) is not understood by every S3-compatible store, and a put's body is
      // already counted and hashed by its tap (put-body.ts).
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      // A NodeHttpHandler built by the client from these options (@smithy/node-http-handler is
      // not a dependency of ours to construct by hand): a connect bound, and for downloads an
      // idle bound between body chunks; every call below has its own deadline on top.
      requestHandler: {
        ...(https_ ? { httpsAgent: agent } : { httpAgent: agent }),
        connectionTimeout: timeoutMs,
        ...(socketTimeout !== undefined ? { socketTimeout } : {}),
      },
      // Streamed puts are never retried by the SDK (their body is read once); the rest may be.
      maxAttempts: 3,
      // The SDK's own notes (e.g. "a non-retryable streaming request" failed) go to the log at
      // debug level, not to the console; every failure also reaches the caller as a StorageError.
      logger: sdkLogger,
    });
  }
  const streams = client(opts.streamSockets ?? STREAM_SOCKETS, timeoutMs);
  // No idle bound here: a put's body may sit in socket buffers while the store reads it at the
  // slowest allowed rate for longer than timeoutMs; puts and the rest have deadlines of their own.
  const control = client(CONTROL_SOCKETS, undefined);

  /** Runs one call with a deadline (an abort with a Deadline reason), so a hanging store costs at most ms. */
  async function call<T>(what: string, run: (signal: AbortSignal) => Promise<T>, ms = timeoutMs): Promise<T> {
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(new Deadline(`no answer from the store within ${ms} ms`)), ms);
    try {
      return await run(ac.signal);
    } catch (err) {
      throw toStorageError(ac.signal.aborted ? ac.signal.reason : err, what);
    } finally {
      clearTimeout(timer);
    }
  }

  function checkKey(key: string): void {
    if (key === '' || key.startsWith('/')) throw new StorageError('rejected', 'invalid object key');
  }

  async function get(key: string, options: GetOptions): Promise<ObjectStream> {
    checkKey(key);
    const { range, signal } = options;
    if (signal?.aborted) throw abortError(signal);
    if (range && (range.start < 0 || range.end < range.start)) {
      throw new StorageError('rejected', 'invalid byte range');
    }
    const what = `get ${key}`;
    const ac = new AbortController();
    const onAbort = () => ac.abort(abortError(signal!));
    signal?.addEventListener('abort', onAbort, { once: true });
    const timer = setTimeout(
      () => ac.abort(new Deadline(`no answer from the store within ${timeoutMs} ms`)),
      timeoutMs,
    );
    let out: GetObjectCommandOutput;
    try {
      out = await streams.send(
        new GetObjectCommand({
          Bucket,
          Key: key,
          ...(range ? { Range: `bytes=${range.start}-${range.end}` } : {}),
        }),
        { abortSignal: ac.signal },
      );
    } catch (err) {
      signal?.removeEventListener('abort', onAbort);
      const reason: unknown = ac.signal.aborted ? ac.signal.reason : err;
      if (reason instanceof Error && reason.name === 'AbortError' && signal?.aborted) throw reason;
      throw toStorageError(reason, what);
    } finally {
      clearTimeout(timer);
    }
    const body = out.Body as Readable;
    // From here the body is the caller's: an abort fails it (and ends the download), and a body
    // the consumer drops (destroy, client gone) ends the download too.
    const stop = () => {
      if (!body.destroyed) body.destroy(abortError(signal!));
    };
    signal?.removeEventListener('abort', onAbort);
    signal?.addEventListener('abort', stop, { once: true });
    body.once('close', () => signal?.removeEventListener('abort', stop));
    // An idle gap longer than timeoutMs fails the body (the handler's socket timeout).
    let served: ByteRange | undefined;
    let size = out.ContentLength ?? 0;
    const cr = out.ContentRange?.match(/^bytes (\d+)-(\d+)\/(\d+|\*)$/);
    if (cr) {
      served = { start: Number(cr[1]), end: Number(cr[2]) };
      if (cr[3] !== '*') size = Number(cr[3]);
    }
    return {
      size,
      etag: out.ETag ?? '',
      contentType: out.ContentType,
      lastModified: out.LastModified,
      body,
      range: served,
    };
  }

  /**
   * One PUT with a deadline that grows with the size (as the COS driver's): when it passes with
   * the body not fully sent, the request is aborted (S3 stores a simple upload only once all
   * Content-Length bytes arrived, so nothing lands); with the body all sent, the request is left
   * to settle. Either way, and after any failed put, what may have landed is deleted once the
   * request settled, in the background: a DELETE racing the PUT could be overtaken by it.
   */
  async function put(
    key: string,
    body: PutBody,
    contentType: string,
    size: number | undefined,
  ): Promise<{ etag: string }> {
    checkKey(key);
    const tap = tapBody(body, size);
    const what = `put ${key}`;
    const deadline = putDeadlineMs(putTiming, tap.size);
    const ac = new AbortController();
    // A body that is not its declared size fails the tap: the request must end now, not when the
    // socket has been idle for timeoutMs (the SDK does not watch its body for errors).
    tap.once('error', (err) => ac.abort(err));
    return new Promise((resolve, reject) => {
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        reject(new StorageError('timeout', `${what}: not stored within ${deadline} ms`));
        if (!tap.readableEnded) {
          tap.destroy(new StorageError('timeout', `${what}: cut off at its deadline`));
          ac.abort(new Deadline('cut off at its deadline'));
        } else {
          // All sent: the store may be storing it now. Wait as long again for its answer, then
          // give up on the request; the clean-up below follows either way.
          setTimeout(() => ac.abort(new Deadline('no answer after the body was sent')), deadline).unref();
        }
      }, deadline);
      control
        .send(
          new PutObjectCommand({
            Bucket,
            Key: key,
            Body: tap,
            ContentType: contentType,
            ContentLength: tap.size,
            // Kept as the object's metadata, so fetches by other means (a URL signed by other
            // tools, a CDN in front of the bucket) get the header the signed URLs ask for.
            CacheControl: OBJECT_CACHE_CONTROL,
          }),
          { abortSignal: ac.signal },
        )
        .then(
          (data) => ({ err: undefined, etag: data.ETag }),
          (err: unknown) => ({ err: err ?? new Error('put failed'), etag: undefined }),
        )
        .then(({ err, etag }) => {
          clearTimeout(timer);
          if (!timedOut) {
            if (err) reject(toStorageError(tap.errored ?? err, what));
            else resolve({ etag: etag || tap.etag || '' });
          }
          // Settled: a success after the deadline is as unwanted as a failure that may have stored.
          if (err || timedOut) removeAfterFailedPut(key);
        });
    });
  }

  function removeAfterFailedPut(key: string): void {
    call(`delete ${key}`, (abortSignal) =>
      control.send(new DeleteObjectCommand({ Bucket, Key: key }), { abortSignal }),
    ).then(
      () => opts.logger?.info({ key }, 'removed what a failed put may have stored'),
      (e: unknown) =>
        opts.logger?.warn(
          { key, err: (e as Error).message },
          'could not clean up after a failed put; the orphan sweep will remove the object',
        ),
    );
  }

  /** ListObjectsV2 from just after the marker key; keys come back in UTF-8 byte order. */
  async function list(prefix: string, options: { marker?: string; maxKeys?: number }): Promise<ListPage> {
    const maxKeys = Math.min(MAX_LIST_KEYS, Math.max(1, options.maxKeys ?? MAX_LIST_KEYS));
    const data = await call(`list ${prefix}`, (abortSignal) =>
      control.send(
        new ListObjectsV2Command({
          Bucket,
          Prefix: prefix,
          MaxKeys: maxKeys,
          ...(options.marker !== undefined ? { StartAfter: options.marker } : {}),
        }),
        { abortSignal },
      ),
    );
    const objects = (data.Contents ?? []).map((c) => ({
      key: c.Key ?? '',
      size: Number(c.Size ?? 0),
      lastModified: c.LastModified ?? new Date(0),
    }));
    return { objects, nextMarker: data.IsTruncated ? objects.at(-1)?.key : undefined };
  }

  return {
    driver: 's3',
    // The URL carries the credential and the session token; host and path style are signed.
    signedBy: signerFingerprint(
      's3',
      opts.accessKeyId,
      opts.secretAccessKey,
      opts.sessionToken,
      opts.publicEndpoint ?? opts.endpoint,
      String(opts.forcePathStyle),
      opts.bucket,
      opts.region,
    ),

    put: (key, body, contentType, size) => put(key, body, contentType, size),

    async head(key) {
      checkKey(key);
      try {
        const data = await call(`head ${key}`, (abortSignal) =>
          control.send(new HeadObjectCommand({ Bucket, Key: key }), { abortSignal }),
        );
        return {
          size: data.ContentLength ?? 0,
          etag: data.ETag ?? '',
          contentType: data.ContentType,
          lastModified: data.LastModified,
        };
      } catch (err) {
        if (err instanceof StorageError && err.kind === 'not_found') return null;
        throw err;
      }
    },

    get: (key, options = {}) => get(key, options),

    list: (prefix, options = {}) => list(prefix, options),

    async delete(key) {
      checkKey(key);
      await call(`delete ${key}`, (abortSignal) =>
        control.send(new DeleteObjectCommand({ Bucket, Key: key }), { abortSignal }),
      );
    },

    // Variants on s3 are derived objects (docs/architecture.md, "Variants"); until a preset's
    // object exists, a variant's URL is the original's, so the original is what gets signed.
    signMany: (keys, window) => presigner.signMany(keys, window),

    urlFor: (key, signature) => presigner.urlFor(key, signature),

    async ping() {
      try {
        await call('ping', (abortSignal) => control.send(new HeadBucketCommand({ Bucket }), { abortSignal }));
      } catch (err) {
        throw pingFailure(err, Bucket, opts.region);
      }
    },
  };
}
