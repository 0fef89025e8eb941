import { createHash } from 'node:crypto';
import { createReadStream, type Stats } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import path from 'node:path';
import { requestIdOf } from '../lib/request-id.js';
import type { Logger } from '../logger.js';
import {
  type ChosenCoding,
  type CompressionCache,
  createCompressionCache,
  negotiateEncoding,
  worthCompressing,
} from './compression.js';
import { etagMatches } from './range.js';
import type { RequestTarget } from './request-target.js';
import { pipeBody, sendText } from './send.js';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json',
  '.woff2': 'font/woff2',
  '.map': 'application/json',
};

/**
 * Whether `file` (absolute, resolved) is `base` itself or below it. A bare prefix test is not
 * enough: `/srv/dist-evil/x` starts with `/srv/dist` but is a sibling folder.
 */
export function isInside(base: string, file: string): boolean {
  const rel = path.relative(base, file);
  return rel === '' || (rel !== '..' && !rel.startsWith(`..${path.sep}`) && !path.isAbsolute(rel));
}

/**
 * What identifies a file's content for the compression cache: its inode (a file replaced by a
 * rename, as deploys do, is another), size, and modification and change times (a rebuild may
 * keep the size, `index.html`'s hashed names being of fixed length, and a copy that keeps times,
 * `rsync -a` or `cp -p`, the mtime; nothing sets the ctime back).
 */
function fileVersion(st: Stats): string {
  return `${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}`;
}

/** A file's bytes, refused if it no longer has the size it was served under (replaced meanwhile). */
async function readExactly(file: string, size: number): Promise<Buffer> {
  const body = await readFile(file);
  if (body.length !== size) throw new Error(`${file} changed while it was read`);
  return body;
}

/**
 * The policy of the web app's page as the gateway serves it (app.ts; another site on this route,
 * such as the e2e tests' example app talking to a gateway elsewhere, sets its own): scripts and
 * styles from this origin only (the build inlines no script), requests to this gateway only,
 * images from anywhere (buckets, CDNs, regions; ThumbHash placeholders are data: URLs), and no
 * framing (a one-click visibility toggle must not be clickjacked). The viewer's token sits in
 * localStorage: an injected script would be a stolen session, which `script-src 'self'` refuses.
 * Inline styles stay allowed: Vue binds `style`.
 */
export const APP_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  'img-src * data: blob:',
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'self'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

/**
 * Serves the built Vue app; unknown paths get index.html so client-side routes work, except a
 * missing file (a path with an extension, or under /assets/): a page holding an old build's chunk
 * then hears 404, not HTML where it expected script (which `nosniff` would refuse anyway).
 *
 * Text files of a kilobyte or more (`worthCompressing`) go out in br or gzip when the request's
 * Accept-Encoding allows it, each compressed once per file version off the event loop and kept
 * (`compression.ts`); their answers carry `Vary: Accept-Encoding` whichever coding was chosen.
 * The rest (images, fonts, small files, identity) are streamed from disk as before. `compression`
 * is injectable for tests; `logger` hears of a file that shrank while it was sent.
 */
