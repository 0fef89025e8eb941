import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CountingServer, countingServer } from '../support/counting-server.js';
import { testRedisUrl } from '../support/env.js';
import { type Harness, startHarness } from '../support/harness.js';
import { rawRequest } from '../support/hostile.js';
import { gqlRaw } from '../support/raw-graphql.js';
import { seed } from '../support/seed.js';

describe('SSRF: the proxy fetches only the bucket’s own objects', () => {
  let h: Harness;
  let attacker: CountingServer;
  let ids: string[];
  let link: { id: string; redirect: string; stream: string };

  beforeAll(async () => {
    attacker = await countingServer();
    h = await startHarness({ driver: 'cos', redis: testRedisUrl() });
    ids = await seed(h, 'alice', 3);
    const r = await gqlRaw(h, {
      query: 'query($id: ID!) { image(id: $id) { id redirect: proxyUrl stream: proxyUrl(mode: STREAM) } }',
      variables: { id: ids[0] },
    });
    link = r.body!.data!.image as typeof link;
  });
  afterAll(async () => {
    await h?.close();
    await attacker?.close();
  });

  it('nothing a client sends makes the proxy fetch anything but the bucket’s own objects', async () => {
    const a = attacker.url;
    const host = attacker.hostPort;
    const stream = new URL(link.stream);
    const redirect = new URL(link.redirect);
    const t = stream.searchParams.get('t')!;
    const paths = [
      `/proxy/${encodeURIComponent(`${a}/x`)}?t=${t}`,
      `/proxy/${encodeURIComponent(`//${host}/x`)}?t=${t}&mode=stream`,
      `/proxy/@${host}/x?t=${t}`,
      `/proxy/http:%2F%2F${host}%2Fx?t=${t}&mode=stream`,
      `/proxy/${ids[0]}?t=${encodeURIComponent(`${a}/token`)}&mode=stream`,
      `/proxy/${ids[0]}?t=${t}&mode=stream&url=${encodeURIComponent(a)}&key=..%2F..%2Fother&bucket=evil&host=${host}&domain=${host}`,
      `/proxy/${ids[0]}?t=${t}&url=${encodeURIComponent(a)}`,
      `/proxy/${ids[0]}/..%2F..%2F${encodeURIComponent(a)}?t=${t}&mode=stream`,
    ];
    const headers: Record<string, string>[] = [
      { host },
      { 'x-forwarded-host': host, 'x-forwarded-proto': 'http', forwarded: `host=${host};proto=http` },
      { 'x-original-url': `${a}/x`, 'x-rewrite-url': `${a}/x`, referer: `${a}/` },
      { range: `bytes=0-1, ${a}` },
      { 'x-cos-copy-source': `${host}/x`, 'x-cos-security-token': 'evil' },
    ];
    const statuses: number[] = [];
    const locations: string[] = [];
    for (const path of paths) {
      for (const hd of [{}, ...headers]) {
        const r = await rawRequest(h.url, { path, headers: hd });
        statuses.push(r.status);
        if (r.headers.location) locations.push(String(r.headers.location));
      }
    }
    // The genuine link, with every hostile header: served from the bucket, or redirected to it.
    for (const hd of headers) {
      for (const u of [stream, redirect]) {
        const r = await rawRequest(h.url, { path: `${u.pathname}${u.search}`, headers: hd });
        statuses.push(r.status);
        if (r.headers.location) locations.push(String(r.headers.location));
      }
    }
    // GraphQL: URLs and paths where ids go.
    for (const id of [`${a}/x`, `//${host}`, '../../etc/passwd', `${ids[0]}@${host}`]) {
      const r = await gqlRaw(h, {
        query: 'query($id: ID!) { image(id: $id) { signedUrl { url } } }',
        variables: { id },
      });
      expect(r.codes).toEqual(['BAD_USER_INPUT']);
      const m = await gqlRaw(h, {
        query: 'mutation($ids: [ID!]!) { refreshSignedUrls(ids: $ids) { url } preloadSignedUrls(ids: $ids) }',
        variables: { ids: [id] },
      });
      expect(m.codes).toContain('BAD_USER_INPUT');
    }
    expect(statuses.every((s) => s < 500)).toBe(true);
    expect(attacker.hits).toEqual([]);
    for (const l of locations) expect(l.startsWith(`${h.fixture!.url}/`), l).toBe(true);
    // And the bucket itself was only ever asked for keys that are in the database.
    const known = new Set(
      (await h.db.kysely.selectFrom('images').select('object_key').execute()).map((r) => r.object_key),
    );
    for (const entry of h.fixture!.requests.log) expect(known.has(entry.key), entry.key).toBe(true);
  });
});
