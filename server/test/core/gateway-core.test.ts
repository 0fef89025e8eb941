import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { FakeClock } from '../../src/clock.js';
import { CountingProxy, isWriteBack, type Turn } from '../support/counting-proxy.js';
import { type Harness, startHarness } from '../support/harness.js';
import { commandStats, OwnedRedis } from '../support/redis-server.js';
import { PAGE_QUERY, type PageData, seed } from '../support/seed.js';
import { clearOfStepTurns } from '../support/step-turns.js';

/** Turns as one short line for failure messages: `mget | evalsha×2+publish`. */
const show = (turns: readonly Turn[]) =>
  turns
    .map((t) =>
      Object.entries(t.commands)
        .map(([c, n]) => (n > 1 ? `${c}×${n}` : c))
        .join('+'),
    )
    .join(' | ')
    .slice(0, 400);

// The hot path against the real things: PostgreSQL, a Redis this file owns (so INFO
// commandstats counts only our commands), and the COS SDK talking to the fixture server. The
// gateway reaches that Redis through a counting TCP proxy: round trips are counted on the wire.
describe('gateway core: PostgreSQL + Redis + cos driver', () => {
  let redis: OwnedRedis;
  let wire: CountingProxy;
  let h: Harness;
  const sql: string[] = [];
  let ids: string[];

  beforeAll(async () => {
    redis = await OwnedRedis.start();
    wire = await CountingProxy.start('redis', '127.0.0.1', redis.port);
    h = await startHarness({
      driver: 'cos',
      redis: `redis://127.0.0.1:${wire.port}`,
      onQuery: (s) => sql.push(s),
    });
    ids = await seed(h, 'alice', 100);
    await seed(h, 'bob', 3);
  });
  afterAll(async () => {
    await h?.close();
    await wire?.close();
    await redis?.kill();
  });

  /** One page of 100, with what it cost: SQL, loader batches, Redis turns on the wire, Redis calls. */
  async function measuredPage() {
    const admin = redis.client();
    await wire.settled(); // the write-back of a page before this one leaves after its answer
    await admin.config('RESETSTAT');
    sql.length = 0;
    wire.reset();
    const spy = vi.spyOn(h.container.urls, 'resolveMany');
    const res = await h.gql<PageData>(PAGE_QUERY, { first: 100 });
    const calls = spy.mock.calls.length;
    spy.mockRestore();
    await wire.settled(); // a cold page's write-back leaves after its answer
    const turns: Turn[] = [...wire.turns];
    const stats = await commandStats(admin);
    admin.disconnect();
    // INFO itself and CONFIG RESETSTAT are ours, not the gateway's.
    delete stats['info'];
    delete stats['config|resetstat'];
    return { res, statements: [...sql], turns, batchCalls: calls, stats };
  }

  /** Empties this file's Redis: the next page finds nothing cached. */
  async function emptyCache() {
    const admin = redis.client();
    await admin.flushall();
    admin.disconnect();
  }

  it('cold page of 100: one SQL statement, at most 2 round trips, one loader batch', async () => {
    // A URL is cached until its step turns (ttl = refreshAt - now): a group of ~6 of the 100
    // images turning mid-test would expire before the count below. Not across a step turn.
    await clearOfStepTurns(h.container.config, ids, 10_000);
    await emptyCache();
    const { res, statements, turns, batchCalls, stats } = await measuredPage();
    expect(res.errors).toBeUndefined();
    expect(res.data!.images.edges).toHaveLength(100);
    expect(statements).toHaveLength(1);
    expect(batchCalls).toBe(1);
    expect(stats['mget']).toBe(1);
    expect(res.data!.images.edges.every((e) => e.node.signedUrl.cached === false)).toBe(true);
    // newest first, and exactly alice's images
    expect(res.data!.images.edges.map((e) => e.node.id)).toEqual([...ids].reverse());
    // On the wire: the read (one MGET alone), then the write-back. The refresh event's PUBLISH
    // is not awaited by the page: it rides in the write-back's flight, ahead of the script;
    // nothing else is sent.
    // The write-back is one script call (urls/redis-store.ts): the URLs, the schedule and the
    // new-URL set (`signetWriteAndScheduleUrls`); EVAL the first time, EVALSHA after.
    const pageTurns = turns.filter((t) => t.commands['mget'] || isWriteBack(t));
    expect(pageTurns.length, show(turns)).toBeLessThanOrEqual(2);
    expect(turns[0]?.commands, show(turns)).toEqual({ mget: 1 });
    const writeBack = turns.filter(isWriteBack);
    expect(writeBack, show(turns)).toHaveLength(1);
    expect((writeBack[0]!.commands['evalsha'] ?? 0) + (writeBack[0]!.commands['eval'] ?? 0)).toBe(1);
    // The one script call stored all 100 URLs.
    const admin = redis.client();
    expect(await admin.keys('*url:*')).toHaveLength(100);
    admin.disconnect();
    const others = turns.filter((t) => !pageTurns.includes(t));
    for (const t of others) expect(Object.keys(t.commands), show(turns)).toEqual(['publish']);
  });

  it('warm page of 100: one SQL statement and exactly one Redis round trip', async () => {
    // Warm the cache first (whatever ran before): this page signs what is missing. Not across a
    // step turn: the measured page would then rightly sign the turned images' next URLs.
    await clearOfStepTurns(h.container.config, ids);
    const warming = await h.gql<PageData>(PAGE_QUERY, { first: 100 });
    expect(warming.errors).toBeUndefined();
    const { res, statements, turns, batchCalls, stats } = await measuredPage();
    expect(res.errors).toBeUndefined();
    expect(res.data!.images.edges).toHaveLength(100);
    expect(statements).toHaveLength(1);
    // On the wire: one turn, and all it carried was one MGET.
    expect(turns.map((t) => t.commands)).toEqual([{ mget: 1 }]);
    expect(batchCalls).toBe(1);
    // Server side: the whole page was a single MGET and nothing else.
    expect(stats).toEqual({ mget: 1 });
    expect(res.data!.images.edges.every((e) => e.node.signedUrl.cached)).toBe(true);
  });

  it('every returned URL fetches the right bytes from the fixture', async () => {
    const res = await h.gql<PageData>(PAGE_QUERY, { first: 100 });
    const edges = res.data!.images.edges;
    for (const e of edges) {
      const r = await fetch(e.node.signedUrl.url);
      expect(r.status).toBe(200);
      const body = Buffer.from(await r.arrayBuffer());
      expect(body.equals(h.fixture!.objects.get(e.node.key)!.body)).toBe(true);
      expect(body.length).toBe(e.node.byteSize);
    }
  });

  it('a tampered URL is refused by the origin', async () => {
    const res = await h.gql<PageData>(PAGE_QUERY, { first: 1 });
    const url = res.data!.images.edges[0]!.node.signedUrl.url.replace(
      /q-signature=([0-9a-f])/,
      (_m, c) => `q-signature=${c === 'a' ? 'b' : 'a'}`,
    );
    expect((await fetch(url)).status).toBe(403);
  });

  it('pages through with cursors, without gaps or repeats', async () => {
    const seen: string[] = [];
    let after: string | null = null;
    for (let i = 0; i < 20; i++) {
      const res: Awaited<ReturnType<typeof h.gql<PageData>>> = await h.gql<PageData>(PAGE_QUERY, {
        first: 7,
        after,
      });
      seen.push(...res.data!.images.edges.map((e) => e.node.id));
      if (!res.data!.images.pageInfo.hasNextPage) break;
      after = res.data!.images.pageInfo.endCursor;
    }
    expect(seen).toEqual([...ids].reverse());
  });

  it('gives the total on every page, the one past the last included, in the page statement', async () => {
    const TOTAL_QUERY =
      'query T($first: Int!, $after: String) { images(first: $first, after: $after) { totalCount edges { node { id } } pageInfo { hasNextPage endCursor } } }';
    type TotalData = {
      images: {
        totalCount: number;
        edges: { node: { id: string } }[];
        pageInfo: { endCursor: string | null };
      };
    };
    const first = await h.gql<TotalData>(TOTAL_QUERY, { first: 60 });
    expect(first.data!.images.totalCount).toBe(100);
    const last = await h.gql<TotalData>(TOTAL_QUERY, {
      first: 40,
      after: first.data!.images.pageInfo.endCursor,
    });
    expect(last.data!.images.edges).toHaveLength(40);
    expect(last.data!.images.totalCount).toBe(100);
    const past = await h.gql<TotalData>(TOTAL_QUERY, {
      first: 10,
      after: last.data!.images.pageInfo.endCursor,
    });
    expect(past.data!.images.edges).toHaveLength(0);
    expect(past.data!.images.totalCount).toBe(100);
  });

  it('keeps serving working URLs while Redis is dead, then uses the cache again', async () => {
    const fallbacks = async () => (await h.container.metrics.redisFallbacks.get()).values[0]?.value ?? 0;
    const before = await fallbacks();
    await redis.kill();
    for (let i = 0; i < 3; i++) {
      const started = Date.now();
      const res = await h.gql<PageData>(PAGE_QUERY, { first: 20 });
      expect(res.errors).toBeUndefined();
      expect(res.data!.images.edges).toHaveLength(20);
      expect(Date.now() - started).toBeLessThan(5000); // generous: a hang would be the failure
      const r = await fetch(res.data!.images.edges[i]!.node.signedUrl.url);
      expect(r.status).toBe(200);
    }
    expect(await fallbacks()).toBeGreaterThan(before);

    // The restarted Redis is empty: the page that finds it warms it, and `second` reads it back.
    // Not across a step turn (a cached URL lives until its step ends).
    await clearOfStepTurns(h.container.config, ids, 15_000);
    await redis.start();
    // The client reconnects by itself; once it has, pages are served through the cache again.
    await vi.waitFor(
      async () => {
        wire.reset();
        const res = await h.gql<PageData>(PAGE_QUERY, { first: 20 });
        expect(res.errors).toBeUndefined();
        // The page read the cache: its MGET crossed the wire to the restarted Redis.
        expect(wire.turns.filter((t) => t.commands['mget'])).toHaveLength(1);
      },
      { timeout: 10_000, interval: 200 },
    );
    const second = await h.gql<PageData>(PAGE_QUERY, { first: 20 });
    expect(second.data!.images.edges.every((e) => e.node.signedUrl.cached)).toBe(true);
  });
});

