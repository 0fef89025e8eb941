import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { seedImages } from '../../src/seed.js';
import { CountingProxy, type Turn } from '../support/counting-proxy.js';
import { type Harness, startHarness } from '../support/harness.js';
import { commandStats, OwnedRedis } from '../support/redis-server.js';
import { clearOfStepTurns } from '../support/step-turns.js';

const VARIANT_PAGE = /* GraphQL */ `
  query VariantPage($first: Int) {
    images(first: $first) {
      edges {
        node {
          id
          width
          signedUrl { url cached }
          thumb: signedUrl(preset: "thumb") { url cached }
          srcset(preset: "thumb")
        }
      }
    }
  }
`;

interface VariantPageData {
  images: {
    edges: {
      node: {
        id: string;
        width: number;
        signedUrl: { url: string; cached: boolean };
        thumb: { url: string; cached: boolean };
        srcset: string;
      };
    }[];
  };
}

// The invariant of the hot path, with variants: a page asking for originals, a preset and a
// srcset of 100 images is one SQL statement and one Redis round trip when warm, at most two cold,
// with every miss signed in one resolveMany. Counted on the wire, against the real COS SDK path.
describe('variants in the page batch (cos driver, PostgreSQL, Redis on the wire)', () => {
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
    ids = await seedImages({
      storage: h.storage,
      images: h.container.imagesRepo,
      clock: { now: () => Date.now() },
      ownerId: 'alice',
      count: 100,
      width: 800,
      height: 600,
    });
  });
  afterAll(async () => {
    await h?.close();
    await wire?.close();
    await redis?.kill();
  });

  async function measuredPage() {
    const admin = redis.client();
    await wire.settled(); // a cold page's write-back leaves after its answer: not this page's
    await admin.config('RESETSTAT');
    sql.length = 0;
    wire.reset();
    const spy = vi.spyOn(h.container.urls, 'resolveMany');
    const res = await h.gql<VariantPageData>(VARIANT_PAGE, { first: 100 });
    // Distinct URLs per batch (the thumb's 1x is asked twice: as signedUrl and as the srcset's
    // first entry; the service reads and signs it once).
    const batches = spy.mock.calls.map((c) => new Set(c[0].map((r) => `${r.id}:${r.minTtl}`)).size);
    spy.mockRestore();
    await wire.settled();
    const turns: Turn[] = [...wire.turns];
    const stats = await commandStats(admin);
    admin.disconnect();
    delete stats['info'];
    delete stats['config|resetstat'];
    return { res, statements: [...sql], turns, batches, stats };
  }

  it('cold: one SQL statement, one batch of 300 URLs, at most two round trips', async () => {
    const admin = redis.client();
    await admin.flushall();
    admin.disconnect();
    const { res, statements, turns, batches, stats } = await measuredPage();
    expect(res.errors).toBeUndefined();
    const edges = res.data!.images.edges;
    expect(edges).toHaveLength(100);
    expect(statements).toHaveLength(1);
    // original + thumb (1x, the same request as the srcset's first entry) + the srcset's 2x
    expect(batches).toEqual([300]);
    expect(stats['mget']).toBe(1);
    const pageTurns = turns.filter((t) => !(Object.keys(t.commands).length === 1 && t.commands['publish']));
    expect(pageTurns.length).toBeLessThanOrEqual(2);
    expect(pageTurns[0]?.commands).toEqual({ mget: 1 });
    for (const e of edges) {
      expect(e.node.signedUrl.cached).toBe(false);
      expect(e.node.thumb.cached).toBe(false);
      // The srcset's 1x entry is the thumb's URL (the same variant, the same step).
      expect(e.node.srcset.startsWith(`${e.node.thumb.url} 320w, `)).toBe(true);
      expect(e.node.srcset.endsWith(' 600w')).toBe(true);
    }
  });

  it('warm: one SQL statement and exactly one Redis round trip (one MGET) for all 300 URLs', async () => {
    // Not across a step turn: the measured page would then rightly sign the turned images' next URLs.
    await clearOfStepTurns(h.container.config, ids);
    const warming = await h.gql<VariantPageData>(VARIANT_PAGE, { first: 100 });
    expect(warming.errors).toBeUndefined();
    const { res, statements, turns, batches, stats } = await measuredPage();
    expect(res.errors).toBeUndefined();
    expect(statements).toHaveLength(1);
    expect(batches).toEqual([300]);
    expect(turns.map((t) => t.commands)).toEqual([{ mget: 1 }]);
    expect(stats).toEqual({ mget: 1 });
    for (const e of res.data!.images.edges) {
      expect(e.node.signedUrl.cached).toBe(true);
      expect(e.node.thumb.cached).toBe(true);
      // Same step, same URL: the warm page hands out byte-identical URLs.
      expect(e.node.srcset).toBe(
        warming.data!.images.edges.find((w) => w.node.id === e.node.id)!.node.srcset,
      );
    }
  });

  it('a variant has its own URL and cache entry, apart from the original', async () => {
    // Cache entries live until the image's step turns: not across a turn.
    await clearOfStepTurns(h.container.config, ids);
    const res = await h.gql<VariantPageData>(VARIANT_PAGE, { first: 5 });
    for (const e of res.data!.images.edges) expect(e.node.thumb.url).not.toBe(e.node.signedUrl.url);
    await wire.settled();
    const admin = redis.client();
    const id = res.data!.images.edges[0]!.node.id;
    const keys = await admin.keys(`*${id}*`);
    admin.disconnect();
    expect(keys.some((k) => k.includes(`${id}~320x320-cover-webp-75`))).toBe(true);
    expect(keys.some((k) => k.includes(`${id}~600x600-cover-webp-75`))).toBe(true);
  });
});
