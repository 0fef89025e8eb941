import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisUrlStore } from '../../src/urls/redis-store.js';
import type { StoreEntry } from '../../src/urls/store.js';
import { testRedisUrl } from '../support/env.js';

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
    const now = 1_000_000;
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
    expect(new Set(first.claimed.slice(0, 2))).toEqual(new Set(['a', 'b']));
    expect(first.claimed[2]).toBe('d');

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
});
