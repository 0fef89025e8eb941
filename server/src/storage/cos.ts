import { createHash } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import { PassThrough } from 'node:stream';
import COS from 'cos-nodejs-sdk-v5';
import { createCosSigner } from './cos-signer.js';
import {
  type ByteRange,
  encodeKeyPath,
  type GetOptions,
  OBJECT_CACHE_CONTROL,
  type ObjectInfo,
  type ObjectStream,
  type Storage,
  StorageError,
} from './storage.js';

export interface CosStorageOptions {
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
  /** Budget for one operation (for get: until the response headers; then per idle gap in the body). */
  timeoutMs?: number;
  /** Sockets for object downloads (default 256); every other call has a pool of its own. */
  streamSockets?: number;
}

const DEFAULT_TIMEOUT_MS = 10_000;
/** Sockets for object downloads (stream mode) and for every other call. */
const STREAM_SOCKETS = 256;
const CONTROL_SOCKETS = 64;

/** A GET of an object (a path below the bucket root), as opposed to a bucket-level GET. */
export function isObjectDownload(req: { method?: string; url?: string }): boolean {
  if ((req.method ?? 'GET').toUpperCase() !== 'GET' || !req.url) return false;
  try {
    return new URL(req.url).pathname.length > 1;
  } catch {
    return false;
  }
}
/** Idle keep-alive sockets are dropped after this (or earlier if the server announces less). */
const IDLE_SOCKET_MS = 30_000;

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
  if (status === 404) return new StorageError('not_found', `${what}: no such object`, { cause: err });
  if (status === 416) return new StorageError('rejected', `${what}: range not satisfiable`, { cause: err });
  // Denied requests are a credentials or clock problem on our side, not the caller's fault.
  if (status === 401 || status === 403) return new StorageError('unavailable', detail, { cause: err });
  if (status !== undefined && status >= 400 && status < 500) {
    return new StorageError('rejected', detail, { cause: err });
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
  cos.on('before-send', (req: { agent?: http.Agent; method?: string; url?: string }) => {
    req.agent = isObjectDownload(req) ? streams : control;
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

  return {
    driver: 'cos',

    async put(key, body, contentType) {
      checkKey(key);
      const params = {
        Bucket,
        Region,
        Key: key,
        Body: body,
        ContentType: contentType,
        ContentLength: body.length,
        // Kept as the object's metadata, so fetches by other means (a URL signed by other tools, a
        // CDN in front of the bucket) get the same header as the gateway's signed URLs.
        CacheControl: OBJECT_CACHE_CONTROL,
        // Straight to the request, not through the SDK's upload queue (3 files at a time).
        SkipTask: true,
      };
      const data = await call<COS.PutObjectResult>(`put ${key}`, (cb) => cos.putObject(params, cb));
      const etag = data.ETag || data.headers?.etag;
      return { etag: etag || `"${createHash('md5').update(body).digest('hex')}"` };
    },

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

    async delete(key) {
      checkKey(key);
      await call(`delete ${key}`, (cb) => cos.deleteObject({ Bucket, Region, Key: key }, cb));
    },

    signMany: (keys, window) => signer.signMany(keys, window),

    urlFor(key, s) {
      return `${opts.protocol}//${host}/${encodeKeyPath(key)}?${signer.query(key, s)}${token}`;
    },

    async ping() {
      await call('ping', (cb) => cos.headBucket({ Bucket, Region }, cb));
    },
  };
}
