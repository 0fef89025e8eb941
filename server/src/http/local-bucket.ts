import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Clock } from '../clock.js';
import { verifyLocalSignature } from '../storage/local.js';
import { type Storage, StorageError } from '../storage/storage.js';
import { etagMatches, parseRange } from './range.js';
import { pipeBody, sendError } from './send.js';

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
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      sendError(res, 'BAD_USER_INPUT', 'Only GET and HEAD', { allow: 'GET, HEAD' }, 405);
      return;
    }
    let key: string;
    try {
      key = url.pathname.slice('/local-bucket/'.length).split('/').map(decodeURIComponent).join('/');
    } catch {
      sendError(res, 'BAD_USER_INPUT', 'Malformed object key');
      return;
    }
    const start = seconds(url.searchParams.get('s'));
    const end = seconds(url.searchParams.get('e'));
    const sig = url.searchParams.get('sig') ?? '';
    const now = deps.clock.now() / 1000;
    if (!Number.isInteger(start) || !Number.isInteger(end) || !sig) {
      sendError(res, 'FORBIDDEN', 'Missing signature');
      return;
    }
    if (!verifyLocalSignature(deps.secret, key, { start, end }, sig)) {
      sendError(res, 'FORBIDDEN', 'Signature does not match');
      return;
    }
    if (now < start || now > end) {
      sendError(res, 'FORBIDDEN', 'Request has expired');
      return;
    }
    try {
      const head = await deps.storage.head(key);
      if (!head) {
        sendError(res, 'NOT_FOUND', 'No such object');
        return;
      }
      const headers: Record<string, string | number> = {
        'content-type': head.contentType ?? 'application/octet-stream',
        etag: head.etag,
        'accept-ranges': 'bytes',
        'cache-control': 'private, max-age=0',
        'x-content-type-options': 'nosniff',
      };
      if (head.lastModified) headers['last-modified'] = head.lastModified.toUTCString();
      if (etagMatches(req.headers['if-none-match'], head.etag)) {
        res.writeHead(304, headers).end();
        return;
      }
      const r = parseRange(req.headers.range, head.size);
      if (r.kind === 'unsatisfiable') {
        sendError(
          res,
          'BAD_USER_INPUT',
          'Range not satisfiable',
          { 'content-range': `bytes */${head.size}` },
          416,
        );
        return;
      }
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
      if (err instanceof StorageError && err.kind === 'not_found')
        sendError(res, 'NOT_FOUND', 'No such object');
      else if (err instanceof StorageError && err.kind === 'rejected')
        sendError(res, 'BAD_USER_INPUT', 'Invalid key');
      else sendError(res, 'BAD_GATEWAY', 'Storage failed', {}, 502);
    }
  };
}
