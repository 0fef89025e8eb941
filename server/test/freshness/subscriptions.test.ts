import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SignedUrlEvent } from '../../src/events/event-bus.js';
import { seedImages } from '../../src/seed.js';
import { testRedisUrl } from '../support/env.js';
import { type Harness, startHarness } from '../support/harness.js';
import { seed } from '../support/seed.js';
import { postSubscription, subscribeSse } from '../support/sse.js';
import { clearOfStepTurns } from '../support/step-turns.js';

const SUB =
  'subscription($ids: [ID!]!) { signedUrlRefreshed(ids: $ids) { imageId signedUrl { url expiresAt } } }';
const SUB_PRESET =
  'subscription($ids: [ID!]!, $preset: String) { signedUrlRefreshed(ids: $ids, preset: $preset) { imageId signedUrl { url } srcset } }';
type Data = {
  data?: { signedUrlRefreshed: { imageId: string; signedUrl: { expiresAt: string } } };
  errors?: unknown[];
};

const BASE = Date.UTC(2030, 0, 1);
/** The n-th URL of an image: a later n expires later (as every re-signed URL does). */
const event = (imageId: string, n: number): SignedUrlEvent => ({
  imageId,
  signedUrl: {
    url: `https://bucket.test/${imageId}?n=${n}&pad=${'x'.repeat(2000)}`,
    expiresAt: BASE + n * 1000,
    refreshAt: BASE + n * 1000 - 900_000,
    cached: false,
  },
});
const nOf = (e: { data: Data }) =>
  (Date.parse(e.data.data!.signedUrlRefreshed.signedUrl.expiresAt) - BASE) / 1000;

