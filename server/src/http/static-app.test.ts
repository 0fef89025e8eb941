import { randomBytes } from 'node:crypto';
import {
  mkdir,
  mkdtemp,
  readdir,
  readlink,
  rename,
  rm,
  stat,
  truncate,
  utimes,
  writeFile,
} from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { type AddressInfo, connect } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { type RawResponse, rawRequest } from '../../test/support/hostile.js';
import { type CompressionCache, compress, createCompressionCache } from './compression.js';
import { APP_CSP, createStaticRoute, isInside } from './static-app.js';

describe('isInside', () => {
  const base = path.resolve('/srv/web/dist');
  it.each([
    [base, true],
    [path.join(base, 'index.html'), true],
    [path.join(base, 'assets', 'app.js'), true],
    [path.join(base, '..foo'), true], // a file whose name starts with two dots is still inside
    [path.resolve('/srv/web/dist-evil/secret.txt'), false], // a sibling sharing the prefix
    [path.resolve('/srv/web/distx'), false],
    [path.resolve('/srv/web'), false],
    [path.resolve('/etc/passwd'), false],
  ])('%s → %s', (file, inside) => {
    expect(isInside(base, file)).toBe(inside);
  });
});

describe('createStaticRoute: never serves a file outside the web root', () => {
  let dir: string;
  let server: Server;
  let url: string;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'signet-static-'));
    await mkdir(path.join(dir, 'dist'));
    await mkdir(path.join(dir, 'dist-evil'));
    await writeFile(path.join(dir, 'dist', 'index.html'), '<!doctype html><title>app</title>');
    await writeFile(path.join(dir, 'dist', 'app.js'), 'console.log(1)');
    await writeFile(path.join(dir, 'dist', 'big.bin'), Buffer.alloc(64 * 1024 * 1024));
    await writeFile(path.join(dir, 'dist-evil', 'secret.txt'), 'SECRET');
    await writeFile(path.join(dir, 'secret-beside.txt'), 'SECRET');
    const route = createStaticRoute(path.join(dir, 'dist'));
    // The URL is built as the app builds it for every request.
    server = createServer((req, res) => {
      void route(req, res, new URL(req.url ?? '/', 'http://gateway.invalid'));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await new Promise<void>((r) => server?.close(() => r()));
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('serves files of the root', async () => {
    const res = await fetch(`${url}/app.js`);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('console.log(1)');
  });

  // %2F is not a path separator to the URL parser, so `..` survives until the path is decoded.
  it.each([
    '/..%2fdist-evil%2fsecret.txt',
    '/%2e%2e%2fdist-evil%2fsecret.txt',
    '/..%2f..%2fdist-evil%2fsecret.txt',
    '/..%2fsecret-beside.txt',
  ])('%s gets the app, not the file beside it', async (target) => {
    const res = await fetch(`${url}${target}`);
    const body = await res.text();
    expect(body).not.toContain('SECRET');
    expect(res.status).toBe(200);
    expect(body).toContain('<title>app</title>');
  });

  it('answers a missing file with 404, and a client-side route with the app', async () => {
    for (const target of ['/assets/index-OLDHASH.js', '/favicon.ico', '/nested/old.css']) {
      const res = await fetch(`${url}${target}`);
      expect(res.status, target).toBe(404);
      expect(await res.text()).not.toContain('<title>app</title>');
    }
    for (const target of ['/', '/gallery', '/images/some-id']) {
      const res = await fetch(`${url}${target}`);
      expect(res.status, target).toBe(200);
      expect(await res.text()).toContain('<title>app</title>');
    }
  });

  it('closes the file when a client goes away mid-download', async () => {
    const big = path.join(dir, 'dist', 'big.bin');
    const openOnBig = async () => {
      let n = 0;
      for (const fd of await readdir('/proc/self/fd')) {
        if ((await readlink(`/proc/self/fd/${fd}`).catch(() => '')) === big) n++;
      }
      return n;
    };
    for (let i = 0; i < 3; i++) {
      // Reads the headers and the first bytes, then hangs up with most of the file unsent.
      await new Promise<void>((resolve, reject) => {
        const { port } = server.address() as AddressInfo;
        const socket = connect(port, '127.0.0.1', () => {
          socket.write('GET /big.bin HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
        });
        socket.once('data', () => {
          socket.destroy();
          resolve();
        });
        socket.once('error', reject);
      });
    }
    // `.pipe()` left each paused stream with its file open for good.
    let open = await openOnBig();
    for (let i = 0; i < 100 && open > 0; i++) {
      await new Promise((r) => setTimeout(r, 20));
      open = await openOnBig();
    }
    expect(open).toBe(0);
  });
});

describe('createStaticRoute: a file that shrinks while it is sent', () => {
  let dir: string;
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('cuts the connection at once, and says so, instead of leaving the client waiting for the rest', async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'signet-static-shrink-'));
    const file = path.join(dir, 'rebuilt.bin');
    // Far more than the socket buffers and the read-ahead hold while the client reads nothing:
    // most of the file is still unread when it is cut short.
    const size = 64 * 1024 * 1024;
    await writeFile(file, Buffer.alloc(size, 'x'));
    const warn = vi.fn();
    const route = createStaticRoute(dir, { logger: { warn } });
    const s = createServer((req, res) => {
      void route(req, res, new URL(req.url ?? '/', 'http://gateway.invalid'));
    });
    // As main.ts has it: a response that ends short would hold its connection this long.
    s.keepAliveTimeout = 65_000;
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    try {
      const socket = connect((s.address() as AddressInfo).port, '127.0.0.1');
      socket.write('GET /rebuilt.bin HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
      const chunks: Buffer[] = [];
      const closed = new Promise<void>((resolve) => {
        socket.once('close', () => resolve());
        socket.once('error', () => {});
      });
      // The headers (with the file's size) and the first bytes are out; the client then waits
      // while the file is rewritten shorter in place, as a rebuild does.
      await new Promise<void>((resolve) => {
        socket.once('data', (chunk: Buffer) => {
          chunks.push(chunk);
          socket.pause();
          resolve();
        });
      });
      await truncate(file, 1024);
      socket.on('data', (chunk: Buffer) => chunks.push(chunk));
      socket.resume();
      let timer: NodeJS.Timeout | undefined;
      const hung = new Promise<'hung'>((r) => {
        timer = setTimeout(() => r('hung'), 5_000);
      });
      expect(await Promise.race([closed.then(() => 'closed' as const), hung])).toBe('closed');
      clearTimeout(timer);
      const all = Buffer.concat(chunks);
      const head = all.subarray(0, all.indexOf('\r\n\r\n')).toString('latin1');
      expect(head).toMatch(/^HTTP\/1\.1 200 /);
      expect(head).toContain(`content-length: ${size}`);
      expect(all.length - head.length - 4).toBeLessThan(size);
      expect(warn).toHaveBeenCalledTimes(1);
      expect(warn.mock.calls[0]?.[0]).toMatchObject({ file: 'rebuilt.bin', length: size });
    } finally {
      s.closeAllConnections();
      await new Promise<void>((r) => s.close(() => r()));
    }
  });
});

