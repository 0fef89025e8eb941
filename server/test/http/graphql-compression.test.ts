import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Harness, startHarness } from '../support/harness.js';
import { type RawResponse, rawRequest } from '../support/hostile.js';
import { seed } from '../support/seed.js';
import { webManifest, webOperations } from '../support/web-operations.js';

// GraphQL's JSON answers in gzip (http/graphql-compression.ts), over real HTTP: node:http
// requests, not fetch, which would ask for gzip itself and hide the coding.

const PAGE = webOperations.get('GalleryPage')!;
const PAGE_BODY = JSON.stringify({ query: PAGE.doc, variables: { first: 24 } });
const PERSISTED_GET = `/graphql?variables=${encodeURIComponent(JSON.stringify({ first: 24 }))}&extensions=${encodeURIComponent(
  JSON.stringify({ persistedQuery: { version: 1, sha256Hash: PAGE.hash } }),
)}`;
const GET_QUERY = `/graphql?query=${encodeURIComponent(PAGE.doc)}&variables=${encodeURIComponent(JSON.stringify({ first: 24 }))}`;

function post(h: Harness, authorization: string, headers: Record<string, string>, body = PAGE_BODY) {
  return rawRequest(h.url, {
    method: 'POST',
    path: '/graphql',
    headers: { 'content-type': 'application/json', authorization, ...headers },
    body,
  });
}

/** The body as the client reads it: decoded as the answer's Content-Encoding says. */
function decoded(r: RawResponse): Buffer {
  const coding = r.headers['content-encoding'];
  if (coding === 'gzip') return gunzipSync(r.body);
  if (coding === 'br') return brotliDecompressSync(r.body);
  expect(coding).toBeUndefined();
  return r.body;
}

function expectVaryWith(r: RawResponse, ...names: string[]) {
  const vary = String(r.headers.vary ?? '')
    .split(',')
    .map((n) => n.trim().toLowerCase());
  for (const n of names) expect(vary, String(r.headers.vary)).toContain(n.toLowerCase());
  // Each once: the HTTP layer's and the coding's are merged, not repeated.
  expect(new Set(vary).size).toBe(vary.length);
}

/** The headers of a response that does not end (an event stream), then the connection is cut. */
function headersOf(
  base: string,
  opts: { method: string; path: string; headers: Record<string, string>; body?: string },
): Promise<RawResponse> {
  const u = new URL(base);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: u.hostname,
        port: u.port,
        method: opts.method,
        path: opts.path,
        headers: opts.headers,
        agent: false,
      },
      (res) => {
        res.once('data', (chunk: Buffer) => {
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: chunk });
          req.destroy();
        });
        res.on('error', () => {});
      },
    );
    req.on('error', reject);
    req.end(opts.body);
  });
}

