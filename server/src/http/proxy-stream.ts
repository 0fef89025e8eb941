import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Clock } from '../clock.js';
import type { Config } from '../config.js';
import { fromStorageRequest, notFound, rangeNotSatisfiable } from '../errors/index.js';
import { type ProxyGrant, secondsUntil } from '../images/proxy-grant.js';
import { requestIdOf } from '../lib/request-id.js';
import type { Logger } from '../logger.js';
import { type ByteRange, type ObjectInfo, type Storage, StorageError } from '../storage/storage.js';
import type { ObjectPlacement } from '../urls/resolved-url.js';
import { untrustedObjectHeaders } from './object-headers.js';
import { ifRangeHolds, notModified, parseRange } from './range.js';
import { pipeBody } from './send.js';

export interface StreamDeps {
  storage: Pick<Storage, 'head' | 'get'>;
  /**
   * Several regions: the bucket known to hold a row's object (its home region's until this
   * region's has it: urls/region-choice.ts). Absent: `storage`.
   */
  storageFor?: (row: ObjectPlacement) => Pick<Storage, 'head' | 'get'>;
  config: Pick<Config, 'urlTtlSeconds'>;
  clock: Clock;
  logger: Logger;
}

/**
 * The Cache-Control of streamed bytes. A stream answers for an image, not for an immutable key:
 * the image can be made private or deleted, and its link then stops working (README, "Who sees
 * what"). A browser may keep the bytes as long as a signed URL handed out now lives
 * (`URL_TTL_SECONDS`), the bound every other way of showing the image gives, and never longer
 * than the link; then it asks again, and a 304 from the row costs no origin request.
 */
export function streamCacheControl(s: Pick<StreamDeps, 'config' | 'clock'>, g: ProxyGrant): string {
  let maxAge = s.config.urlTtlSeconds;
  if (g.tokenExpiresAt !== null) maxAge = Math.min(maxAge, secondsUntil(g.tokenExpiresAt, s.clock.now()));
  return `private, max-age=${maxAge}`;
}

type Headers = Record<string, string | number>;

function isAbort(err: unknown): boolean {
  return (err as { name?: string } | undefined)?.name === 'AbortError';
}

/**
 * Stream mode: the bytes flow from storage to the client without buffering (pipeline keeps
 * backpressure); a client that leaves aborts the origin request. Validators come from the row, so
 * a revalidation (304) and an unsatisfiable range (416) cost no origin request.
 */
export async function streamObject(
  s: StreamDeps,
  req: IncomingMessage,
  res: ServerResponse,
  g: ProxyGrant,
): Promise<void> {
  const { row } = g;
  const key = row.objectKey;
  const storage = s.storageFor ? s.storageFor(row) : s.storage;
  try {
    let info: ObjectInfo | null = null;
    let etag = row.etag;
    let size = row.byteSize;
    if (!etag) {
      // Rows from before ETags were kept: ask the origin once for this request.
      info = await storage.head(key);
      if (!info) throw notFound('No such object');
      etag = info.etag;
      size = info.size;
    }
    const lastModified = row.createdAt.toUTCString();
    const base: Headers = {
      etag,
      'last-modified': lastModified,
      'cache-control': streamCacheControl(s, g),
      'accept-ranges': 'bytes',
      ...untrustedObjectHeaders(row.contentType),
      ...(g.byBearer ? { vary: 'Authorization' } : {}),
    };
    if (notModified(req.headers, etag, row.createdAt)) {
      res.writeHead(304, base).end();
      return;
    }

    let parsed = parseRange(req.headers.range, size);
    if (parsed.kind === 'partial' && !ifRangeHolds(req.headers['if-range'], etag, lastModified)) {
      parsed = { kind: 'full' };
    }
    if (parsed.kind === 'unsatisfiable') {
      throw rangeNotSatisfiable(size);
    }
    const range = parsed.kind === 'partial' ? parsed.range : undefined;

    if (req.method === 'HEAD') {
      // Same answer as GET, so the origin is asked whether the object is there.
      info ??= await storage.head(key);
      if (!info) throw notFound('No such object');
      const r = range && clampRange(range, info.size);
      res.writeHead(r ? 206 : 200, { ...base, ...bodyHeaders(row.contentType, info.size, r) }).end();
      return;
    }

    const upstream = new AbortController();
    const onClose = () => upstream.abort();
    res.once('close', onClose);
    const obj = await storage.get(key, { ...(range ? { range } : {}), signal: upstream.signal });
    // The origin's answer describes the bytes that will flow: its length and range win.
    res.writeHead(obj.range ? 206 : 200, { ...base, ...bodyHeaders(row.contentType, obj.size, obj.range) });
    await pipeBody(obj.body, res);
    res.off('close', onClose);
  } catch (err) {
    if (isAbort(err) || res.destroyed) return;
    if (!(err instanceof StorageError)) throw err;
    // The origin refusing a range the row said it could serve: the object changed size.
    if (err.kind === 'rejected' && req.headers.range) throw rangeNotSatisfiable(undefined);
    if (err.kind !== 'not_found') {
      // Only the message: driver errors can carry request details (and signatures) in their causes.
      s.logger.warn(
        { kind: err.kind, err: err.message, imageId: row.id, requestId: requestIdOf(req) },
        'proxy: origin failed',
      );
    }
    // A refusal of a request we built is the origin's failure, not the client's input.
    throw fromStorageRequest(err);
  }
}

function clampRange(r: ByteRange, size: number): ByteRange | undefined {
  if (r.start >= size) return undefined;
  return { start: r.start, end: Math.min(r.end, size - 1) };
}

function bodyHeaders(contentType: string, size: number, range: ByteRange | undefined): Headers {
  const h: Headers = {
    'content-type': contentType,
    'content-length': range ? range.end - range.start + 1 : size,
  };
  if (range) h['content-range'] = `bytes ${range.start}-${range.end}/${size}`;
  return h;
}
