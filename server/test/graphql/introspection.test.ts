import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Harness, startHarness } from '../support/harness.js';
import { gqlRaw } from '../support/raw-graphql.js';

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
      headers: { accept: 'application/json', 'x-graphql-yoga-csrf': '1' },
    });
    expect(json.status).toBe(200);
    expect(json.headers.get('content-security-policy')).toBeNull();
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