describe('signedUrlRefreshed: one subscriber cannot starve another', () => {
  let h: Harness;
  let alicesImage: string;
  let alicesImages: string[];
  let bobsImage: string;
  const open = async () => (await h.container.metrics.sseSubscribers.get()).values[0]?.value ?? 0;

  beforeAll(async () => {
    h = await startHarness({
      driver: 'local',
      redis: testRedisUrl(),
      env: {
        SUBSCRIPTIONS_PER_VIEWER: '2',
        STALLED_CLIENT_SECONDS: '2',
        REDIS_COMMAND_TIMEOUT_MS: '5000',
      },
    });
    alicesImages = await seed(h, 'alice', 100);
    alicesImage = alicesImages[0]!;
    bobsImage = (await seed(h, 'bob', 1))[0]!;
  });
  afterAll(async () => {
    await h?.close();
  });

  // Run twice: the first open of the document is yoga's, the next ones take the SSE fast path
  // (http/sse-subscriptions.ts), whose streams must hold back a slow client the same way.
  it.each(['yoga', 'fast'] as const)(
    'a client that stops reading (opened by %s) neither delays nor loses another viewer’s events, and is ended',
    async (path) => {
      const aliceToken = await h.token('alice');
      const bobToken = await h.token('bob');
      const openedBy = async (p: string) =>
        (await h.container.metrics.sseOpened.get()).values.find((v) => v.labels.path === p)?.value ?? 0;
      // yoga's: a spelling of the document no other test opens. The fast path's: one yoga has opened.
      const doc = path === 'yoga' ? `${SUB} # opened by yoga` : SUB;
      if (path === 'fast') {
        await postSubscription(h.url, SUB, { ids: [bobsImage] }, bobToken).then((r) => r.body?.cancel());
        await waitUntil(async () => (await open()) === 0);
      }
      const before = await openedBy(path);
      // Alice's client opens the stream and never reads it again.
      const stalled = await postSubscription(h.url, doc, { ids: alicesImages }, aliceToken);
      expect(stalled.status).toBe(200);
      expect(await openedBy(path)).toBe(before + 1);
      const bob = subscribeSse<Data>(h.url, SUB, { ids: [bobsImage] }, bobToken);
      await bob.opened;
      await waitUntil(async () => (await open()) === 2);

      // 400 rounds through the real Redis bus, each re-signing alice's 100 images before bob's one:
      // ~80 MB for a reader who never reads, far more than the sockets between can absorb.
      const last = 400;
      for (let n = 1; n <= last; n++) {
        await h.container.events.publish([...alicesImages.map((id) => event(id, n)), event(bobsImage, n)]);
      }
      // Bob gets his newest URL (older ones may be coalesced: each is useless once a newer exists).
      await bob.waitFor((es) => es.length > 0 && nOf(es.at(-1)!) === last, 10_000);
      expect(bob.events.every((e) => e.data.data!.signedUrlRefreshed.imageId === bobsImage)).toBe(true);
      // The stalled stream is ended within its bound; bob's carries on.
      await waitUntil(async () => {
        return (await open()) === 1;
      }, 10_000);
      await h.container.events.publish([event(bobsImage!, last + 1)]);
      await bob.waitFor((es) => nOf(es.at(-1)!) === last + 1, 5000);
      bob.close();
      await stalled.body?.cancel().catch(() => {});
    },
  );

  it('caps the open subscriptions of one viewer: the third is RATE_LIMITED', async () => {
    const token = await h.token('alice');
    const a = subscribeSse<Data>(h.url, SUB, { ids: [alicesImage] }, token);
    const b = subscribeSse<Data>(h.url, SUB, { ids: [alicesImage] }, token);
    await Promise.all([a.opened, b.opened]);
    await waitUntil(async () => (await open()) === 2);
    const c = subscribeSse<Data>(h.url, SUB, { ids: [alicesImage] }, token);
    await c.ended;
    expect(JSON.stringify(c.events.map((e) => e.data))).toContain('RATE_LIMITED');
    a.close();
    b.close();
    await waitUntil(async () => (await open()) === 0);
  });

  it("with a preset, an event carries the variant's URL and its srcset, as a query asks them", async () => {
    const [id] = await seedImages({
      storage: h.storage,
      images: h.container.imagesRepo,
      clock: { now: () => Date.now() },
      ownerId: 'carol',
      count: 1,
      width: 800,
      height: 600,
    });
    const token = await h.token('carol');
    type PresetData = {
      data?: { signedUrlRefreshed: { imageId: string; signedUrl: { url: string }; srcset: string | null } };
      errors?: unknown[];
    };
    const s = subscribeSse<PresetData>(h.url, SUB_PRESET, { ids: [id], preset: 'thumb' }, token);
    await s.opened;
    await waitUntil(async () => (await open()) === 1);
    // The bus carries the 1x variant's url id; re-signing it is what a sweep does at a step's end.
    const [row] = await h.container.imagesRepo.findLive([id!]);
    const plan = h.container.variants.srcsetPlan(row!, 'thumb', 0);
    expect(plan.requests).toHaveLength(2);
    // The query below must answer the same step's URLs as the event: not across a step turn.
    await clearOfStepTurns(h.container.config, [id!]);
    await h.container.urls.refreshMany([plan.requests[0]!]);
    await s.waitFor((es) => es.length > 0, 5000);
    const e = s.events[0]!.data;
    expect(e.errors).toBeUndefined();
    const asked = await h.gql<{ imagesByIds: { signedUrl: { url: string }; srcset: string }[] }>(
      'query($ids: [ID!]!) { imagesByIds(ids: $ids) { signedUrl(preset: "thumb") { url } srcset(preset: "thumb") } }',
      { ids: [id] },
      { token },
    );
    const got = e.data!.signedUrlRefreshed;
    expect(got.imageId).toBe(id);
    expect(got.signedUrl.url).toBe(asked.data!.imagesByIds[0]!.signedUrl.url);
    // Both entries (the 2x one resolved for the event) and the 1x one being the event's URL.
    expect(got.srcset).toBe(asked.data!.imagesByIds[0]!.srcset);
    expect(got.srcset!.split(', ')).toHaveLength(2);
    expect(got.srcset!.startsWith(`${got.signedUrl.url} `)).toBe(true);
    s.close();
    await waitUntil(async () => (await open()) === 0);
  });

  it("ends the stream when the viewer's token expires", async () => {
    const token = await h.token('alice', { exp: Math.floor(Date.now() / 1000) + 2 });
    const s = subscribeSse<Data>(h.url, SUB, { ids: [alicesImage] }, token);
    await s.opened;
    const started = Date.now();
    await s.ended;
    expect(Date.now() - started).toBeLessThan(5000);
    await waitUntil(async () => (await open()) === 0);
  });
});

async function waitUntil(cond: () => Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`condition not met in ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
