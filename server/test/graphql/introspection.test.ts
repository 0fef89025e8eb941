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