describe('gateway core with a fake clock', () => {
  // Starts at real time: the SDK signs its own requests (the seeding PUTs) with the real clock.
  const clock = new FakeClock(Date.now());
  let h: Harness;
  let redis: OwnedRedis;

  beforeAll(async () => {
    redis = await OwnedRedis.start();
    h = await startHarness({ driver: 'cos', redis: redis.url, clock, env: { URL_TTL_SECONDS: '3600' } });
    await seed(h, 'alice', 10);
  });
  afterAll(async () => {
    await h?.close();
    await redis?.kill();
  });

  it('never returns a URL with less than minTtl seconds left', async () => {
    // Redis keeps real time for TTLs, so the cache entry can outlive the fake clock's view of the
    // URL: exactly the case where the service must notice the URL is too short and re-sign.
    let signedAgain = 0;
    for (let step = 0; step < 60; step++) {
      clock.advance(97_000); // ~1.6 min a step, 1.6 h in all: crosses more than one full TTL
      for (const minTtl of [undefined, 0, 600, 3000]) {
        const res = await h.gql<PageData>(PAGE_QUERY, {
          first: 10,
          ...(minTtl !== undefined ? { minTtl } : {}),
        });
        expect(res.errors).toBeUndefined();
        for (const e of res.data!.images.edges) {
          const left = (Date.parse(e.node.signedUrl.expiresAt) - clock.now()) / 1000;
          expect(left).toBeGreaterThanOrEqual(minTtl ?? 300);
          if (!e.node.signedUrl.cached) signedAgain++;
        }
      }
    }
    expect(signedAgain).toBeGreaterThan(0);
  });

  it('an expired URL gets 403 from the origin', async () => {
    const res = await h.gql<PageData>(PAGE_QUERY, { first: 1 });
    const url = res.data!.images.edges[0]!.node.signedUrl.url;
    expect((await fetch(url)).status).toBe(200);
    clock.advance(3700_000);
    expect((await fetch(url)).status).toBe(403);
  });
});