export function createStaticRoute(
  root: string,
  options: {
    compression?: CompressionCache;
    logger?: Pick<Logger, 'warn'>;
    /** The Content-Security-Policy of an HTML page (the gateway's web app: APP_CSP); none unset. */
    csp?: string;
  } = {},
) {
  const base = path.resolve(root);
  const compression = options.compression ?? createCompressionCache();
  return async (req: IncomingMessage, res: ServerResponse, url: RequestTarget): Promise<void> => {
    let rel: string;
    try {
      rel = decodeURIComponent(url.pathname);
    } catch {
      rel = '/';
    }
    let file = path.resolve(base, `.${rel}`);
    if (!isInside(base, file)) file = path.join(base, 'index.html');
    let st = await stat(file).catch(() => null);
    if (!st?.isFile()) {
      if (path.extname(rel) !== '' || rel.startsWith('/assets/')) {
        sendText(res, 404, 'No such file');
        return;
      }
      file = path.join(base, 'index.html');
      st = await stat(file).catch(() => null);
    }
    if (!st?.isFile()) {
      sendText(res, 404, 'The web app is not built. Run `npm run build` (npm start does it for you).');
      return;
    }
    const immutable = file.includes(`${path.sep}assets${path.sep}`);
    const type = TYPES[path.extname(file)] ?? 'application/octet-stream';
    const headers: OutgoingHttpHeaders = {
      'content-type': type,
      'content-length': st.size,
      'cache-control': immutable ? 'public, max-age=31536000, immutable' : 'no-cache',
      'x-content-type-options': 'nosniff',
    };
    if (options.csp && type.startsWith('text/html')) {
      headers['content-security-policy'] = options.csp;
      // For browsers without CSP's frame-ancestors.
      headers['x-frame-options'] = 'DENY';
    }
    if (worthCompressing(type, st.size)) headers.vary = 'Accept-Encoding';
    if (!immutable) {
      // `no-cache` files (index.html) are revalidated on every visit: a validator turns that
      // into a 304 of a few hundred bytes instead of the whole file. Weak: the same for every
      // coding of the file, which are equivalent.
      const etag = `W/"${createHash('sha1').update(fileVersion(st)).digest('base64url').slice(0, 16)}"`;
      headers.etag = etag;
      if (etagMatches(req.headers['if-none-match'], etag)) {
        const { 'content-length': _length, 'content-type': _type, ...kept } = headers;
        res.writeHead(304, kept);
        res.end();
        return;
      }
    }
    let encoded: Buffer | undefined;
    if (headers.vary) {
      const coding: ChosenCoding = negotiateEncoding(req.headers['accept-encoding']);
      if (coding !== 'identity') {
        // A HEAD compresses too: its content-length is the one a GET would get. A file that
        // changed or vanished while read is served as it is, as before.
        const { size } = st;
        encoded = await compression
          .get(file, fileVersion(st), coding, () => readExactly(file, size))
          .catch(() => undefined);
        if (encoded) {
          headers['content-encoding'] = coding;
          headers['content-length'] = encoded.length;
        }
      }
    }
    res.writeHead(200, headers);
    if (req.method === 'HEAD') res.end();
    // Whole, from the cache: the stall guard watches an ended body too, until its last byte is out.
    else if (encoded) res.end(encoded);
    else if (st.size === 0) res.end();
    else await sendFile(res, file, st.size, { base, logger: options.logger });
  };
}

/**
 * Streams `size` bytes of `file`, as its headers promised. Not `.pipe()`: a client that stops
 * reading or goes away would leave the file open for good (and an open that fails, EMFILE say,
 * would throw an unhandled 'error'). No byte past `size`, should the file have grown since its
 * stat. A file rewritten shorter in place meanwhile (a rebuild) ends the stream early: the
 * response would end "normally" short of its content-length, and the client would wait for the
 * rest until its own timeout, or keep-alive's (65 s). The connection is cut instead, so the client
 * sees a truncated answer at once.
 */
async function sendFile(
  res: ServerResponse,
  file: string,
  size: number,
  { base, logger }: { base: string; logger: Pick<Logger, 'warn'> | undefined },
): Promise<void> {
  const body = createReadStream(file, { end: size - 1 });
  // Heard before the pipe's own 'end', which ends the response; the socket is the response's
  // until that has finished, so destroying it here cuts this answer, whichever runs first.
  body.once('end', () => {
    if (body.bytesRead >= size) return;
    logger?.warn(
      {
        file: path.relative(base, file),
        length: size,
        sent: body.bytesRead,
        requestId: requestIdOf(res.req),
      },
      'static: file shrank while it was sent; connection cut',
    );
    res.destroy();
  });
  await pipeBody(body, res);
}