describe('GraphQL answers in gzip', () => {
  let h: Harness;
  let dir: string;
  let authorization: string;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'signet-gql-gzip-'));
    const file = path.join(dir, 'persisted.json');
    await writeFile(file, JSON.stringify(webManifest));
    // The COS driver: its signed URLs are the long ones (the largest answers).
    h = await startHarness({ redis: 'memory', env: { PERSISTED_OPERATIONS_FILE: file } });
    await seed(h, 'alice', 30);
    authorization = `Bearer ${await h.token('alice')}`;
  });
  afterAll(async () => {
    await h?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('a page of images is coded when accepted, the same JSON as identity, with its length and Vary', async () => {
    const plain = await post(h, authorization, {});
    expect(plain.status).toBe(200);
    expect(plain.headers['content-encoding']).toBeUndefined();
    expect(Number(plain.headers['content-length'])).toBe(plain.body.length);
    const page = JSON.parse(plain.body.toString()) as { data: { images: { edges: unknown[] } } };
    expect(page.data.images.edges).toHaveLength(24);
    expect(plain.body.length).toBeGreaterThan(20_000);

    const expected: [string, string][] = [
      ['gzip', 'gzip'],
      ['x-gzip', 'gzip'],
      ['gzip, br;q=0.5', 'gzip'],
      ['gzip, deflate', 'gzip'],
      ['br', 'br'],
      ['gzip, deflate, br, zstd', 'br'],
      ['br;q=1, gzip;q=0.5', 'br'],
      ['*', 'br'],
    ];
    for (const [ae, coding] of expected) {
      const gz = await post(h, authorization, { 'accept-encoding': ae });
      expect(gz.status, ae).toBe(200);
      expect(gz.headers['content-encoding'], ae).toBe(coding);
      expect(Number(gz.headers['content-length']), ae).toBe(gz.body.length);
      expect(gz.body.length, ae).toBeLessThan(plain.body.length / 3);
      // The very bytes of the identity answer (the page's URLs are the window's: the same).
      expect(decoded(gz).equals(plain.body), ae).toBe(true);
      expect(gz.headers['content-type'], ae).toBe(plain.headers['content-type']);
      expect(gz.headers['cache-control'], ae).toBe('private, no-store');
      expectVaryWith(gz, 'Authorization', 'Accept-Encoding');
    }
  });

  it('identity when the client sends no Accept-Encoding, identity, or codings we do not make', async () => {
    const none = await post(h, authorization, {});
    for (const ae of [
      'identity',
      'gzip;q=0',
      'gzip;q=0, br;q=0',
      'deflate',
      'zstd',
      'gzip;q=0, *;q=0',
      'identity;q=1, gzip;q=0.5',
    ]) {
      const r = await post(h, authorization, { 'accept-encoding': ae });
      expect(r.status, ae).toBe(200);
      expect(r.headers['content-encoding'], ae).toBeUndefined();
      expect(Number(r.headers['content-length']), ae).toBe(r.body.length);
      expect(r.body.equals(none.body), ae).toBe(true);
      // Every answer says it could have been coded (a constant of the HTTP layer).
      expectVaryWith(r, 'Authorization', 'Accept-Encoding');
    }
    expectVaryWith(none, 'Authorization', 'Accept-Encoding');
  });

  it('an answer under a kilobyte, and a small error, stay identity', async () => {
    const small = await post(
      h,
      authorization,
      { 'accept-encoding': 'gzip' },
      JSON.stringify({ query: '{ viewer { id } }' }),
    );
    expect(small.status).toBe(200);
    expect(small.body.length).toBeLessThan(1024);
    expect(small.headers['content-encoding']).toBeUndefined();
    expect(Number(small.headers['content-length'])).toBe(small.body.length);
    expect(JSON.parse(small.body.toString())).toEqual({ data: { viewer: { id: 'alice' } } });
    expectVaryWith(small, 'Authorization', 'Accept-Encoding');

    const error = await post(
      h,
      authorization,
      { 'accept-encoding': 'gzip' },
      JSON.stringify({ query: '{ nope }' }),
    );
    expect(error.headers['content-encoding']).toBeUndefined();
    expect(JSON.parse(error.body.toString()).errors[0].extensions.code).toBe('GRAPHQL_VALIDATION_FAILED');

    const anonymous = await rawRequest(h.url, {
      method: 'POST',
      path: '/graphql',
      headers: { 'content-type': 'application/json', 'accept-encoding': 'gzip' },
      body: PAGE_BODY,
    });
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers['content-encoding']).toBeUndefined();
  });

  it('application/graphql-response+json is coded alike', async () => {
    const accept = 'application/graphql-response+json';
    const plain = await post(h, authorization, { accept });
    const gz = await post(h, authorization, { accept, 'accept-encoding': 'gzip' });
    expect(gz.headers['content-type']).toMatch(/^application\/graphql-response\+json/);
    expect(gz.headers['content-encoding']).toBe('gzip');
    expect(decoded(gz).equals(plain.body)).toBe(true);
  });

  it('a GET query and a persisted GET: gzip alike, and HEAD with the same headers and no body', async () => {
    for (const target of [GET_QUERY, PERSISTED_GET]) {
      const headers = { 'x-graphql-yoga-csrf': '1', authorization };
      const plain = await rawRequest(h.url, { path: target, headers });
      expect(plain.status, target).toBe(200);
      expect(plain.headers['content-encoding']).toBeUndefined();
      expect(
        (JSON.parse(plain.body.toString()) as { data: { images: { edges: unknown[] } } }).data.images.edges,
      ).toHaveLength(24);
      const gz = await rawRequest(h.url, {
        path: target,
        headers: { ...headers, 'accept-encoding': 'gzip' },
      });
      expect(gz.status, target).toBe(200);
      expect(gz.headers['content-encoding'], target).toBe('gzip');
      expect(Number(gz.headers['content-length'])).toBe(gz.body.length);
      expect(decoded(gz).equals(plain.body), target).toBe(true);
      expectVaryWith(gz, 'Authorization', 'Accept-Encoding');

      // yoga refuses HEAD (405, as before): alike with or without gzip, and nothing coded.
      const heads = [];
      for (const ae of [undefined, 'gzip']) {
        heads.push(
          await rawRequest(h.url, {
            method: 'HEAD',
            path: target,
            headers: { ...headers, ...(ae ? { 'accept-encoding': ae } : {}) },
          }),
        );
      }
      const [bare, asked] = heads as [RawResponse, RawResponse];
      expect(asked.status, target).toBe(bare.status);
      expect(asked.body.length).toBe(0);
      expect(asked.headers['content-encoding']).toBeUndefined();
      expect(asked.headers['content-length']).toBe(bare.headers['content-length']);
      expect(asked.headers.allow).toBe(bare.headers.allow);
      expect(asked.headers.vary).toBe(bare.headers.vary);
    }
  });

  it('an SSE subscription is never coded, on the fast path or through yoga, even when gzip is accepted', async () => {
    const query = 'subscription { signedUrlRefreshed(ids: []) { imageId } }';
    const fast = await headersOf(h.url, {
      method: 'POST',
      path: '/graphql',
      headers: {
        'content-type': 'application/json',
        accept: 'text/event-stream',
        'accept-encoding': 'gzip, deflate, br',
        authorization,
      },
      body: JSON.stringify({ query }),
    });
    const viaYoga = await headersOf(h.url, {
      method: 'GET',
      path: `/graphql?query=${encodeURIComponent(query)}`,
      headers: {
        accept: 'text/event-stream',
        'accept-encoding': 'gzip, deflate, br',
        'x-graphql-yoga-csrf': '1',
        authorization,
      },
    });
    for (const r of [fast, viaYoga]) {
      expect(r.status).toBe(200);
      expect(r.headers['content-type']).toMatch(/^text\/event-stream/);
      expect(r.headers['content-encoding'] ?? 'none').toBe('none');
      // The first bytes are the stream's own (a ping), readable as they are.
      expect(r.body.toString()).toMatch(/^:/);
    }
  });

  it('the GraphiQL page keeps its own coding', async () => {
    const page = await rawRequest(h.url, {
      path: '/graphql',
      headers: { accept: 'text/html', 'accept-encoding': 'gzip' },
    });
    expect(page.status).toBe(200);
    expect(page.headers['content-type']).toMatch(/^text\/html/);
    expect(page.headers['content-encoding']).toBe('gzip');
    expect(gunzipSync(page.body).toString()).toContain('<html');
    expectVaryWith(page, 'Authorization', 'Accept-Encoding');
  });
});

