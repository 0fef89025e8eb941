import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Clock } from '../clock.js';
import {
  badInput,
  forbidden,
  fromStorage,
  methodNotAllowed,
  notFound,
  rangeNotSatisfiable,
} from '../errors/index.js';
import { verifyLocalSignature } from '../storage/local.js';
import { OBJECT_CACHE_CONTROL, type Storage } from '../storage/storage.js';
import { untrustedObjectHeaders } from './object-headers.js';
import { notModified, parseRange } from './range.js';
import { pipeBody } from './send.js';

/**
 * A window bound exactly as it was signed: plain decimal seconds. `Number()` alone would also take
 * '', ' 12', '12.0', '1e3' and '0x10', so one signature would open many spellings of a URL.
 */
function seconds(v: string | null): number {
  return v !== null && /^(0|[1-9]\d{0,11})$/.test(v) ? Number(v) : Number.NaN;
}

/**
 * `GET/HEAD /local-bucket/<key>?s=&e=&sig=`: the `local` driver's bucket. It checks the signature
 * and the window the way COS does, so expiry is real in development and end-to-end tests.
 */
export function createLocalBucketRoute(deps: { storage: Storage; secret: string; clock: Clock }) {
  return async (req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> => {
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
    const now = deps.clock.now() / 1000;
    if (!Number.isInteger(start) || !Number.isInteger(end) || !sig) throw forbidden('Missing signature');
    if (!verifyLocalSignature(deps.secret, key, { start, end }, sig))
      throw forbidden('Signature does not match');
    if (now < start || now > end) throw forbidden('Request has expired');
    try {
      const head = await deps.storage.head(key);
      if (!head) throw notFound('No such object');
      const headers: Record<string, string | number> = {
        'content-type': head.contentType ?? 'application/octet-stream',
        etag: head.etag,
        'accept-ranges': 'bytes',
        'cache-control': OBJECT_CACHE_CONTROL,
        ...untrustedObjectHeaders(head.contentType),
      };
      if (head.lastModified) headers['last-modified'] = head.lastModified.toUTCString();
      if (notModified(req.headers, head.etag, head.lastModified)) {
        res.writeHead(304, headers).end();
        return;
      }
      const r = parseRange(req.headers.range, head.size);
      if (r.kind === 'unsatisfiable') throw rangeNotSatisfiable(head.size);
      const range = r.kind === 'partial' ? r.range : undefined;
      headers['content-length'] = range ? range.end - range.start + 1 : head.size;
      if (range) headers['content-range'] = `bytes ${range.start}-${range.end}/${head.size}`;
      if (req.method === 'HEAD') {
        res.writeHead(range ? 206 : 200, headers).end();
        return;
      }
      const ac = new AbortController();
      res.on('close', () => ac.abort());
      const obj = await deps.storage.get(key, { ...(range ? { range } : {}), signal: ac.signal });
      res.writeHead(range ? 206 : 200, headers);
      await pipeBody(obj.body, res);
    } catch (err) {
      throw fromStorage(err, 'Storage failed') ?? err;
    }
  };
}
