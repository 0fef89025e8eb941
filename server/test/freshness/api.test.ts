import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testRedisUrl } from '../support/env.js';
import { type Harness, startHarness } from '../support/harness.js';
import { seed } from '../support/seed.js';
import { subscribeSse } from '../support/sse.js';
import { clearOfStepTurns } from '../support/step-turns.js';

const SUB = /* GraphQL */ `
  subscription ($ids: [ID!]!) { signedUrlRefreshed(ids: $ids) { imageId signedUrl { url expiresAt cached } } }
`;
const REFRESH = /* GraphQL */ `
  mutation ($ids: [ID!]!) { refreshSignedUrls(ids: $ids) { url expiresAt cached } }
`;
const STATS = /* GraphQL */ `
  query ($days: Int) {
    urlStats(days: $days) {
      requests cacheHits cacheMisses hitRate refreshes errors avgResolveMs uniqueImages
      refreshBacklog refreshLagSeconds
      workers { id role alive lastHeartbeatAt refreshed }
      days { date requests cacheHits cacheMisses hitRate refreshes uniqueImages }
    }
  }
`;

interface SubEvent {
  data?: { signedUrlRefreshed: { imageId: string; signedUrl: { url: string; expiresAt: string } } };
}

describe('freshness API: mutations, subscription, stats (Redis)', () => {
  let h: Harness;
  let alice: string[];
  let bobIds: string[];

  beforeAll(async () => {
    h = await startHarness({
      driver: 'cos',
      redis: testRedisUrl(),
      start: true,
      env: { REFRESH_RATE_LIMIT_PER_MINUTE: '5' },
    });
    alice = await seed(h, 'alice', 5);
    bobIds = await seed(h, 'bob', 2);
  });
  afterAll(async () => {
    await h?.close();
  });

  it('refreshSignedUrls signs what is not cached, keeps order, nulls what the viewer cannot see, and pushes events', async () => {
    const sse = subscribeSse<SubEvent>(h.url, SUB, { ids: alice }, await h.token('alice'));
    await sse.opened;
    const started = Date.now();
    const res = await h.gql<{ refreshSignedUrls: ({ url: string; cached: boolean } | null)[] }>(REFRESH, {
      ids: [alice[0], bobIds[0], alice[1]],
    });
    expect(res.errors).toBeUndefined();
    const [a0, b0, a1] = res.data!.refreshSignedUrls;
    expect(a0?.cached).toBe(false);
    expect(b0).toBeNull();
    expect(a1?.url).toContain(encodeURIComponent(alice[1]!).slice(0, 8));
    expect((await fetch(a0!.url)).status).toBe(200);
    await sse.waitFor((ev) => ev.filter((e) => e.data.data).length >= 2);
    const delivered = sse.events.filter((e) => e.data.data).map((e) => e.data.data!.signedUrlRefreshed);
    expect(new Set(delivered.map((d) => d.imageId))).toEqual(new Set([alice[0], alice[1]]));
    expect(delivered.find((d) => d.imageId === alice[0])!.signedUrl.url).toBe(a0!.url);
    console.log(`refresh -> SSE delivery (same node, Redis pub/sub): ${sse.events.at(-1)!.at - started} ms`);
    sse.close();
  });

  it('a subscriber to ids it does not own receives nothing for them', async () => {
    const sse = subscribeSse<SubEvent>(h.url, SUB, { ids: [...bobIds, alice[2]] }, await h.token('alice'));
    await sse.opened;
    // Bob refreshes his own images; alice's stream must stay silent for them.
    await h.gql(REFRESH, { ids: bobIds }, { token: await h.token('bob') });
    await h.gql(REFRESH, { ids: [alice[2]] });
    await sse.waitFor((ev) => ev.some((e) => e.data.data?.signedUrlRefreshed.imageId === alice[2]));
    const got = sse.events.map((e) => e.data.data?.signedUrlRefreshed.imageId);
    expect(got.filter((id) => id && bobIds.includes(id))).toEqual([]);
    sse.close();
  });

  it("refreshSignedUrls hands back a URL that is already this step's and pushes no event for it", async () => {
    const bob = await h.token('bob');
    const [marker] = await seed(h, 'bob', 1);
    await clearOfStepTurns(h.container.config, [bobIds[0]!, marker!]);
    // The page's write-back lands after its answer: ask until the URL comes from the cache.
    let url: string | undefined;
    for (let i = 0; i < 50 && url === undefined; i++) {
      const page = await h.gql<{ image: { signedUrl: { url: string; cached: boolean } } }>(
        'query ($id: ID!) { image(id: $id) { signedUrl { url cached } } }',
        { id: bobIds[0] },
        { token: bob },
      );
      if (page.data!.image.signedUrl.cached) url = page.data!.image.signedUrl.url;
      else await new Promise((r) => setTimeout(r, 20));
    }
    expect(url).toBeDefined();
    const sse = subscribeSse<SubEvent>(h.url, SUB, { ids: [bobIds[0], marker] }, bob);
    await sse.opened;
    const again = await h.gql<{ refreshSignedUrls: { url: string; cached: boolean }[] }>(
      REFRESH,
      { ids: [bobIds[0]] },
      { token: bob },
    );
    expect(again.data!.refreshSignedUrls[0]).toMatchObject({ url, cached: true });
    // An image never asked for is signed and published: its event comes after any for the first.
    const signed = await h.gql<{ refreshSignedUrls: { cached: boolean }[] }>(
      REFRESH,
      { ids: [marker] },
      { token: bob },
    );
    expect(signed.data!.refreshSignedUrls[0]!.cached).toBe(false);
    await sse.waitFor((ev) => ev.some((e) => e.data.data?.signedUrlRefreshed.imageId === marker));
    expect(sse.events.map((e) => e.data.data?.signedUrlRefreshed.imageId).filter(Boolean)).toEqual([marker]);
    sse.close();
  });

  it('a burst of refreshSignedUrls past the limit is RATE_LIMITED', async () => {
    const token = await h.token('carol');
    const codes: (string | undefined)[] = [];
    for (let i = 0; i < 8; i++) {
      const r = await h.gql(REFRESH, { ids: [alice[0]] }, { token });
      codes.push(r.errors?.[0]?.extensions?.code);
    }
    expect(codes.slice(0, 5)).toEqual([undefined, undefined, undefined, undefined, undefined]);
    expect(codes.slice(5)).toEqual(['RATE_LIMITED', 'RATE_LIMITED', 'RATE_LIMITED']);
    const r = await h.gql(REFRESH, { ids: [alice[0]] }, { token });
    expect(r.errors?.[0]?.message).toMatch(/retry in \d+ s/);
  });

  it('preloadSignedUrls warms the cache and counts only what it signed', async () => {
    const fresh = await seed(h, 'alice', 3);
    // The preload's entries must still be cached for the two requests after it: not across a turn.
    await clearOfStepTurns(h.container.config, fresh);
    const res = await h.gql<{ preloadSignedUrls: number }>(
      'mutation ($ids: [ID!]!) { preloadSignedUrls(ids: $ids) }',
      { ids: [...fresh, bobIds[0]] },
    );
    expect(res.errors).toBeUndefined();
    expect(res.data!.preloadSignedUrls).toBe(3);
    const again = await h.gql<{ preloadSignedUrls: number }>(
      'mutation ($ids: [ID!]!) { preloadSignedUrls(ids: $ids) }',
      {
        ids: fresh,
      },
    );
    expect(again.data!.preloadSignedUrls).toBe(0);
    const page = await h.gql<{ imagesByIds: { signedUrl: { cached: boolean } }[] }>(
      'query ($ids: [ID!]!) { imagesByIds(ids: $ids) { signedUrl { cached } } }',
      { ids: fresh },
    );
    expect(page.data!.imagesByIds.every((i) => i.signedUrl.cached)).toBe(true);
  });

  it('urlStats is FORBIDDEN to non-admins and adds up for admins', async () => {
    const denied = await h.gql(STATS, {});
    expect(denied.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    const admin = await h.token('root', { role: 'admin' });
    const bad = await h.gql(STATS, { days: 31 }, { token: admin });
    expect(bad.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');

    await h.gql('query { images(first: 5) { edges { node { signedUrl { url } } } } }');
    await h.gql('query { images(first: 5) { edges { node { signedUrl { url } } } } }');
    const res = await h.gql<{
      urlStats: Record<string, unknown> & { days: unknown[]; workers: { alive: boolean }[] };
    }>(STATS, { days: 7 }, { token: admin });
    expect(res.errors).toBeUndefined();
    const s = res.data!.urlStats as {
      requests: number;
      cacheHits: number;
      cacheMisses: number;
      hitRate: number;
      uniqueImages: number;
      refreshes: number;
      workers: { alive: boolean; role: string }[];
      days: { requests: number }[];
    };
    expect(s.requests).toBe(s.cacheHits + s.cacheMisses);
    expect(s.cacheHits).toBeGreaterThanOrEqual(5);
    expect(s.hitRate).toBeCloseTo(s.cacheHits / s.requests, 5);
    expect(s.uniqueImages).toBeGreaterThanOrEqual(5);
    expect(s.refreshes).toBeGreaterThanOrEqual(3);
    expect(s.days).toHaveLength(7);
    expect(s.days.at(-1)!.requests).toBe(s.requests);
    expect(s.workers.some((w) => w.alive && w.role === 'all')).toBe(true);
  });
});