describe('GRAPHQL_COMPRESSION=false', () => {
  let h: Harness;
  let authorization: string;

  beforeAll(async () => {
    h = await startHarness({
      driver: 'local',
      redis: 'memory',
      database: 'pglite',
      env: { GRAPHQL_COMPRESSION: 'false' },
    });
    await seed(h, 'alice', 24);
    authorization = `Bearer ${await h.token('alice')}`;
  });
  afterAll(async () => {
    await h?.close();
  });

  it('leaves every answer as it is, and Vary without Accept-Encoding', async () => {
    const plain = await post(h, authorization, {});
    const asked = await post(h, authorization, { 'accept-encoding': 'gzip, br' });
    expect(asked.body.length).toBeGreaterThan(2048);
    for (const r of [plain, asked]) {
      expect(r.status).toBe(200);
      expect(r.headers['content-encoding']).toBeUndefined();
      expect(r.headers.vary).toBe('Authorization');
      expect(Number(r.headers['content-length'])).toBe(r.body.length);
    }
    expect(decoded(asked).equals(plain.body)).toBe(true);
  });
});

describe('coded answers keep yoga’s CORS headers', () => {
  let h: Harness;

  beforeAll(async () => {
    h = await startHarness({
      driver: 'local',
      redis: 'memory',
      database: 'pglite',
      env: { CORS_ORIGINS: 'https://app.example,https://other.example' },
    });
    await seed(h, 'alice', 24);
  });
  afterAll(async () => {
    await h?.close();
  });

  it('with Access-Control-Allow-Origin and one Vary naming Authorization, Origin and Accept-Encoding', async () => {
    const authorization = `Bearer ${await h.token('alice')}`;
    const origin = 'https://other.example';
    const plain = await post(h, authorization, { origin });
    const coded = await post(h, authorization, { origin, 'accept-encoding': 'gzip' });
    expect(coded.headers['content-encoding']).toBe('gzip');
    expect(decoded(coded).equals(plain.body)).toBe(true);
    expect(coded.headers['access-control-allow-origin']).toBe(origin);
    expect(coded.headers['access-control-allow-origin']).toBe(plain.headers['access-control-allow-origin']);
    expectVaryWith(coded, 'Authorization', 'Origin', 'Accept-Encoding');
  });
});
