import http from 'node:http';
import https from 'node:https';
import { PassThrough } from 'node:stream';
import COS from 'cos-nodejs-sdk-v5';
import { cosProcessing } from './cos-processing.js';
import { camSafeUrlEncode, createCosSigner } from './cos-signer.js';
import { putDeadlineMs, tapBody } from './put-body.js';
import {
  type ByteRange,
  encodeKeyPath,
  type GetOptions,
  type ListPage,
  MAX_LIST_KEYS,
  OBJECT_CACHE_CONTROL,
  type ObjectInfo,
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

export interface CosStorageOptions extends TransportOptions {
  secretId: string;
  secretKey: string;
  /** For temporary credentials; sent with every request and appended to every signed URL. */
  securityToken?: string;
  /** `name-appid`, as the SDK requires. */
  bucket: string;
  region: string;
  /** Endpoint host; may contain {Bucket} and {Region}. Default `{Bucket}.cos.{Region}.myqcloud.com`. */
  domain?: string;
  protocol: 'http:' | 'https:';
}

/** A GET of an object (a path below the bucket root), as opposed to a bucket-level GET. */
export function isObjectDownload(req: { method?: string; url?: string }): boolean {
  if ((req.method ?? 'GET').toUpperCase() !== 'GET' || !req.url) return false;
  try {
    return new URL(req.url).pathname.length > 1;
  } catch {
    return false;
  }
}

/** The endpoint host, resolved the way the SDK resolves its Domain template. */
export function resolveCosHost(opts: Pick<CosStorageOptions, 'bucket' | 'region' | 'domain'>): string {
  return (opts.domain || '{Bucket}.cos.{Region}.myqcloud.com')
    .replace(/\{Bucket\}/gi, opts.bucket)
    .replace(/\{Region\}/gi, opts.region)
    .replace(/^[a-z]+:\/\//i, '')
    .replace(/\/+$/, '');
}

type Headers = Record<string, string | undefined>;

interface SdkError {
  statusCode?: number;
  code?: string;
  message?: string;
}

function toStorageError(err: unknown, what: string): StorageError {
  if (err instanceof StorageError) return err;
  const e = (err ?? {}) as SdkError;
  const detail = `${what}: ${e.code ?? 'error'} ${e.message ?? ''}`.trim();
  const status = e.statusCode;
  // A missing bucket is the configuration's fault, not a missing object's (a 404 for every image).
  if (status === 404 && e.code === 'NoSuchBucket') {
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
  const timedOut = e.code === 'ETIMEDOUT' || e.code === 'ESOCKETTIMEDOUT';
  return new StorageError(timedOut ? 'timeout' : 'unavailable', detail, { cause: err });
}

function abortError(signal: AbortSignal): Error {
  return Object.assign(new Error('The operation was aborted', { cause: signal.reason }), {
    name: 'AbortError',
    code: 'ABORT_ERR',
  });
}

function infoFrom(headers: Headers, size: number): ObjectInfo {
  const lastModified = headers['last-modified'];
  return {
    size,
    etag: headers.etag ?? '',
    contentType: headers['content-type'],
    lastModified: lastModified ? new Date(lastModified) : undefined,
  };
}

/**
 * The SDK pipes getObject's response into `Output`. The request library behind it hands a pipe
 * destination that has setHeader() the headers and then the status before the first byte, which
 * tells us the outcome without waiting for the body (the SDK's own callback only fires at the end).
 */
class ResponseSink extends PassThrough {
  readonly responseHeaders: Headers = {};
  onResponse: ((status: number, headers: Headers) => void) | undefined;
  private status = 0;

  setHeader(name: string, value: string): void {
    this.responseHeaders[name.toLowerCase()] = value;
  }

  get statusCode(): number {
    return this.status;
  }

  set statusCode(status: number) {
    this.status = status;
    this.onResponse?.(status, this.responseHeaders);
  }
}

export function createCosStorage(opts: CosStorageOptions): Storage {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const putTiming = {
    timeoutMs,
    putMinBytesPerSecond: opts.putMinBytesPerSecond ?? DEFAULT_PUT_MIN_BYTES_PER_SECOND,
  };
  const host = resolveCosHost(opts);
  const signer = createCosSigner({ secretId: opts.secretId, secretKey: opts.secretKey, host });
  const token = opts.securityToken ? `&x-cos-security-token=${encodeURIComponent(opts.securityToken)}` : '';
  const { bucket: Bucket, region: Region } = opts;

  const cos = new COS({
    SecretId: opts.secretId,
    SecretKey: opts.secretKey,
    ...(opts.securityToken ? { SecurityToken: opts.securityToken } : {}),
    Domain: host,
    Protocol: opts.protocol,
    // Per attempt: until the response starts, then per idle gap. The SDK retries network errors
    // and 5xx up to 3 times except for streamed downloads, so each call below also has a deadline.
    Timeout: timeoutMs,
    KeepAlive: true,
    // Never hop to the backup tencentcos.cn domain: the endpoint is what the config says.
    AutoSwitchHost: false,
  });
  // Agents of this driver instead of the request library's process-wide pool; their idle timeout
  // lets Node retire sockets before the server closes them (fewer ECONNRESETs on reuse). Two
  // pools: object downloads (stream mode, held as long as a client reads) and everything else
  // (puts, heads, deletes, listings, probes), so slow readers holding every download socket
  // never stop uploads, deletes or readiness.
  const Agent = opts.protocol === 'https:' ? https.Agent : http.Agent;
  const streams = new Agent({
    keepAlive: true,
    maxSockets: opts.streamSockets ?? STREAM_SOCKETS,
    timeout: IDLE_SOCKET_MS,
  });
  const control = new Agent({ keepAlive: true, maxSockets: CONTROL_SOCKETS, timeout: IDLE_SOCKET_MS });
  /** Idle timeouts of the puts in flight, by key (see put). */
  const putIdleMs = new Map<string, number>();
  cos.on('before-send', (req: { agent?: http.Agent; method?: string; url?: string; timeout?: number }) => {
    req.agent = isObjectDownload(req) ? streams : control;
    if (req.method === 'PUT' && req.url) {
      const idle = putIdleMs.get(decodeURIComponent(new URL(req.url).pathname.slice(1)));
      if (idle !== undefined) req.timeout = idle;
    }
  });

  /** Runs one SDK call with a deadline, so a hanging endpoint costs at most timeoutMs. */
  function call<T>(what: string, run: (cb: (err: unknown, data: T) => void) => void): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new StorageError('timeout', `${what}: no answer from COS within ${timeoutMs} ms`)),
        timeoutMs,
      );
      run((err, data) => {
        clearTimeout(timer);
        if (err) reject(toStorageError(err, what));
        else resolve(data);
      });
    });
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

    return new Promise<ObjectStream>((resolve, reject) => {
      const sink = new ResponseSink();
      const body = new PassThrough();
      let state: 'waiting' | 'streaming' | 'done' = 'waiting';
      // Rejects while waiting for the response, or fails the body once it was handed out;
      // destroying the sink makes the SDK abort its request.
      const fail = (err: Error) => {
        if (state === 'done') return;
        if (state === 'waiting') reject(err);
        else body.destroy(err);
        finish();
        if (!sink.destroyed) sink.destroy(err);
      };
      const finish = () => {
        state = 'done';
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
      };
      const onAbort = () => fail(abortError(signal!));
      const timer = setTimeout(
        () => fail(new StorageError('timeout', `${what}: no answer from COS within ${timeoutMs} ms`)),
        timeoutMs,
      );
      signal?.addEventListener('abort', onAbort, { once: true });
      sink.on('error', () => {}); // reported through fail()

      sink.onResponse = (status, headers) => {
        if (state !== 'waiting') return;
        clearTimeout(timer);
        if (status !== 200 && status !== 206) {
          sink.resume(); // an XML error body; the SDK's callback reports it
          return;
        }
        let served: ByteRange | undefined;
        let size = Number(headers['content-length'] ?? 0);
        const cr = headers['content-range']?.match(/^bytes (\d+)-(\d+)\/(\d+|\*)$/);
        if (status === 206 && cr) {
          served = { start: Number(cr[1]), end: Number(cr[2]) };
          if (cr[3] !== '*') size = Number(cr[3]);
        }
        state = 'streaming';
        // A consumer that stops early (destroy, client gone) must stop the download too.
        body.on('close', () => {
          const early = !body.readableEnded;
          finish();
          if (early && !sink.destroyed) sink.destroy(new Error('body closed before the end'));
        });
        sink.pipe(body);
        resolve({ ...infoFrom(headers, size), body, range: served });
      };

      cos.getObject(
        {
          Bucket,
          Region,
          Key: key,
          Output: sink,
          ...(range ? { Range: `bytes=${range.start}-${range.end}` } : {}),
        },
        (err) => {
          if (err) fail(toStorageError(err, what));
        },
      );
    });
  }

  /**
   * One PUT with a deadline that grows with the size. When the deadline passes, the caller is
   * answered at once; what happens to the request depends on how far it got:
   * - body not fully handed over: the body stream is destroyed, which makes the SDK abort the
   *   request (its socket is destroyed). COS stores a simple upload only once all Content-Length
   *   bytes arrived, so nothing can land;
   * - body fully handed over (COS may be storing it right now): aborting would not help, so the
   *   request is left to settle, with the object store's answer or the SDK's own idle timeout.
   * Either way the object is deleted only after the request settled, in the background: a DELETE
   * sent while the PUT is still in flight could be overtaken by it and leave an object without
   * a row. The same clean-up follows any failed put. Streams are never retried by the SDK (it
   * retries buffers), so no second attempt can land after the clean-up either; buffers are
   * therefore sent as streams too.
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
    // The SDK's idle timeout (timeoutMs) also runs while the request waits for its answer after
    // the last byte went into the socket: the store may still be reading the buffered rest at the
    // slowest allowed rate for longer than that. The put's own deadline is its bound instead.
    putIdleMs.set(key, deadline);
    return new Promise((resolve, reject) => {
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        reject(new StorageError('timeout', `${what}: not stored within ${deadline} ms`));
        if (!tap.readableEnded) tap.destroy(new StorageError('timeout', `${what}: cut off at its deadline`));
      }, deadline);
      const params = {
        Bucket,
        Region,
        Key: key,
        Body: tap,
        ContentType: contentType,
        ContentLength: tap.size,
        // Kept as the object's metadata, so fetches by other means (a URL signed by other tools, a
        // CDN in front of the bucket) get the same header as the gateway's signed URLs.
        CacheControl: OBJECT_CACHE_CONTROL,
        // Straight to the request, not through the SDK's upload queue (3 files at a time).
        SkipTask: true,
      };
      cos.putObject(params, (err, data) => {
        clearTimeout(timer);
        putIdleMs.delete(key);
        if (!timedOut) {
          if (err) reject(toStorageError(tap.errored ?? err, what));
          else resolve({ etag: data.ETag || data.headers?.etag || tap.etag || '' });
        }
        // Settled: a success after the deadline is as unwanted as a failure that may have stored.
        if (err || timedOut) removeAfterFailedPut(key);
      });
    });
  }

  function removeAfterFailedPut(key: string): void {
    call(`delete ${key}`, (cb) => cos.deleteObject({ Bucket, Region, Key: key }, cb)).then(
      () => opts.logger?.info({ key }, 'removed what a failed put may have stored'),
      (e: unknown) =>
        opts.logger?.warn(
          { key, err: (e as Error).message },
          'could not clean up after a failed put; the orphan sweep will remove the object',
        ),
    );
  }

  /** GET Bucket: one page of keys, URL-encoded on the wire (any key survives the XML). */
  async function list(prefix: string, options: { marker?: string; maxKeys?: number }): Promise<ListPage> {
    const maxKeys = Math.min(MAX_LIST_KEYS, Math.max(1, options.maxKeys ?? MAX_LIST_KEYS));
    const data = await call<COS.GetBucketResult>(`list ${prefix}`, (cb) =>
      cos.getBucket(
        {
          Bucket,
          Region,
          Prefix: prefix,
          MaxKeys: maxKeys,
          EncodingType: 'url',
          ...(options.marker !== undefined ? { Marker: options.marker } : {}),
        },
        cb,
      ),
    );
    const decode = (v: string) => (data.EncodingType === 'url' ? decodeURIComponent(v) : v);
    const objects = (data.Contents ?? []).map((c) => ({
      key: decode(c.Key),
      size: Number(c.Size),
      lastModified: new Date(c.LastModified),
    }));
    const truncated = String(data.IsTruncated) === 'true';
    const last = objects.at(-1)?.key;
    // COS names the next marker when a page is cut short; the last key serves when it does not.
    const nextMarker = truncated ? (data.NextMarker ? decode(data.NextMarker) : last) : undefined;
    return { objects, nextMarker };
  }

  return {
    driver: 'cos',
    // The URL carries q-ak, the security token and the host; the signature is the key's.
    signedBy: signerFingerprint(
      'cos',
      opts.secretId,
      opts.secretKey,
      opts.securityToken,
      host,
      opts.protocol,
    ),

    put: (key, body, contentType, size) => put(key, body, contentType, size),

    async head(key) {
      checkKey(key);
      try {
        const data = await call<COS.HeadObjectResult>(`head ${key}`, (cb) =>
          cos.headObject({ Bucket, Region, Key: key }, cb),
        );
        const headers = (data.headers ?? {}) as Headers;
        return infoFrom(headers, Number(headers['content-length'] ?? 0));
      } catch (err) {
        if (err instanceof StorageError && err.kind === 'not_found') return null;
        throw err;
      }
    },

    get: (key, options = {}) => get(key, options),

    list: (prefix, options = {}) => list(prefix, options),

    async delete(key) {
      checkKey(key);
      await call(`delete ${key}`, (cb) => cos.deleteObject({ Bucket, Region, Key: key }, cb));
    },

    signMany: (keys, window, variants) => signer.signMany(keys, window, variants),

    // A variant's URL carries its Cloud Infinite processing, signed (cos-signer.ts).
    urlFor(key, s, variant) {
      return `${opts.protocol}//${host}/${encodeKeyPath(key)}?${signer.query(key, s, variant)}${token}`;
    },

    // Behind a CDN (storage/cdn/with-cdn.ts) the edge asks COS for the variant with its
    // processing in the query; the CDN's own origin-pull authentication signs that request.
    originOf(key, variant) {
      return {
        path: `/${encodeKeyPath(key)}`,
        query: variant ? camSafeUrlEncode(cosProcessing(variant)) : '',
      };
    },

    async ping() {
      await call('ping', (cb) => cos.headBucket({ Bucket, Region }, cb));
    },
  };
}