type Raw = RawResponse;

/** One request with the headers exactly as given, the body as sent (node:http decodes nothing; fetch would). */
const raw = (base: string, target: string, headers: Record<string, string> = {}, method = 'GET') =>
  rawRequest(base, { path: target, headers, method });

function decode(r: Raw): Buffer {
  const coding = r.headers['content-encoding'];
  if (coding === 'br') return brotliDecompressSync(r.body);
  if (coding === 'gzip') return gunzipSync(r.body);
  expect(coding).toBeUndefined();
  return r.body;
}

/** Script-like text that compresses as a real bundle does (repetitive, not one byte repeated). */
function script(lines: number): Buffer {
  const out: string[] = [];
  for (let i = 0; i < lines; i++) {
    out.push(
      `export function f${i}(a,b){return a*${i % 97}+b.map((x)=>x+"${(i * 7919) % 10007}").join(",")}`,
    );
  }
  return Buffer.from(out.join('\n'));
}

describe('createStaticRoute: compressed answers', () => {
  let dir: string;
  let dist: string;
  let server: Server;
  let url: string;
  const files = {
    js: script(4000), // ~330 KB, as the app's main script
    css: Buffer.from('.a{color:red}\n'.repeat(400)),
    html: Buffer.from(`<!doctype html><title>app</title>${'<div class="row">cell</div>\n'.repeat(100)}`),
    png: Buffer.concat([Buffer.from('89504e470d0a1a0a', 'hex'), Buffer.alloc(8192, 0)]), // compressible bytes, but an image
    woff2: Buffer.alloc(4096, 1),
    tiny: Buffer.from('console.log("tiny")'),
    noise: randomBytes(16 * 1024), // a text type whose bytes do not compress
  };

  const serve = async (options: Parameters<typeof createStaticRoute>[1] = {}) => {
    const route = createStaticRoute(dist, options);
    const s = createServer((req, res) => {
      void route(req, res, new URL(req.url ?? '/', 'http://gateway.invalid'));
    });
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    return { server: s, url: `http://127.0.0.1:${(s.address() as AddressInfo).port}` };
  };

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'signet-static-z-'));
    dist = path.join(dir, 'dist');
    await mkdir(path.join(dist, 'assets'), { recursive: true });
    await writeFile(path.join(dist, 'index.html'), files.html);
    await writeFile(path.join(dist, 'assets', 'index-abc.js'), files.js);
    await writeFile(path.join(dist, 'assets', 'index-abc.css'), files.css);
    await writeFile(path.join(dist, 'assets', 'logo.png'), files.png);
    await writeFile(path.join(dist, 'assets', 'font.woff2'), files.woff2);
    await writeFile(path.join(dist, 'assets', 'tiny.js'), files.tiny);
    await writeFile(path.join(dist, 'assets', 'noise.js'), files.noise);
    ({ server, url } = await serve());
  });
  afterAll(async () => {
    await new Promise<void>((r) => server?.close(() => r()));
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it.each([
    [undefined, 'identity'],
    ['', 'identity'],
    ['gzip, deflate, br', 'br'],
    ['gzip, deflate', 'gzip'],
    ['br', 'br'],
    ['GZIP', 'gzip'],
    ['x-gzip', 'gzip'],
    ['deflate', 'identity'],
    ['gzip;q=0', 'identity'],
    ['gzip;q=0, deflate', 'identity'],
    ['br;q=0, gzip;q=0', 'identity'],
    ['*', 'br'],
    ['*;q=0', 'identity'],
    ['br;q=0, *', 'gzip'],
    ['gzip, *;q=0', 'gzip'],
    ['br;q=0.5, gzip', 'gzip'],
    ['br;q=0.5, gzip;q=0.8', 'gzip'],
    ['gzip;q=0.5, br;q=0.9', 'br'],
    ['gzip ; q=1.000 , br ; Q=0.999', 'gzip'],
    ['gzip;q=0.001', 'gzip'],
    ['gzip;q=abc', 'identity'], // a malformed weight drops its entry
    ['gzip;q=1.5', 'identity'],
    ['br, br;q=0', 'identity'], // named twice: the refusal holds
    ['identity', 'identity'],
    ['identity, gzip;q=0.5', 'identity'],
    ['identity;q=0.5, gzip', 'gzip'],
    ['identity;q=0', 'identity'], // nothing else acceptable: sent as it is anyway, not a 406
    ['identity;q=0, *;q=0', 'identity'],
    ['br;q=0.1, gzip;q=0.1, *', 'identity'], // `*` stands for identity too, weighing more here
    ['gzip;q=0.5, *;q=0.2', 'gzip'],
  ])('Accept-Encoding %j → %s, the file byte for byte, its length right', async (accept, want) => {
    const r = await raw(
      url,
      '/assets/index-abc.js',
      accept === undefined ? {} : { 'accept-encoding': accept },
    );
    expect(r.status).toBe(200);
    expect(r.headers['content-encoding']).toBe(want === 'identity' ? undefined : want);
    expect(r.headers.vary).toBe('Accept-Encoding');
    expect(Number(r.headers['content-length'])).toBe(r.body.length);
    expect(r.headers['cache-control']).toBe('public, max-age=31536000, immutable');
    expect(r.headers['content-type']).toBe('text/javascript; charset=utf-8');
    expect(r.headers['x-content-type-options']).toBe('nosniff');
    expect(decode(r).equals(files.js)).toBe(true);
    if (want !== 'identity') expect(r.body.length).toBeLessThan(files.js.length / 3);
  });

  it('index.html (a client-side route too) is compressed and keeps no-cache; the CSS is compressed', async () => {
    for (const target of ['/', '/index.html', '/gallery']) {
      const r = await raw(url, target, { 'accept-encoding': 'gzip, br' });
      expect(r.headers['content-encoding'], target).toBe('br');
      expect(r.headers['cache-control'], target).toBe('no-cache');
      expect(decode(r).equals(files.html), target).toBe(true);
    }
    const css = await raw(url, '/assets/index-abc.css', { 'accept-encoding': 'gzip' });
    expect(css.headers['content-encoding']).toBe('gzip');
    expect(Number(css.headers['content-length'])).toBe(css.body.length);
    expect(decode(css).equals(files.css)).toBe(true);
  });

  it('the page carries the CSP it is given (the gateway gives APP_CSP), assets none, and none unless given', async () => {
    const withCsp = await serve({ csp: APP_CSP });
    try {
      for (const target of ['/', '/gallery']) {
        const r = await raw(withCsp.url, target, {});
        const csp = r.headers['content-security-policy'] as string;
        expect(csp, target).toContain("script-src 'self'");
        expect(csp, target).toContain("connect-src 'self'");
        expect(csp, target).toContain("frame-ancestors 'none'");
        expect(csp, target).toContain("object-src 'none'");
        expect(r.headers['x-frame-options'], target).toBe('DENY');
      }
      const js = await raw(withCsp.url, '/assets/index-abc.js', {});
      expect(js.headers['content-security-policy']).toBeUndefined();
    } finally {
      withCsp.server.closeAllConnections();
      await new Promise<void>((r) => withCsp.server.close(() => r()));
    }
    // Another static site on this route (the e2e tests' example app, whose page talks to a
    // gateway on another origin) sends no policy of the gateway's.
    expect((await raw(url, '/', {})).headers['content-security-policy']).toBeUndefined();
  });

  it('HEAD answers as GET does, without the body', async () => {
    for (const accept of ['br', 'gzip', 'identity']) {
      const get = await raw(url, '/assets/index-abc.js', { 'accept-encoding': accept });
      const head = await raw(url, '/assets/index-abc.js', { 'accept-encoding': accept }, 'HEAD');
      expect(head.status, accept).toBe(200);
      expect(head.body.length, accept).toBe(0);
      for (const h of ['content-encoding', 'content-length', 'content-type', 'vary', 'cache-control']) {
        expect(head.headers[h], `${accept} ${h}`).toBe(get.headers[h]);
      }
    }
  });

  it('images, fonts, files under a kilobyte and bytes that do not compress go out as they are', async () => {
    for (const [target, file, vary] of [
      ['/assets/logo.png', files.png, undefined],
      ['/assets/font.woff2', files.woff2, undefined],
      ['/assets/tiny.js', files.tiny, undefined],
      // worth trying by type and size, so the answer varies; br and gzip gain nothing on noise
      ['/assets/noise.js', files.noise, 'Accept-Encoding'],
    ] as const) {
      for (const accept of ['gzip, br', '*']) {
        const r = await raw(url, target, { 'accept-encoding': accept });
        expect(r.status, target).toBe(200);
        expect(r.headers['content-encoding'], target).toBeUndefined();
        expect(r.headers.vary, target).toBe(vary);
        expect(Number(r.headers['content-length']), target).toBe(file.length);
        expect(r.body.equals(file), target).toBe(true);
      }
    }
  });

  it('no conditional answers: If-None-Match and If-Modified-Since still get the whole file', async () => {
    const r = await raw(url, '/assets/index-abc.js', {
      'accept-encoding': 'br',
      'if-none-match': '*',
      'if-modified-since': new Date(Date.now() + 86_400_000).toUTCString(),
    });
    expect(r.status).toBe(200);
    expect(r.headers.etag).toBeUndefined();
    expect(decode(r).equals(files.js)).toBe(true);
  });

  it('index.html has a validator: a revisit with If-None-Match is a 304 without the page; a rebuilt page is sent again', async () => {
    const first = await raw(url, '/', { 'accept-encoding': 'br' });
    const etag = first.headers.etag as string;
    expect(etag).toMatch(/^W\/"[A-Za-z0-9_-]{16}"$/);
    // Every coding and every client-side route of the page has the same validator.
    expect((await raw(url, '/gallery', {})).headers.etag).toBe(etag);
    for (const inm of [etag, `"other", ${etag}`, etag.slice(2), '*']) {
      const again = await raw(url, '/gallery', { 'accept-encoding': 'br', 'if-none-match': inm });
      expect(again.status, inm).toBe(304);
      expect(again.body.length, inm).toBe(0);
      expect(again.headers.etag, inm).toBe(etag);
      expect(again.headers['cache-control'], inm).toBe('no-cache');
    }
    expect((await raw(url, '/', { 'if-none-match': 'W/"not-this-one"' })).status).toBe(200);
    // Rebuilt: another validator, and the new page to a client holding the old one.
    const page = path.join(dist, 'index.html');
    const before = await stat(page);
    await writeFile(page, `${files.html.toString()}<!-- rebuilt -->`);
    try {
      const rebuilt = await raw(url, '/', { 'if-none-match': etag });
      expect(rebuilt.status).toBe(200);
      expect(rebuilt.headers.etag).not.toBe(etag);
      expect(rebuilt.body.toString()).toContain('rebuilt');
    } finally {
      await writeFile(page, files.html);
      await utimes(page, before.atime, before.mtime);
    }
  });

  it('a file rewritten in place is compressed again, never served from its old version', async () => {
    const file = path.join(dist, 'assets', 'rewritten.js');
    await writeFile(file, script(100));
    const first = await raw(url, '/assets/rewritten.js', { 'accept-encoding': 'gzip' });
    expect(decode(first).equals(script(100))).toBe(true);
    await writeFile(file, script(120));
    // A different size is enough to tell the versions apart, whatever the file system's mtime precision.
    const second = await raw(url, '/assets/rewritten.js', { 'accept-encoding': 'gzip' });
    expect(second.headers['content-encoding']).toBe('gzip');
    expect(decode(second).equals(script(120))).toBe(true);
  });

  it('a rebuilt file of the same size and the same mtime (a copy that keeps times) is not served from the old one', async () => {
    const file = path.join(dist, 'assets', 'same-size.js');
    const before = script(100);
    const after = Buffer.from(before.toString('latin1').replace(/return/g, 'RETURN'), 'latin1');
    expect(after.length).toBe(before.length);
    expect(after.equals(before)).toBe(false);
    // Times in whole seconds, set the same way each time: the file's mtimeMs is then exactly the
    // same number (a time read back from stat and set again may move in its last nanoseconds).
    const t = Math.floor(Date.now() / 1000) - 60;
    await writeFile(file, before);
    await utimes(file, t, t);
    const { mtimeMs, size } = await stat(file);
    expect(decode(await raw(url, '/assets/same-size.js', { 'accept-encoding': 'br' })).equals(before)).toBe(
      true,
    );
    // In place (same inode), then the old times put back, as `cp -p` or `rsync -a` would: only
    // the change time tells.
    await writeFile(file, after);
    await utimes(file, t, t);
    const rewritten = await stat(file);
    expect([rewritten.mtimeMs, rewritten.size]).toEqual([mtimeMs, size]);
    expect(decode(await raw(url, '/assets/same-size.js', { 'accept-encoding': 'br' })).equals(after)).toBe(
      true,
    );
    // Replaced by a rename, as a deploy does: another inode.
    const staged = path.join(dist, 'assets', 'same-size.js.new');
    await writeFile(staged, before);
    await utimes(staged, t, t);
    await rename(staged, file);
    expect(decode(await raw(url, '/assets/same-size.js', { 'accept-encoding': 'br' })).equals(before)).toBe(
      true,
    );
  });

  it('concurrent first requests for a file share one compression per coding, and later ones none', async () => {
    const cache = createCompressionCache({
      compress: async (body, coding) => {
        compressions.push(coding);
        await gate;
        return compress(body, coding);
      },
    });
    const compressions: string[] = [];
    let open!: () => void;
    const gate = new Promise<void>((r) => {
      open = r;
    });
    let lookups = 0;
    const counted: CompressionCache = {
      get(...args) {
        lookups++;
        return cache.get(...args);
      },
    };
    const s = await serve({ compression: counted });
    try {
      const n = 16;
      const answers = Array.from({ length: n }, (_, i) =>
        raw(s.url, '/assets/index-abc.js', { 'accept-encoding': 'br' }, i % 4 === 0 ? 'HEAD' : 'GET'),
      );
      // Every request has asked the cache while the one compression is held at the gate.
      await vi.waitFor(() => expect(lookups).toBe(n), { timeout: 10_000 });
      open();
      for (const r of await Promise.all(answers)) {
        expect(r.headers['content-encoding']).toBe('br');
        if (r.body.length > 0) expect(decode(r).equals(files.js)).toBe(true);
      }
      expect(compressions).toEqual(['br']);
      const gz = await Promise.all(
        [1, 2, 3].map(() => raw(s.url, '/assets/index-abc.js', { 'accept-encoding': 'gzip' })),
      );
      for (const r of gz) expect(decode(r).equals(files.js)).toBe(true);
      await raw(s.url, '/assets/index-abc.js', { 'accept-encoding': 'br' });
      expect(compressions).toEqual(['br', 'gzip']);
    } finally {
      await new Promise<void>((r) => s.server.close(() => r()));
    }
  });
});
