import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import { createSchema, createYoga } from 'graphql-yoga';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { rawRequest } from '../../test/support/hostile.js';
import { type CompressionCache, compress, createCompressionCache } from './compression.js';
import { bundledGraphiql, GRAPHIQL_CSP, useGraphiqlPage } from './graphiql.js';

/** GET /graphql with the headers exactly as given, the body as sent (node:http decodes nothing). */
const raw = (base: string, headers: Record<string, string>) =>
  rawRequest(base, { path: '/graphql', headers });

/**
 * The page's plugin on a yoga of its own, with the cache's compression held at a gate: every
 * first view arrives while the one compression runs. (The gateway's own page, its headers and
 * 304s: test/graphql/introspection.test.ts.)
 */
describe('the GraphiQL page: compressed once, whatever the views in flight', () => {
  const compressions: string[] = [];
  let open!: () => void;
  const gate = new Promise<void>((r) => {
    open = r;
  });
  let lookups = 0;
  let server: Server;
  let url: string;

  beforeAll(async () => {
    const cache = createCompressionCache({
      compress: async (body, coding) => {
        compressions.push(coding);
        await gate;
        return compress(body, coding);
      },
    });
    const counted: CompressionCache = {
      get(...args) {
        lookups++;
        return cache.get(...args);
      },
    };
    const page = bundledGraphiql({ cache: counted });
    const yoga = createYoga({
      schema: createSchema({ typeDefs: 'type Query { hello: String }' }),
      graphiql: { title: 'Signet' },
      renderGraphiQL: page.render,
      plugins: [useGraphiqlPage(page)],
    });
    server = createServer(yoga);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    open();
    await new Promise<void>((r) => server?.close(() => r()));
  });

  it('concurrent first views share one compression per coding', async () => {
    const n = 12;
    const views = Array.from({ length: n }, () => raw(url, { accept: 'text/html', 'accept-encoding': 'br' }));
    await vi.waitFor(() => expect(lookups).toBe(n), { timeout: 20_000 });
    open();
    const answers = await Promise.all(views);
    const plain = await raw(url, { accept: 'text/html' });
    expect(plain.headers['content-encoding']).toBeUndefined();
    for (const r of answers) {
      expect(r.status).toBe(200);
      expect(r.headers['content-encoding']).toBe('br');
      expect(r.headers.etag).toBe(plain.headers.etag);
      expect(Number(r.headers['content-length'])).toBe(r.body.length);
      expect(brotliDecompressSync(r.body).equals(plain.body)).toBe(true);
    }
    expect(compressions).toEqual(['br']);
    const gz = await raw(url, { accept: 'text/html', 'accept-encoding': 'gzip' });
    expect(gunzipSync(gz.body).equals(plain.body)).toBe(true);
    await raw(url, { accept: 'text/html', 'accept-encoding': 'gzip, br' });
    expect(compressions).toEqual(['br', 'gzip']);
  });

  it('a 304 carries the validators and the security headers, no body, no length or type', async () => {
    const first = await raw(url, { accept: 'text/html', 'accept-encoding': 'gzip' });
    const again = await raw(url, {
      accept: 'text/html',
      'accept-encoding': 'gzip',
      'if-none-match': String(first.headers.etag),
    });
    expect(again.status).toBe(304);
    expect(again.body.length).toBe(0);
    expect(again.headers.etag).toBe(first.headers.etag);
    expect(again.headers['cache-control']).toBe('no-cache');
    expect(again.headers.vary).toBe('Accept-Encoding');
    expect(again.headers['content-security-policy']).toBe(GRAPHIQL_CSP);
    expect(again.headers['content-length']).toBeUndefined();
    expect(again.headers['content-type']).toBeUndefined();
    expect(again.headers['content-encoding']).toBeUndefined();
  });
});
