import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisUrlStore, urlKeys } from '../../src/urls/redis-store.js';
import type { StoreEntry } from '../../src/urls/store.js';
import { testRedisUrl } from '../support/env.js';
import { checkWriteBack } from '../support/write-back.js';

const entry = (id: string, refreshAt: number): StoreEntry => ({
  id,
  sig: { start: 1, end: 2, sig: 'abc' },
  ttlMs: 60_000,
  refreshAt,
});

// The refresh schedule's claim script against a real Redis.
describe('RedisUrlStore refresh schedule', () => {
  let redis: Redis;
  let store: RedisUrlStore;
  const prefix = `signet-test:store:${process.pid}:`;

  beforeAll(() => {
    redis = new Redis(testRedisUrl());
    store = new RedisUrlStore(redis, prefix);
  });
  afterAll(async () => {
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length > 0) await redis.del(...keys);
    redis.disconnect();
  });

  it('claims due ids once under a lease, new ones first, then the hottest; drops idle ones', async () => {
    // A claimer whose clock is ahead of Redis' (as a fake clock moved forward): its own clock
    // rules its leases. One behind Redis' leases from Redis' clock (the test below).
    const now = Date.now() + 3_600_000;
    // a, b: signed on demand (never refreshed); c, d, e: refreshed before, d is the hottest.
    await store.write([entry('a', now - 10), entry('b', now - 10)], 'miss');
    await store.write(
      [entry('c', now - 10), entry('d', now - 10), entry('e', now - 10), entry('idle', now - 10)],
      'refresh',
    );
    await store.write([entry('later', now + 60_000)], 'refresh');
    await store.recordAccess(
      new Map([
        ['a', { count: 1, lastAt: now - 5 }],
        ['b', { count: 1, lastAt: now - 5 }],
        ['c', { count: 2, lastAt: now - 5 }],
        ['d', { count: 50, lastAt: now - 5 }],
        ['e', { count: 1, lastAt: now - 5 }],
        ['later', { count: 1, lastAt: now - 5 }],
        ['idle', { count: 9, lastAt: now - 100_000 }],
      ]),
    );

    const liveSince = now - 50_000;
    const first = await store.claimDue(now, 3, 30_000, liveSince);
    expect(first.dropped).toBe(1); // 'idle' left the schedule
    // Which ids, not their order: a batch is signed as one.
    expect(new Set(first.claimed)).toEqual(new Set(['a', 'b', 'd']));

    const second = await store.claimDue(now, 10, 30_000, liveSince);
    expect(new Set(second.claimed)).toEqual(new Set(['c', 'e']));
    expect(second.dropped).toBe(0);
    // Everything due is leased now: nothing more to claim until the lease runs out…
    expect((await store.claimDue(now + 29_000, 10, 30_000, liveSince)).claimed).toEqual([]);
    // …then the unfinished work comes due again (a claimer that died loses nothing).
    const again = await store.claimDue(now + 31_000, 10, 30_000, liveSince);
    expect(new Set(again.claimed)).toEqual(new Set(['a', 'b', 'c', 'd', 'e']));
    // A refresh reschedules properly; backlog and lag read from the schedule.
    await store.write([entry('a', now + 3_600_000)], 'refresh');
    const info = await store.scheduleInfo(now + 100_000);
    expect(info.backlog).toBe(5); // b, c, d, e (leases over) and 'later'
    expect(info.oldestDueAt).toBe(now + 60_000);
  });

  it('claims concurrently without handing an id to two claimers', async () => {
    const now = 2_000_000;
    const ids = Array.from({ length: 300 }, (_, i) => `x${i}`);
    await store.write(
      ids.map((id) => entry(id, now - 1)),
      'refresh',
    );
    await store.recordAccess(new Map(ids.map((id) => [id, { count: 1, lastAt: now }])));
    const claims = await Promise.all(
      Array.from({ length: 6 }, () => store.claimDue(now, 70, 60_000, now - 1000)),
    );
    const all = claims.flatMap((c) => c.claimed).filter((id) => id.startsWith('x'));
    expect(all.length).toBe(300);
    expect(new Set(all).size).toBe(300);
  });

  it('claims the best of the due ids it looks at: new, then hottest, then longest due', async () => {
    // Its own prefix: a schedule holding exactly this test's ids.
    const own = `${prefix}best:`;
    const s = new RedisUrlStore(redis, own);
    // Ahead of Redis' clock: leased until this now + the lease (see the first test).
    const now = Date.now() + 3_600_000;
    const limit = 300;
    // 1,300 due, one ms apart: the claim looks at the 1,200 longest due (4 × limit), across
    // chunk boundaries. Few distinct access counts, so many ties at the threshold.
    let seed = 7;
    const rand = (n: number) => {
      seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
      return seed % n;
    };
    const items = Array.from({ length: 1300 }, (_, i) => ({
      id: `best${i}`,
      dueAt: now - 10_000 + i,
      count: rand(4),
      isNew: rand(10) === 0,
      idle: rand(10) === 0,
    }));
    try {
      await s.write(
        items.filter((x) => x.isNew).map((x) => entry(x.id, x.dueAt)),
        'miss',
      );
      await s.write(
        items.filter((x) => !x.isNew).map((x) => entry(x.id, x.dueAt)),
        'refresh',
      );
      await s.recordAccess(
        new Map(items.map((x) => [x.id, { count: x.count, lastAt: x.idle ? now - 100_000 : now - 5 }])),
      );
      const looked = items.slice(0, limit * 4);
      const score = (x: (typeof items)[number]) => (x.isNew ? 1e12 : 0) + x.count;
      const expected = looked
        .filter((x) => !x.idle)
        .sort((a, b) => score(b) - score(a) || a.dueAt - b.dueAt)
        .slice(0, limit)
        .map((x) => x.id);

      const got = await s.claimDue(now, limit, 30_000, now - 50_000);
      expect(got.dropped).toBe(looked.filter((x) => x.idle).length);
      expect(got.claimed).toHaveLength(limit);
      expect(new Set(got.claimed)).toEqual(new Set(expected));
      // Leased until now + lease; the idle ones looked at left every set; new ones claimed left `new`.
      const due = `${own}{refresh}:due`;
      expect(new Set(await redis.zmscore(due, ...got.claimed))).toEqual(new Set([String(now + 30_000)]));
      const idle = looked.filter((x) => x.idle).map((x) => x.id);
      expect(await redis.zmscore(due, ...idle)).toEqual(idle.map(() => null));
      expect(await redis.zmscore(`${own}{refresh}:live`, ...idle)).toEqual(idle.map(() => null));
      expect(await redis.smismember(`${own}{refresh}:new`, ...got.claimed)).toEqual(got.claimed.map(() => 0));
      // The idle ones not looked at yet are still scheduled: a later claim drops them.
      const later = items.slice(limit * 4).filter((x) => x.idle);
      expect((await redis.zmscore(due, ...later.map((x) => x.id))).every((v) => v !== null)).toBe(true);
      // A claim of nothing looks at nothing and drops nothing.
      expect(await s.claimDue(now, 0, 30_000, now - 50_000)).toEqual({ claimed: [], dropped: 0 });
      expect((await redis.zmscore(due, ...later.map((x) => x.id))).every((v) => v !== null)).toBe(true);
    } finally {
      const keys = await redis.keys(`${own}*`);
      if (keys.length > 0) await redis.del(...keys);
    }
  });

  it('leases from Redis’ clock when the claimer’s is behind: a claimer with the right clock does not take the ids again', async () => {
    const own = `${prefix}lease:`;
    const s = new RedisUrlStore(redis, own);
    const k = urlKeys(own);
    // Redis runs on this machine: its clock is this process's.
    const real = Date.now();
    const ids = Array.from({ length: 10 }, (_, i) => `lease${i}`);
    const dueAt = async (at: number) => {
      await redis.zadd(k.schedule, ...ids.flatMap((id) => [String(at), id]));
    };
    try {
      // Ten URLs due 90 s ago, looked at a second ago, as a backlog leaves them.
      await dueAt(real - 90_000);
      await redis.zadd(k.live, ...ids.flatMap((id) => [String(real - 1000), id]));
      const liveSince = real - 3_600_000;
      // A claimer whose clock is 60 s behind: until 2026-12-07 its lease ended 30 s in the past.
      const slow = real - 60_000;
      expect((await s.claimDue(slow, 500, 30_000, liveSince)).claimed).toHaveLength(10);
      const claimedBy = Date.now();
      for (const score of await redis.zmscore(k.schedule, ...ids)) {
        expect(Number(score)).toBeGreaterThanOrEqual(real + 30_000);
        expect(Number(score)).toBeLessThanOrEqual(claimedBy + 30_000);
      }
      // Neither a claimer with the right clock nor the slow one takes them again while it holds…
      expect((await s.claimDue(Date.now(), 500, 30_000, liveSince)).claimed).toEqual([]);
      expect((await s.claimDue(slow + 29_000, 500, 30_000, liveSince)).claimed).toEqual([]);
      // …and once it is over by the right clock, the work comes due again.
      const again = await s.claimDue(Date.now() + 31_000, 500, 30_000, liveSince);
      expect(new Set(again.claimed)).toEqual(new Set(ids));

      // A claimer whose clock is ahead keeps its own lease (longer for everyone else).
      await dueAt(real - 90_000);
      const fast = real + 60_000;
      expect((await s.claimDue(fast, 500, 30_000, liveSince)).claimed).toHaveLength(10);
      expect(new Set(await redis.zmscore(k.schedule, ...ids))).toEqual(new Set([String(fast + 30_000)]));

      // What is due is due by the claimer's clock, which it signs by: a claimer 60 s behind takes
      // nothing that fell due 10 s ago by Redis' clock (it would find its step's URL current).
      await dueAt(real - 10_000);
      expect((await s.claimDue(slow, 500, 30_000, liveSince)).claimed).toEqual([]);
      expect((await s.claimDue(real, 500, 30_000, liveSince)).claimed).toHaveLength(10);
    } finally {
      const keys = await redis.keys(`${own}*`);
      if (keys.length > 0) await redis.del(...keys);
    }
  });

  it('never replaces a stored URL whose window ends later, nor its due time, refresh count or never-refreshed mark', async () => {
    const own = `${prefix}later:`;
    const s = new RedisUrlStore(redis, own);
    const k = urlKeys(own);
    // Every text form of a stored value: plain, a signer's mark, a region, both.
    const marks = [{}, { by: 'kF_9-x' }, { region: 'eu-west' }, { by: 'kF_9-x', region: 'eu-west' }];
    const ids = marks.map((_, i) => `later${i}`);
    const sig = (i: number, start: number, end: number, sig = `s${start}`) => ({
      start,
      end,
      sig,
      ...marks[i],
    });
    const at = (i: number, start: number, end: number, refreshAt: number, s2?: string): StoreEntry => ({
      id: ids[i]!,
      sig: sig(i, start, end, s2),
      ttlMs: 60_000,
      refreshAt,
    });
    try {
      // The next step's URLs, written first by a node whose clock is ahead, due at its end.
      await s.write(
        ids.map((_, i) => at(i, 1_000, 5_000, 9_000)),
        'refresh',
      );
      // The step before, from a node behind, in a batch with an image of its own: only that one
      // is stored, scheduled and marked never-refreshed.
      await s.write(
        [
          ...ids.map((_, i) => at(i, 500, 4_500, 8_000)),
          { id: 'later-own', sig: { start: 500, end: 4_500, sig: 'own' }, ttlMs: 60_000, refreshAt: 8_000 },
        ],
        'miss',
      );
      expect(await s.read(ids)).toEqual(ids.map((_, i) => sig(i, 1_000, 5_000)));
      expect(await s.read(['later-own'])).toEqual([{ start: 500, end: 4_500, sig: 'own' }]);
      expect(await redis.zmscore(k.schedule, ...ids, 'later-own')).toEqual([
        ...ids.map(() => '9000'),
        '8000',
      ]);
      expect(await redis.smismember(k.fresh, ...ids, 'later-own')).toEqual([...ids.map(() => 0), 1]);
      // An older refresh counts nothing either.
      await s.write(
        ids.map((_, i) => at(i, 500, 4_500, 8_000)),
        'refresh',
      );
      expect((await s.status(ids)).map((r) => r.refreshCount)).toEqual(ids.map(() => 1));
      // The same window is written as before (a re-sign, a key rotation), and a later one too.
      await s.write([at(0, 1_000, 5_000, 9_000, 'rotated'), at(1, 2_000, 6_000, 10_000)], 'refresh');
      expect(await s.read(ids.slice(0, 2))).toEqual([sig(0, 1_000, 5_000, 'rotated'), sig(1, 2_000, 6_000)]);
      expect(await redis.zmscore(k.schedule, ids[0]!, ids[1]!)).toEqual(['9000', '10000']);
      expect((await s.status(ids.slice(0, 2))).map((r) => r.refreshCount)).toEqual([2, 2]);
      // A value it cannot read (not a signature) is replaced.
      await redis.set(k.url('later-odd'), 'not-a-signature');
      await s.write(
        [{ id: 'later-odd', sig: { start: 1, end: 2, sig: 'x' }, ttlMs: 60_000, refreshAt: 1 }],
        'miss',
      );
      expect(await s.read(['later-odd'])).toEqual([{ start: 1, end: 2, sig: 'x' }]);
    } finally {
      const keys = await redis.keys(`${own}*`);
      if (keys.length > 0) await redis.del(...keys);
    }
  });

  it('reschedules ids still in the schedule and never puts a purged one back', async () => {
    const now = 2_500_000;
    await store.write([entry('r1', now - 1), entry('r2', now - 1), entry('gone', now - 1)], 'refresh');
    await store.recordAccess(new Map(['r1', 'r2', 'gone'].map((id) => [id, { count: 1, lastAt: now }])));
    await store.purge(['gone']);
    await store.reschedule([
      { id: 'r1', refreshAt: now + 2_700_000 },
      { id: 'gone', refreshAt: now + 2_700_000 },
    ]);
    expect(await redis.zscore(`${prefix}{refresh}:due`, 'r1')).toBe(String(now + 2_700_000));
    expect(await redis.zscore(`${prefix}{refresh}:due`, 'r2')).toBe(String(now - 1));
    expect(await redis.zscore(`${prefix}{refresh}:due`, 'gone')).toBeNull();
    // Room past what earlier tests left due (looked at, then dropped as idle).
    const claimed = (await store.claimDue(now, 1000, 30_000, now - 1000)).claimed;
    expect(claimed).toContain('r2');
    expect(claimed).not.toContain('r1');
  });

  it('a purged id put back in the live and hot sets by a late access flush leaves them once out of the live window', async () => {
    const now = 2_600_000;
    await store.write([entry('late', now - 1)], 'refresh');
    await store.purge(['late']);
    // Another node's flush of an access from just before the delete lands after the purge.
    await store.recordAccess(new Map([['late', { count: 3, lastAt: now }]]));
    expect(await redis.zscore(`${prefix}{refresh}:live`, 'late')).toBe(String(now));
    expect(await redis.zscore(`${prefix}{refresh}:due`, 'late')).toBeNull();
    // Still in the window: kept.
    await store.claimDue(now, 10, 30_000, now - 1000);
    expect(await redis.zscore(`${prefix}{refresh}:hot`, 'late')).toBe('3');
    // Out of it: gone from both, though it never came due again.
    await store.claimDue(now + 5000, 10, 30_000, now + 1);
    expect(await redis.zscore(`${prefix}{refresh}:live`, 'late')).toBeNull();
    expect(await redis.zscore(`${prefix}{refresh}:hot`, 'late')).toBeNull();
  });

  it('writes a batch back across every shard tag: values, TTLs, schedule, never-refreshed set, counts', async () => {
    // 1,201 ids cross the script's chunks of 500 (Lua's unpack has a bounded stack).
    await checkWriteBack(store, redis, prefix, 1_201, 3_000_000);
    // Each URL under its own key, and nothing else written as one.
    expect(await redis.keys(`${prefix}{u*}url:w*`)).toHaveLength(1_201);
    expect(await redis.scard(`${prefix}{refresh}:new`)).toBe(0);
  });

  it('flushes access counts into the hot set and the live set (never backwards), which status reads', async () => {
    const ids = Array.from({ length: 200 }, (_, i) => `a${i}`);
    await store.recordAccess(new Map(ids.map((id, i) => [id, { count: i % 3, lastAt: 5_000_000 + i }])));
    await store.recordAccess(new Map(ids.map((id) => [id, { count: 2, lastAt: 4_000_000 }])));
    const status = await store.status(ids);
    expect(status.map((r) => r.accessCount)).toEqual(ids.map((_, i) => (i % 3) + 2));
    // A node flushing late (4,000,000) does not move the last access back.
    expect(status.map((r) => r.lastAccessAt)).toEqual(ids.map((_, i) => 5_000_000 + i));
    // No per-image hash for accesses: only a refresh makes one (its count).
    expect(await redis.exists(...ids.map((id) => urlKeys(prefix).meta(id)))).toBe(0);
    const live = await redis.zmscore(`${prefix}{refresh}:live`, ...ids);
    expect(live.map(Number)).toEqual(ids.map((_, i) => 5_000_000 + i));
    const hot = await redis.zmscore(`${prefix}{refresh}:hot`, ...ids);
    expect(hot.map(Number)).toEqual(ids.map((_, i) => (i % 3) + 2));
  });
});
