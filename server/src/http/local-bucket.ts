import { createReadStream } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import type { Clock } from '../clock.js';
import {
  badInput,
  classify,
  forbidden,
  methodNotAllowed,
  notFound,
  rangeNotSatisfiable,
} from '../errors/index.js';
import { verifyLocalSignature } from '../storage/local.js';
import type { LocalVariants } from '../storage/local-variants.js';
import { type ByteRange, OBJECT_CACHE_CONTROL, type Storage } from '../storage/storage.js';
import { parseVariantKey } from '../storage/variant.js';
import { untrustedObjectHeaders } from './object-headers.js';
import { ifRangeHolds, notModified, parseRange } from './range.js';
import type { RequestTarget } from './request-target.js';
import { pipeBody } from './send.js';

/**
 * A window bound exactly as it was signed: plain decimal seconds. `Number()` alone would also take
 * '', ' 12', '12.0', '1e3' and '0x10', so one signature would open many spellings of a URL.
 */
function seconds(v: string | null): number {
  return v !== null && /^(0|[1-9]\d{0,11})$/.test(v) ? Number(v) : Number.NaN;
}

/** What serving a stored thing (an object or a kept variant) needs: its validators and its bytes. */
interface Servable {
  size: number;
  etag: string;
  contentType: string | undefined;
  lastModified: Date | undefined;
  open(range: ByteRange | undefined, signal: AbortSignal): Promise<Readable> | Readable;
}

/**
 * `GET/HEAD /local-bucket/<key>?s=&e=[&v=]&sig=`: the `local` driver's bucket. It checks the
 * signature and the window the way COS does, so expiry is real in development and end-to-end
 * tests. With `v=` (a variant key, covered by the signature) it serves that variant of the
 * object, made on its first request (storage/local-variants.ts).
 */
export function createLocalBucketRoute(deps: {
  storage: Storage;
  /** Every secret a URL may be signed with (LOCAL_SIGNING_SECRET's list: a rotation's old and new). */
  secrets: readonly string[];
  clock: Clock;
  localVariants: Pick<LocalVariants, 'get'> | undefined;
}) {
  return async (req: IncomingMessage, res: ServerResponse, url: RequestTarget): Promise<void> => {
    if (req.method !== 'GET' && req.method !== 'HEAD') throw methodNotAllowed();
    let key: string;
    try {
      key = url.pathname.slice('/local-bucket/'.length).split('/').map(decodeURIComponent).join('/');
    } catch {
      throw badInput('Malformed object key');
    }
    const start = seconds(url.searchParams.get('s'));
    const end = seconds(url.searchParams.get('e'));
    const sig = url.searchParams.get('sig') ?? '';
    // Present (even empty) means a variant was signed: dropping it changes what was signed.
    const variantKey = url.searchParams.get('v') ?? undefined;
    const now = deps.clock.now() / 1000;
    if (!Number.isInteger(start) || !Number.isInteger(end) || !sig) throw forbidden('Missing signature');
    if (!deps.secrets.some((secret) => verifyLocalSignature(secret, key, { start, end }, sig, variantKey)))
      throw forbidden('Signature does not match');
    if (now < start || now > end) throw forbidden('Request has expired');
    try {
      if (variantKey === undefined) {
        const head = await deps.storage.head(key);
        if (!head) throw notFound('No such object');
        await serve(req, res, {
          ...head,
          open: async (range, signal) =>
            (await deps.storage.get(key, { ...(range ? { range } : {}), signal })).body,
        });
        return;
      }
      // Only a key this gateway signed gets here; one it cannot read is still not a request.
      const variant = parseVariantKey(variantKey);
      if (!variant || !deps.localVariants) throw forbidden('Not a variant this bucket serves');
      const kept = await deps.localVariants.get(key, variant);
      await serve(req, res, {
        ...kept,
        open: (range, signal) =>
          createReadStream(kept.file, { start: range?.start, end: range?.end, signal }),
      });
    } catch (err) {
      throw classify(err) ?? err;
    }
  };
}

/** Answers like a bucket: validators, 304, Range, the untrusted-object headers, then the bytes. */
async function serve(req: IncomingMessage, res: ServerResponse, obj: Servable): Promise<void> {
  const headers: Record<string, string | number> = {
    'content-type': obj.contentType ?? 'application/octet-stream',
    etag: obj.etag,
    'accept-ranges': 'bytes',
    'cache-control': OBJECT_CACHE_CONTROL,
    ...untrustedObjectHeaders(obj.contentType),
  };
  if (obj.lastModified) headers['last-modified'] = obj.lastModified.toUTCString();
  if (notModified(req.headers, obj.etag, obj.lastModified)) {
    res.writeHead(304, headers).end();
    return;
  }
  const r = parseRange(req.headers.range, obj.size);
  if (r.kind === 'unsatisfiable') throw rangeNotSatisfiable(obj.size);
  // A range asked "if still this version": another version is sent whole.
  const holds = ifRangeHolds(req.headers['if-range'], obj.etag, obj.lastModified?.toUTCString());
  const range = r.kind === 'partial' && holds ? r.range : undefined;
  headers['content-length'] = range ? range.end - range.start + 1 : obj.size;
  if (range) headers['content-range'] = `bytes ${range.start}-${range.end}/${obj.size}`;
  if (req.method === 'HEAD') {
    res.writeHead(range ? 206 : 200, headers).end();
    return;
  }
  const ac = new AbortController();
  res.on('close', () => ac.abort());
  const body = await obj.open(range, ac.signal);
  res.writeHead(range ? 206 : 200, headers);
  await pipeBody(body, res);
}
