import { describe, expect, it, vi } from 'vitest';
import type { Viewer } from '../auth/viewer.js';
import { AppError } from '../errors/index.js';
import type { SignedUrlEvent } from '../events/event-bus.js';
import { MemoryEventBus } from '../events/memory-bus.js';
import { canRead } from '../images/visibility.js';
import { createMetrics } from '../metrics.js';
import { ANIMATED_LOOKUPS_PER_SLICE, type LiveUrlEvent, LiveUrls, type LiveVariant } from './live-urls.js';

const alice: Viewer = { id: 'alice', isAdmin: false };
const bob: Viewer = { id: 'bob', isAdmin: false };
const event = (imageId: string, expiresAt: number): SignedUrlEvent => ({
  imageId,
  signedUrl: {
    url: `https://b.test/${imageId}?e=${expiresAt}`,
    expiresAt,
    refreshAt: expiresAt - 1,
    cached: false,
  },
});
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** No test here expects a listener to fail, but the one that says so. */
const failOnLog = {
  error: (o: unknown, msg?: string) => {
    throw new Error(`logged: ${msg} ${String((o as { err?: unknown }).err)}`);
  },
};

function setup(limits = { perViewer: 4, stalledMs: 200 }) {
  const events = new MemoryEventBus();
  const metrics = createMetrics();
  // Every id is visible: these tests are about the stream, not about who sees what.
  const images = {
    visible: async (_v: Viewer, ids: readonly string[]) => ids.map((id) => ({ id })),
    canRead,
  };
  const live = new LiveUrls({ images, events, metrics, limits, logger: failOnLog });
  const open = async () => (await metrics.sseSubscribers.get()).values[0]?.value ?? 0;
  return { events, live, open };
}

describe('LiveUrls subscriptions', () => {
  it('a client that does not read holds one event per image (the newest), and others still get theirs', async () => {
    const { events, live } = setup();
    const stalled = await live.listen(alice, ['a1', 'a2', 'shared']);
    const reader = await live.listen(bob, ['shared']);
    const got: SignedUrlEvent[] = [];
    const reading = (async () => {
      for await (const e of reader) {
        got.push(e);
        if (got.length === 5000) break;
      }
    })();
    // 5,000 batches, each with the stalled viewer's images first: the old unbuffered push threw
    // after 1,024 pending events and the rest of every batch was lost for everyone else.
    for (let i = 1; i <= 5000; i++) {
      await events.publish([event('a1', i), event('a2', i), event('shared', i)]);
    }
    await reading;
    expect(got.map((e) => e.signedUrl.expiresAt)).toEqual(Array.from({ length: 5000 }, (_, i) => i + 1));
    // The stalled one: exactly the newest of each image, nothing older.
    const held: SignedUrlEvent[] = [];
    for (let i = 0; i < 3; i++) held.push((await stalled.next()).value as SignedUrlEvent);
    expect(held.map((e) => [e.imageId, e.signedUrl.expiresAt])).toEqual([
      ['a1', 5000],
      ['a2', 5000],
      ['shared', 5000],
    ]);
    await stalled.return?.();
  });

  it('an older URL never replaces a newer one in the buffer', async () => {
    const { events, live } = setup();
    const s = await live.listen(alice, ['a1']);
    await events.publish([event('a1', 20)]);
    await events.publish([event('a1', 10)]);
    expect(((await s.next()).value as SignedUrlEvent).signedUrl.expiresAt).toBe(20);
    await s.return?.();
  });

  it('ends a subscription whose client stops taking events, and frees its slot', async () => {
    const { events, live, open } = setup({ perViewer: 4, stalledMs: 100 });
    const s = await live.listen(alice, ['a1']);
    expect(await open()).toBe(1);
    await events.publish([event('a1', 1)]);
    await sleep(250);
    expect(await open()).toBe(0);
    // What was waiting is still handed over, then the stream is done.
    expect((await s.next()).done).toBe(false);
    expect((await s.next()).done).toBe(true);
  });

  it('a reading client is never ended for being idle', async () => {
    const { events, live, open } = setup({ perViewer: 4, stalledMs: 100 });
    const s = await live.listen(alice, ['a1']);
    const next = s.next(); // waiting for an event, as an SSE response does
    await sleep(250);
    expect(await open()).toBe(1);
    await events.publish([event('a1', 7)]);
    expect(((await next).value as SignedUrlEvent).signedUrl.expiresAt).toBe(7);
    await s.return?.();
    expect(await open()).toBe(0);
  });

  it('caps the open subscriptions of one viewer (RATE_LIMITED), not of others', async () => {
    const { live } = setup({ perViewer: 2, stalledMs: 1000 });
    const a = await live.listen(alice, ['a1']);
    const b = await live.listen(alice, ['a1']);
    const err = await live.listen(alice, ['a1']).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AppError);
    expect((err as AppError).code).toBe('RATE_LIMITED');
    const c = await live.listen(bob, ['b1']);
    await a.return?.();
    const d = await live.listen(alice, ['a1']);
    for (const s of [b, c, d]) await s.return?.();
  });

  it("ends when the viewer's token does", async () => {
    const { live, open } = setup();
    const s = await live.listen({ ...alice, expiresAt: Date.now() + 100 }, ['a1']);
    const next = s.next();
    expect(await open()).toBe(1);
    expect((await next).done).toBe(true);
    expect(await open()).toBe(0);
    // An already expired token gets a stream that is over at once.
    const gone = await live.listen({ ...alice, expiresAt: Date.now() - 1 }, ['a1']);
    expect((await gone.next()).done).toBe(true);
  });

  it("a token valid for longer than node's longest timer ends at its expiry, not at that timer's", async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    try {
      const { live, open } = setup();
      const longest = 2 ** 31 - 1;
      const s = await live.listen({ ...alice, expiresAt: Date.now() + longest + 5000 }, ['a1']);
      vi.advanceTimersByTime(longest);
      // A timer of its own, clamped to the longest, ended it ~25 days early.
      expect(await open()).toBe(1);
      vi.advanceTimersByTime(5000);
      expect((await s.next()).done).toBe(true);
      expect(await open()).toBe(0);
    } finally {
      vi.useRealTimers();
    }
  });
});

