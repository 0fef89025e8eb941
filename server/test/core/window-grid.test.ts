import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeClock } from '../../src/clock.js';
import { WindowGrid } from '../../src/urls/window-grid.js';
import { testRedisUrl } from '../support/env.js';
import { type Harness, startHarness } from '../support/harness.js';
import { OwnedRedis } from '../support/redis-server.js';
import { PAGE_QUERY, type PageData, seed } from '../support/seed.js';

const TTL = 3600;
const AHEAD = 900;
const STEP = TTL - AHEAD;

/** Every image's URL on one page of 100, by id. */
async function urlsOf(h: Harness): Promise<Map<string, { url: string; cached: boolean }>> {
  const res = await h.gql<PageData>(PAGE_QUERY, { first: 100 });
  expect(res.errors).toBeUndefined();
  return new Map(res.data!.images.edges.map((e) => [e.node.id, e.node.signedUrl]));
}

// Two gateways of one deployment (the same Redis, PostgreSQL, bucket and credentials) on one
// fake clock: the URL of an image is a function of the image and the step, nothing else.
describe('one URL per image per step, across nodes, with the cache up or down', () => {
  // Starts at the real now: the SDK signs its uploads with the real clock, the fixture checks them.
  const clock = new FakeClock(Date.now());
  const grid = new WindowGrid({ urlTtlSeconds: TTL, refreshAheadSeconds: AHEAD });
  let redis: OwnedRedis;
  let a: Harness;
  let b: Harness;
  let ids: string[];
  const env = { URL_TTL_SECONDS: String(TTL), REFRESH_AHEAD_SECONDS: String(AHEAD) };

  beforeAll(async () => {
    redis = await OwnedRedis.start();
    a = await startHarness({ driver: 'cos', redis: redis.url, clock, env });
    b = await startHarness({ driver: 'cos', redis: redis.url, clock, env, nodeOf: a });
    ids = await seed(a, 'alice', 100);
  });
  afterAll(async () => {
    await b?.close();
    await a?.close();
    await redis?.kill();
  });

  /** Moves the clock to a moment from which no image's step ends for `quietMs`. */
  function quietMoment(quietMs: number): void {
    for (;;) {
      const now = clock.now();
      const nextBoundary = Math.min(...ids.map((id) => grid.refreshAtOf(grid.windowAt(id, now))));
      if (nextBoundary - now > quietMs) return;
      clock.set(nextBoundary + 1000);
    }
  }

  it('5 requests on each node within a step: byte-identical URLs, whoever signed or cached them', async () => {
    quietMoment(60_000);
    const seen = new Map<string, Set<string>>();
    for (let round = 0; round < 5; round++) {
      for (const node of [a, b]) {
        for (const [id, u] of await urlsOf(node)) {
          const set = seen.get(id) ?? new Set();
          set.add(u.url);
          seen.set(id, set);
        }
        clock.advance(1_000);
      }
    }
    expect(seen.size).toBe(100);
    for (const [id, set] of seen) expect(set.size, id).toBe(1);
  });

  it('after each image’s step boundary its URL changes exactly once', async () => {
    quietMoment(60_000);
    const before = await urlsOf(a);
    const changes = new Map<string, number>(ids.map((id) => [id, 0]));
    const last = new Map([...before].map(([id, u]) => [id, u.url]));
    // One whole step in 30-second strides, both nodes asking: every image crosses one boundary.
    const end = clock.now() + STEP * 1000;
    while (clock.now() < end) {
      clock.advance(30_000);
      for (const node of [a, b]) {
        for (const [id, u] of await urlsOf(node)) {
          if (u.url !== last.get(id)) {
            changes.set(id, changes.get(id)! + 1);
            last.set(id, u.url);
          }
        }
      }
    }
    for (const [id, n] of changes) expect(n, id).toBe(1);
  });

  it('Redis SIGKILLed: both nodes sign directly, and the URLs are the ones the cache held', async () => {
    quietMoment(60_000);
    const cached = await urlsOf(a);
    expect([...cached.values()].every((u) => u.cached)).toBe(true);
    await redis.kill();
    for (const node of [a, b]) {
      const direct = await urlsOf(node);
      for (const [id, u] of direct) {
        expect(u.cached).toBe(false);
        expect(u.url).toBe(cached.get(id)!.url);
      }
    }
    await redis.start();
  });
});

// A day on three nodes sharing one Redis: pages served by every node in turn, sweeps on all.
describe('a simulated day on three nodes', () => {
  // Starts at the real now: the SDK signs its uploads with the real clock, the fixture checks them.
  const clock = new FakeClock(Date.now());
  const grid = new WindowGrid({ urlTtlSeconds: TTL, refreshAheadSeconds: AHEAD });
  let nodes: Harness[] = [];
  let ids: string[];

  beforeAll(async () => {
    const first = await startHarness({
      driver: 'cos',
      redis: testRedisUrl(),
      clock,
    });
    nodes = [first];
    for (let i = 0; i < 2; i++) {
      nodes.push(await startHarness({ driver: 'cos', redis: first.config.redisUrl!, clock, nodeOf: first }));
    }
    ids = await seed(first, 'alice', 20);
  });
  afterAll(async () => {
    for (const n of [...nodes].reverse()) await n.close();
  });

  it('hands out 24 h / S (±1) URLs per image, each with minTtl left, each signed once across the nodes', async () => {
    /** (image, step start) -> signings, from each node's telemetry. */
    const signings = new Map<string, number>();
    for (const node of nodes) {
      const signed = node.container.telemetry.signed.bind(node.container.telemetry);
      node.container.telemetry.signed = (reason, signedIds) => {
        for (const id of signedIds) {
          const k = `${id}@${grid.stepStart(id, Math.floor(clock.now() / 1000))}`;
          signings.set(k, (signings.get(k) ?? 0) + 1);
        }
        signed(reason, signedIds);
      };
    }
    const handed = new Map<string, Set<string>>();
    const minTtl = nodes[0]!.config.defaultMinTtlSeconds;
    const day = 24 * 3600_000;
    const start = clock.now();
    for (let i = 0; clock.now() - start < day; i++) {
      clock.advance(5 * 60_000);
      const node = nodes[i % nodes.length]!;
      const res = await node.gql<PageData>(PAGE_QUERY, { first: 20 });
      expect(res.errors).toBeUndefined();
      for (const e of res.data!.images.edges) {
        expect(Date.parse(e.node.signedUrl.expiresAt) - clock.now()).toBeGreaterThanOrEqual(minTtl * 1000);
        const set = handed.get(e.node.id) ?? new Set();
        set.add(e.node.signedUrl.url);
        handed.set(e.node.id, set);
      }
      for (const n of nodes) {
        await n.container.access.flush();
        await n.container.refresher.sweep();
      }
    }
    const perDay = day / (STEP * 1000);
    for (const id of ids) {
      const n = handed.get(id)!.size;
      expect(n).toBeGreaterThanOrEqual(Math.floor(perDay) - 1);
      expect(n).toBeLessThanOrEqual(Math.ceil(perDay) + 1);
    }
    for (const [k, n] of signings) expect(n, k).toBe(1);
    expect(signings.size).toBeGreaterThanOrEqual(ids.length * Math.floor(perDay));
  });
});
