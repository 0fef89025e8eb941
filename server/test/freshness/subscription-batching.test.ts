import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Viewer } from '../../src/auth/viewer.js';
import type { ReadLookup } from '../../src/db/images-repo.js';
import type { SignedUrlEvent } from '../../src/events/event-bus.js';
import { readScope } from '../../src/images/visibility.js';
import { testRedisUrl } from '../support/env.js';
import { type Harness, startHarness } from '../support/harness.js';
import { seed } from '../support/seed.js';
import { type SseSubscription, subscribeSse } from '../support/sse.js';

const SUB =
  'subscription($ids: [ID!]!) { signedUrlRefreshed(ids: $ids) { imageId signedUrl { expiresAt } } }';
type Data = { data?: { signedUrlRefreshed: { imageId: string } }; errors?: unknown[] };

/** The visibility lookup of a subscription (images-repo.ts `findReadable`/`findReadableMany`). */
const isLookup = (sql: string) => /from "images" where "id" in/i.test(sql);

const event = (imageId: string, n: number): SignedUrlEvent => ({
  imageId,
  signedUrl: {
    url: `https://bucket.test/${imageId}?n=${n}`,
    expiresAt: Date.UTC(2030, 0, 1) + n * 1000,
    refreshAt: Date.UTC(2030, 0, 1),
    cached: false,
  },
});

// Subscriptions opened together check visibility together (images/visibility-batch.ts): one SQL
// statement for many, counted on the real PostgreSQL connection, and each viewer still hears only
// of the images it may read (docs/architecture.md, "Who sees what").
describe('signedUrlRefreshed: visibility checks of subscriptions opened together are batched', () => {
  const N = 40;
  let h: Harness;
  const sql: string[] = [];
  let alices: string[];
  let bobsPrivate: string;
  let bobsPublic: string;
  let deleted: string;

  beforeAll(async () => {
    h = await startHarness({
      driver: 'local',
      redis: testRedisUrl(),
      env: { SUBSCRIPTIONS_PER_VIEWER: String(N + 10) },
      onQuery: (s) => sql.push(s),
    });
    alices = await seed(h, 'alice', N);
    const bobs = await seed(h, 'bob', 3);
    [bobsPrivate, bobsPublic, deleted] = bobs as [string, string, string];
    await h.container.imagesRepo.setVisibility(bobsPublic, 'public');
    await h.container.imagesRepo.softDelete('bob', deleted, new Date());
  });
  afterAll(async () => {
    await h?.close();
  });

  it(`${N} subscriptions opened at once share visibility statements, and each viewer hears only of what it may read`, async () => {
    const alice = await h.token('alice');
    const bob = await h.token('bob');
    sql.length = 0;
    // Alice asks for her image and bob's private one in each; bob for his private one.
    const subs: SseSubscription<Data>[] = alices.map((id) =>
      subscribeSse<Data>(h.url, SUB, { ids: [id, bobsPrivate, bobsPublic, deleted] }, alice),
    );
    const bobs = subscribeSse<Data>(h.url, SUB, { ids: [bobsPrivate] }, bob);
    await Promise.all([...subs.map((s) => s.opened), bobs.opened]);
    await waitUntil(async () => (await open()) === N + 1);
    // How many share a statement depends on how the requests arrive; never one each here, as
    // lookups arriving while a statement runs wait for it and then go together.
    expect(sql.filter(isLookup).length).toBeLessThan(N + 1);

    // Every image re-signed: alice's streams hear of their own image and bob's public one only.
    await h.container.events.publish([...alices, bobsPrivate, bobsPublic, deleted].map((id) => event(id, 1)));
    for (const [i, s] of subs.entries()) {
      await s.waitFor((es) => es.length >= 2);
      expect(new Set(s.events.map((e) => e.data.data?.signedUrlRefreshed.imageId))).toEqual(
        new Set([alices[i], bobsPublic]),
      );
    }
    await bobs.waitFor((es) => es.length >= 1);
    expect(bobs.events.map((e) => e.data.data?.signedUrlRefreshed.imageId)).toEqual([bobsPrivate]);
    // One more round: still nothing of bob's private image (or the deleted one) for alice.
    await h.container.events.publish([bobsPrivate, deleted, alices[0]!].map((id) => event(id, 2)));
    await subs[0]!.waitFor((es) => es.length >= 3);
    const heard = subs.flatMap((s) => s.events.map((e) => e.data.data?.signedUrlRefreshed.imageId));
    expect(heard).not.toContain(bobsPrivate);
    expect(heard).not.toContain(deleted);
    for (const s of [...subs, bobs]) s.close();
    await waitUntil(async () => (await open()) === 0);
  });

  it(`${N} subscriptions opened in the same tick: one statement`, async () => {
    sql.length = 0;
    const alice: Viewer = { id: 'alice', isAdmin: false };
    const streams = await Promise.all(
      alices.map((id) => h.container.schema.live.listen(alice, [id, bobsPrivate, bobsPublic])),
    );
    expect(sql.filter(isLookup)).toHaveLength(1);
    await waitUntil(async () => (await open()) === N);
    // Each stream listens to its own image and the public one, not to bob's private image.
    await h.container.events.publish([alices[0]!, bobsPrivate, bobsPublic].map((id) => event(id, 3)));
    const got = [await streams[0]!.next(), await streams[0]!.next()].map((r) => r.value?.imageId);
    expect(new Set(got)).toEqual(new Set([alices[0], bobsPublic]));
    for (const s of streams) await s.return?.();
    await waitUntil(async () => (await open()) === 0);
  });

  it('one findReadableMany statement gives each viewer exactly what findReadable gives it', async () => {
    const repo = h.container.imagesRepo;
    const viewers: Viewer[] = [
      { id: 'alice', isAdmin: false },
      { id: 'bob', isAdmin: false },
      { id: 'root', isAdmin: true },
      { id: 'svc', isAdmin: false, role: 'service' },
      { id: 'anonymous', isAdmin: false, role: 'anonymous' },
      { id: 'carol', isAdmin: false },
    ];
    const missing = '00000000-0000-4000-8000-000000000000';
    const ids = [alices[0]!, alices[1]!, bobsPrivate, bobsPublic, deleted, missing];
    const lookups: ReadLookup[] = [
      ...viewers.map((v) => ({ scope: readScope(v), ids })),
      { scope: readScope(viewers[0]!), ids: [] },
      { scope: { all: false, ownerId: null, publicToo: false }, ids },
    ];
    const alone = await Promise.all(lookups.map((l) => repo.findReadable(l.scope, l.ids)));
    sql.length = 0;
    const together = await repo.findReadableMany(lookups);
    expect(sql.filter(isLookup)).toHaveLength(1);
    const sorted = (rows: { id: string }[]) => rows.map((r) => r.id).sort();
    expect(together.map(sorted)).toEqual(alone.map(sorted));
    // The rule itself, spelled out for the two users.
    expect(sorted(together[0]!)).toEqual([alices[0]!, alices[1]!, bobsPublic].sort());
    expect(sorted(together[1]!)).toEqual([bobsPrivate, bobsPublic].sort());
    expect(sorted(together[4]!)).toEqual([bobsPublic]);
  });

  const open = async () => (await h.container.metrics.sseSubscribers.get()).values[0]?.value ?? 0;
});

async function waitUntil(cond: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error('timed out waiting for the condition');
    await new Promise((r) => setTimeout(r, 20));
  }
}
