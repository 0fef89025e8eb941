import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GRAPHIQL_DEFAULT_QUERY } from '../../src/http/graphiql.js';
import { type Harness, startHarness } from '../support/harness.js';
import { type RawResponse, rawRequest } from '../support/hostile.js';
import { gqlRaw } from '../support/raw-graphql.js';

/** The GraphiQL page's headers, whichever coding carries it (and on its 304). */
function expectPageHeaders(r: RawResponse, label: string): void {
  const csp = String(r.headers['content-security-policy'] ?? '');
  expect(csp, label).toContain("default-src 'none'");
  expect(csp, label).toContain("connect-src 'self'");
  expect(r.headers['x-content-type-options'], label).toBe('nosniff');
  expect(r.headers['referrer-policy'], label).toBe('no-referrer');
  expect(r.headers['cache-control'], label).toBe('no-cache');
  // Authorization: every /graphql answer varies by the caller's token (http/app.ts).
  expect(r.headers.vary, label).toBe('Authorization, Accept-Encoding');
  expect(r.headers.etag, label).toMatch(/^W\/"[A-Za-z0-9_-]{43}"$/);
}

describe('introspection (the development defaults)', () => {
  let h: Harness;

  beforeAll(async () => {
    h = await startHarness({ driver: 'local', redis: 'memory' });
  });
  afterAll(async () => {
    await h?.close();
  });

  it('introspection and GraphiQL are on outside production', async () => {
    const r = await gqlRaw(h, { query: '{ __schema { queryType { name } } }' });
    expect(r.body?.data).toEqual({ __schema: { queryType: { name: 'Query' } } });
    const page = await fetch(`${h.url}/graphql`, { headers: { accept: 'text/html' } });
    expect(page.status).toBe(200);
    expect(await page.text()).toMatch(/graphiql/i);
  });

  it('GraphiQL opens on a query that runs as it is', async () => {
    const html = await (await fetch(`${h.url}/graphql`, { headers: { accept: 'text/html' } })).text();
    // The renderer writes its options into the page as JSON.
    expect(html).toContain(JSON.stringify(GRAPHIQL_DEFAULT_QUERY).slice(1, -1));
    const res = await h.gql<{ viewer: { id: string }; images: { totalCount: number } }>(
      GRAPHIQL_DEFAULT_QUERY,
    );
    expect(res.errors).toBeUndefined();
    expect(res.data!.images.totalCount).toBeGreaterThanOrEqual(0);
  });

  it('GraphiQL is the bundled page: nothing to load from another host, and a CSP that says so', async () => {
    const page = await fetch(`${h.url}/graphql`, { headers: { accept: 'text/html' } });
    expect(page.status).toBe(200);
    const html = await page.text();
    // The renderer inlines GraphiQL itself (megabytes); yoga's CDN page is a few hundred bytes.
    expect(html.length).toBeGreaterThan(1_000_000);
    expect(html).toContain('YogaGraphiQL.renderYogaGraphiQL');
    expect(html).toContain('<title>Signet</title>');
    // No element or stylesheet pointing at another host (the e2e test watches the browser's requests).
    for (const external of [/src=["']?https?:/i, /href=["']?https?:/i, /url\(["']?https?:/i, /@import\s/i]) {
      expect(html, String(external)).not.toMatch(external);
    }
    const csp = page.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("connect-src 'self'");
    expect(csp).not.toMatch(/https?:/);
    expect(page.headers.get('x-content-type-options')).toBe('nosniff');
    // The CSP is the page's, not every answer's: a query's JSON has none.
    const r = await gqlRaw(h, { query: '{ __typename }' });
    expect(r.body?.data).toEqual({ __typename: 'Query' });
    const json = await fetch(`${h.url}/graphql?query=%7B__typename%7D`, {
      headers: {
        accept: 'application/json',
        'x-graphql-yoga-csrf': '1',
        authorization: `Bearer ${await h.token('alice')}`,
      },
    });
    expect(json.status).toBe(200);
    expect(json.headers.get('content-security-policy')).toBeNull();
  });

  it('GraphiQL goes out in br or gzip as asked, the same page byte for byte, and revalidates with a 304', async () => {
    const get = (headers: Record<string, string>) =>
      rawRequest(h.url, { path: '/graphql', headers: { accept: 'text/html', ...headers } });
    const plain = await get({});
    expect(plain.status).toBe(200);
    expect(plain.headers['content-encoding']).toBeUndefined();
    expect(plain.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(Number(plain.headers['content-length'])).toBe(plain.body.length);
    expect(plain.body.toString()).toContain('YogaGraphiQL.renderYogaGraphiQL');
    expectPageHeaders(plain, 'identity');
    const etag = String(plain.headers.etag);
    for (const [accept, coding, decode] of [
      ['gzip, deflate, br', 'br', brotliDecompressSync],
      ['gzip, deflate', 'gzip', gunzipSync],
      ['br;q=0.5, gzip', 'gzip', gunzipSync],
      ['*', 'br', brotliDecompressSync],
    ] as const) {
      const r = await get({ 'accept-encoding': accept, 'x-request-id': 'graphiql-z' });
      expect(r.status, accept).toBe(200);
      expect(r.headers['content-encoding'], accept).toBe(coding);
      expect(Number(r.headers['content-length']), accept).toBe(r.body.length);
      // The 9 MB page in about a fifth of that.
      expect(r.body.length, accept).toBeLessThan(plain.body.length / 3);
      expect(decode(r.body).equals(plain.body), accept).toBe(true);
      expect(r.headers.etag, accept).toBe(etag);
      expect(r.headers['x-request-id'], accept).toBe('graphiql-z');
      expectPageHeaders(r, accept);
    }
    for (const accept of ['gzip;q=0', 'identity', 'deflate']) {
      const r = await get({ 'accept-encoding': accept });
      expect(r.headers['content-encoding'], accept).toBeUndefined();
      expect(r.body.equals(plain.body), accept).toBe(true);
    }
    // The browser's revalidation: its ETag back, whatever the coding it got the page in.
    for (const inm of [etag, etag.slice(2), `"other", ${etag}`, '*']) {
      const r = await get({ 'accept-encoding': 'gzip, br', 'if-none-match': inm });
      expect(r.status, inm).toBe(304);
      expect(r.body.length, inm).toBe(0);
      expect(r.headers['content-encoding'], inm).toBeUndefined();
      expectPageHeaders(r, `304 ${inm}`);
    }
    const stale = await get({ 'accept-encoding': 'gzip', 'if-none-match': 'W/"an-older-page"' });
    expect(stale.status).toBe(200);
    expect(gunzipSync(stale.body).equals(plain.body)).toBe(true);
  });

  it('GraphQL answers carry no ETag (only the page does); a small one is sent as it is, a large one compressed', async () => {
    const authorization = `Bearer ${await h.token('alice')}`;
    const json = await rawRequest(h.url, {
      path: '/graphql?query=%7B__typename%7D',
      headers: {
        accept: 'application/json',
        'accept-encoding': 'gzip, br',
        'x-graphql-yoga-csrf': '1',
        authorization,
      },
    });
    expect(json.status).toBe(200);
    expect(JSON.parse(json.body.toString())).toEqual({ data: { __typename: 'Query' } });
    expect(json.headers['content-encoding']).toBeUndefined(); // under a kilobyte
    // Kilobytes of JSON: compressed (GRAPHQL_COMPRESSION, http/graphql-compression.ts).
    const post = await rawRequest(h.url, {
      method: 'POST',
      path: '/graphql',
      headers: { 'content-type': 'application/json', 'accept-encoding': 'gzip, br', authorization },
      body: JSON.stringify({ query: '{ __schema { types { name description } } }' }),
    });
    expect(post.status).toBe(200);
    expect(post.headers['content-encoding']).toBe('br');
    const body = brotliDecompressSync(post.body);
    expect(body.length).toBeGreaterThan(2048);
    expect(JSON.parse(body.toString()).data.__schema.types.length).toBeGreaterThan(10);
    for (const r of [json, post]) {
      expect(r.headers.etag).toBeUndefined();
      expect(r.headers.vary ?? '').toMatch(/accept-encoding/i);
    }
  });
});

describe('introspection: production accepting any document', () => {
  let h: Harness;

  beforeAll(async () => {
    h = await startHarness({
      driver: 'local',
      redis: 'memory',
      env: { NODE_ENV: 'production', PROXY_TOKEN_SECRET: 'production-proxy-secret-0123456789' },
    });
  });
  afterAll(async () => {
    await h?.close();
  });

  it('introspection is FORBIDDEN (__schema and __type), __typename still works', async () => {
    for (const query of [
      '{ __schema { queryType { name } } }',
      '{ __type(name: "Image") { fields { name } } }',
    ]) {
      const r = await gqlRaw(h, { query });
      expect(r.codes, query).toEqual(['FORBIDDEN']);
      expect(r.body!.data ?? null).toBeNull();
    }
    const typename = await gqlRaw(h, { query: '{ __typename viewer { __typename id } }' });
    expect(typename.body?.data).toEqual({
      __typename: 'Query',
      viewer: { __typename: 'Viewer', id: 'alice' },
    });
  });

  it('no GraphiQL page (it needs introspection)', async () => {
    const page = await fetch(`${h.url}/graphql`, { headers: { accept: 'text/html' } });
    expect(page.headers.get('content-type') ?? '').not.toContain('text/html');
    expect(await page.text()).not.toMatch(/graphiql/i);
  });

  it('field suggestions are hidden', async () => {
    const r = await gqlRaw(h, { query: '{ viewer { isAdmn } imagez { totalCount } }' });
    expect(r.codes.length).toBeGreaterThan(0);
    expect(r.text).not.toMatch(/Did you mean/);
    expect(r.text).not.toContain('isAdmin');
    expect(r.text).not.toContain('"images"');
  });

  it('enum values and input types are not suggested either, in the document or in variables', async () => {
    const literal = await gqlRaw(h, {
      query: 'mutation { setImageVisibility(id: "x", visibility: PUBLI) { id } }',
    });
    expect(literal.codes.length).toBeGreaterThan(0);
    expect(literal.text).toContain('[Suggestion hidden]');
    expect(literal.text).not.toMatch(/Did you mean/);
    expect(literal.text).not.toContain('PUBLIC');

    // Coerced before anything runs, so an execution error, not a validation one.
    const variable = await gqlRaw(h, {
      query: 'mutation ($v: ImageVisibility!) { setImageVisibility(id: "x", visibility: $v) { id } }',
      variables: { v: 'PRIVAT' },
    });
    expect(variable.codes.length).toBeGreaterThan(0);
    expect(variable.text).toContain('PRIVAT');
    expect(variable.text).not.toMatch(/Did you mean/);
    expect(variable.text).not.toContain('"PRIVATE"');
  });
});

describe('GraphiQL in production, switched on with GRAPHQL_INTROSPECTION=true', () => {
  let h: Harness;

  beforeAll(async () => {
    h = await startHarness({
      driver: 'local',
      redis: 'memory',
      env: {
        NODE_ENV: 'production',
        PROXY_TOKEN_SECRET: 'production-proxy-secret-0123456789',
        GRAPHQL_INTROSPECTION: 'true',
      },
    });
  });
  afterAll(async () => {
    await h?.close();
  });

  it('serves the bundled page (one flag for introspection and GraphiQL)', async () => {
    const page = await fetch(`${h.url}/graphql`, { headers: { accept: 'text/html' } });
    expect(page.status).toBe(200);
    expect(page.headers.get('content-security-policy')).toContain("default-src 'none'");
    expect(await page.text()).toContain('YogaGraphiQL.renderYogaGraphiQL');
  });
});
