import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { FakeClock } from '../../src/clock.js';
import { type Harness, startHarness } from '../support/harness.js';
import { PAGE_QUERY, type PageData, seed } from '../support/seed.js';

const BY_IDS = /* GraphQL */ `
  query ByIds($ids: [ID!]!) {
    imagesByIds(ids: $ids) { id key signedUrl { url cached } }
  }
`;
const ONE = /* GraphQL */ `
  query One($id: ID!) {
    image(id: $id) { id key contentType byteSize width height signedUrl { url expiresAt cached } }
  }
`;

type Node = { id: string; key: string; signedUrl: { url: string; cached: boolean } };

/** The value of one series in the gateway's own /metrics answer (0 when not exposed yet). */
async function metric(h: Harness, series: string): Promise<number> {
  const text = await (await fetch(`${h.url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? 0 : Number(line.slice(series.length + 1));
}

// The embedded defaults of `npm start`: PGlite, the in-process URL cache and the local driver,
// whose URLs the gateway itself serves (and checks) at /local-bucket/*.
describe('gateway core: embedded defaults (PGlite + in-process cache + local driver)', () => {
  // Starts at real time; only the expiry test moves it, and it runs last.
  const clock = new FakeClock(Date.now());
  const sql: string[] = [];
  let h: Harness;
  let ids: string[];
  let bobIds: string[];

  beforeAll(async () => {
    h = await startHarness({
      driver: 'local',
      redis: 'memory',
      database: 'pglite',
      clock,
      env: { URL_TTL_SECONDS: '3600' },
      onQuery: (s) => sql.push(s),
    });
    ids = await seed(h, 'alice', 30);
    bobIds = await seed(h, 'bob', 2);
  });
  afterAll(async () => {
    await h?.close();
  });

  const bucketFile = (key: string) => readFile(path.join(h.config.dataDir, 'bucket', ...key.split('/')));

  it('runs on the embedded parts', () => {
    expect(h.db.kind).toBe('pglite');
    expect(h.store.kind).toBe('memory');
    expect(h.storage.driver).toBe('local');
    expect(h.redis).toBeUndefined();
  });

  it('cold page: one SQL statement, one loader batch, every URL signed and pointing at the gateway', async () => {
    // Images nobody has looked at yet, whatever ran before: a cold page for sure.
    const carols = await seed(h, 'carol', 30);
    const signedBefore = await metric(h, 'signet_signatures_total{reason="miss"}');
    sql.length = 0;
    const spy = vi.spyOn(h.container.urls, 'resolveMany');
    const res = await h.gql<PageData>(PAGE_QUERY, { first: 30 }, { token: await h.token('carol') });
    const batches = spy.mock.calls.length;
    spy.mockRestore();
    const statements = [...sql]; // before /metrics, whose probes ping the database
    expect(res.errors).toBeUndefined();
    // Each image signed once, as a miss.
    expect((await metric(h, 'signet_signatures_total{reason="miss"}')) - signedBefore).toBe(30);
    const edges = res.data!.images.edges;
    expect(edges.map((e) => e.node.id)).toEqual([...carols].reverse());
    expect(statements).toHaveLength(1);
    expect(batches).toBe(1);
    for (const e of edges) {
      expect(e.node.signedUrl.cached).toBe(false);
      expect(e.node.signedUrl.url.startsWith(`${h.url}/local-bucket/`)).toBe(true);
      const left = (Date.parse(e.node.signedUrl.expiresAt) - clock.now()) / 1000;
      expect(left).toBeGreaterThanOrEqual(300);
    }
  });

  // No wire to count on here (the cache is a map in this process): what a warm page must not do
  // is visible in the gateway's own metrics instead: no signing, no cache miss, 30 hits.
  it('warm page is served from the in-process cache: no signing, no miss', async () => {
    const warming = await h.gql<PageData>(PAGE_QUERY, { first: 30 });
    expect(warming.errors).toBeUndefined();
    const signed = await metric(h, 'signet_signatures_total{reason="miss"}');
    const refreshed = await metric(h, 'signet_signatures_total{reason="refresh"}');
    const misses = await metric(h, 'signet_url_cache_misses_total');
    const hits = await metric(h, 'signet_url_cache_hits_total');
    const res = await h.gql<PageData>(PAGE_QUERY, { first: 30 });
    expect(res.errors).toBeUndefined();
    expect(res.data!.images.edges).toHaveLength(30);
    expect(res.data!.images.edges.every((e) => e.node.signedUrl.cached)).toBe(true);
    expect(await metric(h, 'signet_signatures_total{reason="miss"}')).toBe(signed);
    expect(await metric(h, 'signet_signatures_total{reason="refresh"}')).toBe(refreshed);
    expect(await metric(h, 'signet_url_cache_misses_total')).toBe(misses);
    expect((await metric(h, 'signet_url_cache_hits_total')) - hits).toBe(30);
    // The same URLs as the page before: nothing was re-signed behind the metrics' back.
    expect(res.data!.images.edges.map((e) => e.node.signedUrl.url)).toEqual(
      warming.data!.images.edges.map((e) => e.node.signedUrl.url),
    );
  });

  it("every URL fetches the object's bytes from /local-bucket/*", async () => {
    const res = await h.gql<PageData>(PAGE_QUERY, { first: 30 });
    for (const e of res.data!.images.edges) {
      const r = await fetch(e.node.signedUrl.url);
      expect(r.status).toBe(200);
      expect(r.headers.get('content-type')).toBe('image/png');
      const body = Buffer.from(await r.arrayBuffer());
      expect(body.length).toBe(e.node.byteSize);
      expect(body.equals(await bucketFile(e.node.key))).toBe(true);
    }
  });

  it('a tampered URL is 403: signature, expiry or key changed', async () => {
    const res = await h.gql<PageData>(PAGE_QUERY, { first: 2 });
    const [a, b] = res.data!.images.edges.map((e) => e.node);
    const u = new URL(a!.signedUrl.url);
    const sig = u.searchParams.get('sig')!;

    const badSig = new URL(u);
    badSig.searchParams.set('sig', `${sig[0] === 'A' ? 'B' : 'A'}${sig.slice(1)}`);
    const longer = new URL(u);
    longer.searchParams.set('e', String(Number(u.searchParams.get('e')) + 86_400));
    // a's valid signature used for b's object
    const otherKey = new URL(u);
    otherKey.pathname = new URL(b!.signedUrl.url).pathname;
    const noSig = new URL(u);
    noSig.searchParams.delete('sig');

    for (const t of [badSig, longer, otherKey, noSig]) {
      const r = await fetch(t);
      expect(r.status, t.toString()).toBe(403);
      expect(((await r.json()) as { error: { code: string } }).error.code).toBe('FORBIDDEN');
    }
    expect((await fetch(u)).status).toBe(200);
  });

  it('pages through with cursors, without gaps or repeats', async () => {
    const seen: string[] = [];
    let after: string | null = null;
    for (let i = 0; i < 10; i++) {
      const res: Awaited<ReturnType<typeof h.gql<PageData>>> = await h.gql<PageData>(PAGE_QUERY, {
        first: 7,
        after,
      });
      expect(res.errors).toBeUndefined();
      seen.push(...res.data!.images.edges.map((e) => e.node.id));
      if (!res.data!.images.pageInfo.hasNextPage) break;
      after = res.data!.images.pageInfo.endCursor;
    }
    expect(seen).toEqual([...ids].reverse());
  });

  it('image(id) and imagesByIds: in order, null where not visible, URLs that work', async () => {
    const one = await h.gql<{ image: Node & { contentType: string; width: number } }>(ONE, { id: ids[3] });
    expect(one.errors).toBeUndefined();
    expect(one.data!.image).toMatchObject({ id: ids[3], contentType: 'image/png', width: 24, height: 16 });
    expect((await fetch(one.data!.image.signedUrl.url)).status).toBe(200);

    const wanted = [ids[5]!, bobIds[0]!, ids[0]!, '00000000-0000-4000-8000-000000000000', ids[5]!];
    sql.length = 0;
    const res = await h.gql<{ imagesByIds: (Node | null)[] }>(BY_IDS, { ids: wanted });
    expect(res.errors).toBeUndefined();
    expect(res.data!.imagesByIds.map((n) => n?.id ?? null)).toEqual([ids[5], null, ids[0], null, ids[5]]);
    expect(sql).toHaveLength(1); // one statement for every id of the request
    for (const n of res.data!.imagesByIds) {
      if (n) expect((await fetch(n.signedUrl.url)).status).toBe(200);
    }

    const bobs = await h.gql<{ image: Node | null }>(ONE, { id: bobIds[0] });
    expect(bobs.errors).toBeUndefined();
    expect(bobs.data!.image).toBeNull();
  });

  // Moves the clock: keep it last.
  it('an expired URL is 403 at /local-bucket/*, and the next query signs a fresh one', async () => {
    const res = await h.gql<PageData>(PAGE_QUERY, { first: 1 });
    const url = res.data!.images.edges[0]!.node.signedUrl.url;
    expect((await fetch(url)).status).toBe(200);
    clock.advance(3601_000);
    const expired = await fetch(url);
    expect(expired.status).toBe(403);
    expect(((await expired.json()) as { error: { message: string } }).error.message).toMatch(/expired/i);

    const again = await h.gql<PageData>(PAGE_QUERY, { first: 1 });
    const fresh = again.data!.images.edges[0]!.node.signedUrl;
    expect(fresh.cached).toBe(false);
    expect(fresh.url).not.toBe(url);
    expect((await fetch(fresh.url)).status).toBe(200);
  });
});