/**
 * Bob subscribes to 'pub' and 'other'; the check reads the rows while 'pub' is still public, and
 * alice makes it private before the check returns.
 */
async function revokedDuringCheck() {
  const events = new MemoryEventBus();
  let release!: () => void;
  const gate = new Promise<void>((r) => {
    release = r;
  });
  const images = {
    visible: async (_v: Viewer, ids: readonly string[]) => {
      await gate;
      return ids.map((id) => ({ id }));
    },
    // The domain's own rule: the tests are that a change during the check still applies it.
    canRead,
  };
  const live = new LiveUrls({
    images,
    events,
    metrics: createMetrics(),
    limits: { perViewer: 4, stalledMs: 1000 },
    logger: failOnLog,
  });
  const opening = live.listen(bob, ['pub', 'other']);
  await sleep(5);
  await events.publishAccessChanges([{ imageId: 'pub', ownerId: 'alice', visibility: 'private' }]);
  release();
  return { events, stream: await opening };
}

describe('LiveUrls and visibility changes', () => {
  it('a change that lands while the subscribe-time check runs is not lost', async () => {
    const { events, stream } = await revokedDuringCheck();
    await events.publish([event('pub', 1), event('other', 1)]);
    expect(((await stream.next()).value as SignedUrlEvent).imageId).toBe('other');
    expect(events.subscribedIds()).toEqual(['other']);
    await stream.return?.();
  });

  it('drops what is waiting in the buffer, keeps the owner, and keeps admins and services on everything', async () => {
    const { events, live } = setup();
    const owner = await live.listen(alice, ['x']);
    const other = await live.listen(bob, ['x', 'y']);
    const admin = await live.listen({ id: 'root', isAdmin: true }, ['x']);
    const service = await live.listen({ id: 'gw', isAdmin: false, role: 'service' }, ['x']);
    await events.publish([event('x', 1)]);
    await events.publishAccessChanges([{ imageId: 'x', ownerId: 'alice', visibility: 'private' }]);
    await events.publish([event('x', 2), event('y', 2)]);
    // bob's buffered x@1 went with his access; y still arrives.
    expect(((await other.next()).value as SignedUrlEvent).imageId).toBe('y');
    for (const s of [owner, admin, service]) {
      expect(((await s.next()).value as SignedUrlEvent).signedUrl.expiresAt).toBe(2);
    }
    // A delete revokes everyone, the owner included.
    await events.publishAccessChanges([{ imageId: 'x', ownerId: 'alice', visibility: null }]);
    await events.publish([event('x', 3), event('y', 3)]);
    expect(((await other.next()).value as SignedUrlEvent).signedUrl.expiresAt).toBe(3);
    expect(events.subscribedIds()).toEqual(['y']);
    for (const s of [owner, other, admin, service]) await s.return?.();
  });
});

