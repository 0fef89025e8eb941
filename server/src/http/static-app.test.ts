import { mkdir, mkdtemp, readdir, readlink, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { type AddressInfo, connect } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createStaticRoute, isInside } from './static-app.js';

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
