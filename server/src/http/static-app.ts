import { createReadStream, type Stats } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import path from 'node:path';
import { Readable } from 'node:stream';
import {
  type ChosenCoding,
  type CompressionCache,
  createCompressionCache,
  negotiateEncoding,
  worthCompressing,
} from './compression.js';
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

/** A body in 64 KiB slices (views, not copies), for `pipeBody`. */
function* slices(body: Buffer): Generator<Buffer> {
  for (let at = 0; at < body.length; at += 64 * 1024) yield body.subarray(at, at + 64 * 1024);
}

/** A file's bytes, refused if it no longer has the size it was served under (replaced meanwhile). */
async function readExactly(file: string, size: number): Promise<Buffer> {
  const body = await readFile(file);
  if (body.length !== size) throw new Error(`${file} changed while it was read`);
  return body;
}

/**
 * Serves the built Vue app; unknown paths get index.html so client-side routes work, except a
 * missing file (a path with an extension, or under /assets/): a page holding an old build's chunk
 * then hears 404, not HTML where it expected script (which `nosniff` would refuse anyway).
 *
 * Text files of a kilobyte or more (`worthCompressing`) go out in br or gzip when the request's
 * Accept-Encoding allows it, each compressed once per file version off the event loop and kept
 * (`compression.ts`); their answers carry `Vary: Accept-Encoding` whichever coding was chosen.
 * The rest (images, fonts, small files, identity) are streamed from disk as before. `compression`
 * is injectable for tests.
 */
export function createStaticRoute(root: string, options: { compression?: CompressionCache } = {}) {
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
    let encoded: Buffer | undefined;
    if (worthCompressing(type, st.size)) {
      headers.vary = 'Accept-Encoding';
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
    // In slices, with backpressure, as a file is: a body handed over whole in `end()` leaves the
    // stall guard nothing to watch (an ended response is not `writableNeedDrain`), and a client
    // that never reads would hold its socket and the body for good.
    else if (encoded) await pipeBody(Readable.from(slices(encoded)), res);
    // Not `.pipe()`: a client that stops reading or goes away would leave the file open for
    // good (and an open that fails, EMFILE say, would throw an unhandled 'error'). No byte past
    // the length the headers said, should the file have grown since its stat.
    else if (st.size === 0) res.end();
    else await pipeBody(createReadStream(file, { end: st.size - 1 }), res);
  };
}