describe('LiveUrls and rows recorded as animated', () => {
  interface Row {
    id: string;
    animated: boolean | null;
  }
  type Event = LiveUrlEvent<Row>;
  // As the catalog plans a preset: the variant's url id, the original's for an animated row.
  const thumb: LiveVariant<Row> = {
    preset: 'thumb',
    urlIdOf: (r) => (r.animated ? r.id : `${r.id}~thumb`),
  };

  function setupRows(
    visible: (ids: readonly string[]) => Promise<Row[]>,
    logger: { error: (o: unknown, msg?: string) => void } = failOnLog,
  ) {
    const events = new MemoryEventBus();
    const live = new LiveUrls<Row>({
      images: { visible: (_v: Viewer, ids: readonly string[]) => visible(ids), canRead },
      events,
      metrics: createMetrics(),
      limits: { perViewer: 4, stalledMs: 1000 },
      logger,
    });
    return { events, live };
  }
  /** Rows not looked at yet (as migration 006 left them). */
  const unknown = async (ids: readonly string[]): Promise<Row[]> => ids.map((id) => ({ id, animated: null }));

  it("a preset stream moves to the original's url id; a stream without a preset is unaffected", async () => {
    const { events, live } = setupRows(unknown);
    const preset = await live.listen(alice, ['a', 'b'], thumb);
    const plain = await live.listen(alice, ['a']);
    expect(events.subscribedIds().sort()).toEqual(['a', 'a~thumb', 'b~thumb']);

    await events.publishAnimated(['a']);
    // The variant's url id is no longer listened to (nor kept signed for us by the refresh).
    expect(events.subscribedIds().sort()).toEqual(['a', 'b~thumb']);
    // A later URL of the old variant first: had it been delivered, the original's (older) one
    // would have been dropped as stale.
    await events.publish([event('a~thumb', 5), event('b~thumb', 5)]);
    await events.publish([event('a', 3)]);
    const got: Event[] = [];
    for (let i = 0; i < 2; i++) got.push((await preset.next()).value as Event);
    expect(got.map((e) => [e.imageId, e.signedUrl.url])).toEqual([
      ['b', event('b~thumb', 5).signedUrl.url],
      ['a', event('a', 3).signedUrl.url],
    ]);
    // The event's row is the re-planned one: its srcset is the original's.
    expect(got[1]!.variantOf).toEqual({ row: { id: 'a', animated: true }, preset: 'thumb' });
    expect(got[0]!.variantOf).toEqual({ row: { id: 'b', animated: null }, preset: 'thumb' });
    // The plain stream heard the original's URL, as it always did, and only that.
    const plainGot = (await plain.next()).value as Event;
    expect([plainGot.imageId, plainGot.signedUrl.expiresAt, plainGot.variantOf]).toEqual(['a', 3, undefined]);
    await events.publish([event('a~thumb', 6), event('a', 7)]);
    expect(((await plain.next()).value as Event).signedUrl.expiresAt).toBe(7);
    expect(((await preset.next()).value as Event).signedUrl.url).toBe(event('a', 7).signedUrl.url);
    for (const s of [preset, plain]) await s.return?.();
    expect(events.subscribedIds()).toEqual([]);
  });

  it("drops a variant event still waiting for a slow client when its image moves, so the original's next one is delivered", async () => {
    const { events, live } = setupRows(unknown);
    const stream = await live.listen(alice, ['a', 'b'], thumb);
    // Waiting, unread: the variant's URL of both images, with their rows as they were.
    await events.publish([event('a~thumb', 5), event('b~thumb', 5)]);
    await events.publishAnimated(['a']);
    // The original's URL, with an expiry earlier than the waiting variant's: kept beside it, the
    // variant's would have won (the newest per image) and the stream stayed on the variant.
    await events.publish([event('a', 4)]);
    const got: Event[] = [];
    for (let i = 0; i < 2; i++) got.push((await stream.next()).value as Event);
    expect(got.map((e) => [e.imageId, e.signedUrl.url])).toEqual([
      ['b', event('b~thumb', 5).signedUrl.url],
      ['a', event('a', 4).signedUrl.url],
    ]);
    expect(got[1]!.variantOf?.row).toEqual({ id: 'a', animated: true });
    await stream.return?.();
  });

  it('a change that lands while the subscribe-time check runs is not lost', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    // The check read the rows before the backfill recorded one; the change arrives before it returns.
    const { events, live } = setupRows(async (ids) => {
      const rows = await unknown(ids);
      await gate;
      return rows;
    });
    const opening = live.listen(alice, ['a', 'b'], thumb);
    await sleep(5);
    await events.publishAnimated(['a']);
    release();
    const stream = await opening;
    expect(events.subscribedIds().sort()).toEqual(['a', 'b~thumb']);
    await events.publish([event('a~thumb', 5)]);
    await events.publish([event('a', 3)]);
    const e = (await stream.next()).value as Event;
    expect([e.imageId, e.signedUrl.url]).toEqual(['a', event('a', 3).signedUrl.url]);
    expect(e.variantOf?.row).toEqual({ id: 'a', animated: true });
    await stream.return?.();
  });

  it('many streams are re-planned in slices, the event loop let go between them; each holding an id moves, an ended one stays ended, a failing one is logged', async () => {
    const logged: string[] = [];
    const { events, live } = setupRows(unknown, { error: (_o, msg) => logged.push(msg ?? '') });
    const ids = 100;
    const perSlice = ANIMATED_LOOKUPS_PER_SLICE / ids;
    // Planning an animated row of image 'boom' fails (a defect of the catalog, say).
    const failing: LiveVariant<Row> = {
      preset: 'thumb',
      urlIdOf: (r) => {
        if (r.animated && r.id.endsWith(':boom')) throw new Error('cannot plan');
        return thumb.urlIdOf(r);
      },
    };
    const streams = [];
    for (let i = 0; i < perSlice * 3; i++) {
      const held = Array.from({ length: ids - 1 }, (_, k) => `${i}:${k}`);
      held.push(`${i}:boom`);
      streams.push(await live.listen({ id: `viewer-${i}`, isAdmin: false }, held, failing));
    }
    // One stream of each slice holds an id of the message, and one of the second slice fails
    // on it; the rest of the message is ids no one holds.
    const first = 0;
    const second = perSlice + 7;
    const third = 2 * perSlice + 3;
    const message = [`${first}:5`, `${second}:5`, `${third}:5`, `${perSlice + 9}:boom`];
    while (message.length < ids) message.push(`elsewhere-${message.length}`);
    const subscribed = (id: string) => events.subscribedIds().includes(id);
    const moved = (id: string) => subscribed(id) && !subscribed(`${id}~thumb`);

    await events.publishAnimated(message);
    // The first slice at once.
    expect(moved(`${first}:5`)).toBe(true);
    expect(subscribed(`${second}:5~thumb`)).toBe(true);
    // A second message while the first is walked waits its turn behind it.
    await events.publishAnimated([`${first + 1}:5`]);
    expect(subscribed(`${first + 1}:5~thumb`)).toBe(true);
    // The third stream ends before its slice comes.
    await streams[third]!.return?.();
    // Something queued now runs after the second slice (a later turn) and before the third.
    await new Promise((r) => setImmediate(r));
    expect(moved(`${second}:5`)).toBe(true);
    expect(logged).toEqual(['an animation listener failed']);
    expect(subscribed(`${first + 1}:5~thumb`)).toBe(true);
    for (let i = 0; i < 3; i++) await new Promise((r) => setImmediate(r));
    expect(subscribed(`${third}:5`) || subscribed(`${third}:5~thumb`)).toBe(false);
    expect(moved(`${first + 1}:5`)).toBe(true);
    // Only the held ids moved: a neighbour of each is still on the variant.
    expect(subscribed(`${first}:6~thumb`) && subscribed(`${second}:6~thumb`)).toBe(true);
    expect(logged).toHaveLength(1);
    for (const s of streams) await s.return?.();
    expect(events.subscribedIds()).toEqual([]);
  });

  it('changes for images a stream does not hold, or revoked from it, leave it as it is', async () => {
    const { events, live } = setupRows(unknown);
    const stream = await live.listen(bob, ['a', 'b'], thumb);
    await events.publishAccessChanges([{ imageId: 'a', ownerId: 'alice', visibility: 'private' }]);
    await events.publishAnimated(['a', 'elsewhere']);
    expect(events.subscribedIds()).toEqual(['b~thumb']);
    await events.publish([event('a', 4), event('b~thumb', 4)]);
    expect(((await stream.next()).value as Event).imageId).toBe('b');
    await stream.return?.();
    // An ended stream is not subscribed again by a later change.
    await events.publishAnimated(['b']);
    expect(events.subscribedIds()).toEqual([]);
  });
});
