import { expect } from 'vitest';
import type { RedisClient } from '../../src/redis/connect.js';
import { urlKeys } from '../../src/urls/redis-store.js';
import type { UrlStore } from '../../src/urls/store.js';

/**
 * Writes `count` entries back as misses, then three of them as refreshes, and checks what the
 * write-back left (urls/redis-store.ts; the same on a single Redis and on a Cluster): the values
 * over every shard tag, their TTLs, each image's place in the refresh schedule, the
 * never-refreshed set (misses join it, refreshes do not) and the refresh counts. Odd characters
 * in the ids survive the JSON argument. Returns the ids; the never-refreshed set is left without
 * them.
 */
export async function checkWriteBack(
  store: UrlStore,
  redis: RedisClient,
  prefix: string,
  count: number,
  now: number,
): Promise<string[]> {
  const k = urlKeys(prefix);
  const ids = Array.from({ length: count }, (_, i) => `w${i}${i % 7 === 0 ? '"\\é' : ''}`);
  expect(new Set(ids.map(k.shard)).size, 'the ids cover every shard tag').toBe(64);
  const entries = ids.map((id, i) => ({
    id,
    sig: { start: 10 + i, end: 20 + i, sig: `s${i}`, ...(i % 5 === 0 ? { region: 'eu-west' } : {}) },
    ttlMs: 50_000 + i + 0.7,
    refreshAt: now + i,
  }));
  await store.write(entries, 'miss');
  expect(await store.read(ids)).toEqual(entries.map((e) => e.sig));
  const ttls = await Promise.all(ids.map((id) => redis.pttl(k.url(id))));
  expect(Math.min(...ttls)).toBeGreaterThan(40_000);
  expect(Math.max(...ttls)).toBeLessThanOrEqual(50_000 + count);
  expect((await redis.zmscore(k.schedule, ...ids)).map(Number)).toEqual(entries.map((e) => e.refreshAt));
  expect(await redis.smismember(k.fresh, ...ids)).toEqual(ids.map(() => 1));
  // A miss counts no refresh; a refresh counts one each and joins no never-refreshed set.
  expect((await store.status(ids.slice(0, 3))).map((r) => r.refreshCount)).toEqual([0, 0, 0]);
  await redis.srem(k.fresh, ...ids);
  await store.write(entries.slice(0, 3), 'refresh');
  expect((await store.status(ids.slice(0, 4))).map((r) => r.refreshCount)).toEqual([1, 1, 1, 0]);
  expect(await redis.smismember(k.fresh, ...ids.slice(0, 3))).toEqual([0, 0, 0]);
  return ids;
}
