import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeClock } from '../../src/clock.js';
import type { SignedUrlEvent } from '../../src/events/event-bus.js';
import { createMetrics } from '../../src/metrics.js';
import { createLocalStorage } from '../../src/storage/local.js';
import type { SignWindow, Storage } from '../../src/storage/storage.js';
import { RedisUrlStore, urlKeys } from '../../src/urls/redis-store.js';
import { decodeSignature, type StoreEntry } from '../../src/urls/store.js';
import { createUrlPath } from '../../src/urls/url-path.js';
import { CLOCK_SKEW_SECONDS, WindowGrid } from '../../src/urls/window-grid.js';
import { answered } from '../support/answered.js';
import { testRedisUrl } from '../support/env.js';
import { captureLogger } from '../support/logs.js';

const TTL = 3600;
const AHEAD = 900;
const STEP = TTL - AHEAD;
const timing = { urlTtlSeconds: TTL, refreshAheadSeconds: AHEAD, defaultMinTtlSeconds: 300 };

/** The real Redis store, with a way to wait for the write-backs it was handed (sent after the answer). */
class LandingStore extends RedisUrlStore {
  private readonly pending = new Set<Promise<unknown>>();
  override write(entries: readonly StoreEntry[], reason: 'miss' | 'refresh'): Promise<void> {
    const p = super.write(entries, reason);
    this.pending.add(p);
    void p.finally(() => this.pending.delete(p)).catch(() => {});
    return p;
  }
  async landed(): Promise<void> {
    while (this.pending.size > 0) await Promise.allSettled([...this.pending]);
  }
}

// Gateway nodes whose clocks differ, on one real Redis: for the seconds of skew after each step
// boundary the node ahead is in step N+1 and the node behind in step N. Each used to read the
// other's URL as a miss, sign its own, store it over the other's and announce it: two nodes 30 s
// apart announced 120 URLs per image and boundary instead of one (docs/architecture.md,
// "The window grid").
describe('nodes with skewed clocks around a step boundary (real Redis)', () => {
  const prefix = `signet-test:skew:${process.pid}:`;
  const k = urlKeys(prefix);
  const grid = new WindowGrid(timing);
  let dir: string;
  const clients: Redis[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'signet-skew-'));
  });
  afterAll(async () => {
    const r = new Redis(testRedisUrl());
    const keys = await r.keys(`${prefix}*`);
    if (keys.length > 0) await r.del(...keys);
    r.disconnect();
    for (const c of clients) c.disconnect();
    await rm(dir, { recursive: true, force: true });
  });

  /** One node: its own clock, Redis connection, memo and signer; the bucket and prefix shared. */
  function node(ms: number) {
    const clock = new FakeClock(ms);
    const redis = new Redis(testRedisUrl());
    clients.push(redis);
    const store = new LandingStore(redis, prefix);
    const local = createLocalStorage({
      root: path.join(dir, 'bucket'),
      publicUrl: 'http://gw.test',
      secret: 's'.repeat(32),
    });
    const signed: string[] = [];
    const storage = Object.assign(Object.create(local) as Storage, {
      signMany(keys: readonly string[], window: SignWindow) {
        signed.push(...keys);
        return local.signMany(keys, window);
      },
    });
    const events: SignedUrlEvent[] = [];
    const { urls } = createUrlPath({
      storage,
      store,
      events: { publish: async (e) => void events.push(...e) },
      clock,
      metrics: createMetrics(),
      logger: captureLogger('warn').logger,
      timing,
    });
    return { clock, store, urls: answered(urls), signed, events };
  }

  /** A new image, and the boundary (s) that ends its step at `now` (ms). */
  function imageBefore(n: number, now: number) {
    const id = `skew-${n}-${now}`;
    const boundary = grid.stepStart(id, Math.floor(now / 1000)) + STEP;
    return { id, key: `u/alice/${n}.png`, minTtl: 300, boundary };
  }

  const stored = async (redis: Redis, id: string) => decodeSignature(await redis.get(k.url(id)))!;

  it('the node behind serves the URL the node ahead stored for the next step: one URL per image and step, one signing', async () => {
    const t0 = Date.now();
    const img = imageBefore(1, t0);
    const ahead = node(0);
    const behind = node(0);
    const r = new Redis(testRedisUrl());
    clients.push(r);
    // 100 s before the boundary by the right clock; the other node is 30 s behind it.
    ahead.clock.set((img.boundary - 100) * 1000);
    behind.clock.set((img.boundary - 130) * 1000);
    const [n0] = await ahead.urls.resolveMany([img]);
    await ahead.store.landed();
    const [n0b] = await behind.urls.resolveMany([img]);
    expect(n0b!.cached).toBe(true);
    expect(n0b!.url).toBe(n0!.url);

    // 5 s past the boundary by the clock ahead: it is in step N+1, the other one 25 s before it.
    ahead.clock.set((img.boundary + 5) * 1000);
    behind.clock.set((img.boundary - 25) * 1000);
    const [n1] = await ahead.urls.resolveMany([img]);
    expect(n1!.cached).toBe(false);
    expect(n1!.expiresAt).toBe((img.boundary + TTL) * 1000);
    await ahead.store.landed();
    // Every request of the node behind, until its own boundary and past it, is that URL, from
    // the cache: it signs nothing and announces nothing.
    for (let s = 0; s < 40; s += 5) {
      behind.clock.set((img.boundary - 25 + s) * 1000);
      ahead.clock.set((img.boundary + 5 + s) * 1000);
      for (const n of [behind, ahead]) {
        const [u] = await n.urls.resolveMany([img]);
        expect(u!.url).toBe(n1!.url);
        expect(u!.cached).toBe(true);
        await n.store.landed();
      }
    }
    expect(behind.signed).toEqual([]);
    expect(behind.events).toEqual([]);
    expect(ahead.signed).toEqual([img.key, img.key]);
    expect(ahead.events.map((e) => e.imageId)).toEqual([img.id, img.id]);
    expect((await stored(r, img.id)).end).toBe(img.boundary + TTL);
    expect(await r.zscore(k.schedule, img.id)).toBe(String((img.boundary + STEP) * 1000));
  });

  it('the store keeps the later window whoever writes last, and the schedule the due time it set', async () => {
    const t0 = Date.now();
    const img = imageBefore(2, t0);
    const ahead = node((img.boundary + 2) * 1000);
    const behind = node((img.boundary - 28) * 1000);
    const r = new Redis(testRedisUrl());
    clients.push(r);
    await Promise.all([ahead.store.ping(), behind.store.ping()]);
    // Both miss at once (nothing cached): each signs its own step, and whichever write-back
    // lands last, the next step's URL is what stays.
    const [[a], [b]] = await Promise.all([ahead.urls.resolveMany([img]), behind.urls.resolveMany([img])]);
    await Promise.all([ahead.store.landed(), behind.store.landed()]);
    expect(a!.expiresAt).toBe((img.boundary + TTL) * 1000);
    expect(b!.expiresAt).toBe((img.boundary - STEP + TTL) * 1000);
    expect((await stored(r, img.id)).end).toBe(img.boundary + TTL);
    expect(await r.zscore(k.schedule, img.id)).toBe(String((img.boundary + STEP) * 1000));
    // A refresh written by the node behind (its step N) after it: not stored, the due time
    // stays where the later window put it, no refresh counted.
    await behind.urls.refreshMany([img], { strict: true });
    expect((await stored(r, img.id)).end).toBe(img.boundary + TTL);
    expect(await r.zscore(k.schedule, img.id)).toBe(String((img.boundary + STEP) * 1000));
    expect(await r.hget(k.meta(img.id), 'r')).toBeNull();
    // The same window again (the node ahead re-signs it) is written as before, and counted.
    await ahead.urls.refreshMany([img], { strict: true });
    expect(await r.hget(k.meta(img.id), 'r')).toBe('1');
    expect(await r.zscore(k.schedule, img.id)).toBe(String((img.boundary + STEP) * 1000));
    // Read back by the node behind (28 s behind): a hit.
    const [b2] = await behind.urls.resolveMany([img]);
    expect(b2!.cached).toBe(true);
    expect(b2!.url).toBe(a!.url);
  });

  it(`accepts the next step's URL only within the back-dating (${CLOCK_SKEW_SECONDS} s) before its boundary`, async () => {
    const t0 = Date.now();
    const img = imageBefore(3, t0);
    const ahead = node((img.boundary + 1) * 1000);
    const [next] = await ahead.urls.resolveMany([img]);
    await ahead.store.landed();
    const r = new Redis(testRedisUrl());
    clients.push(r);
    const due = await r.zscore(k.schedule, img.id);

    // Within the bound: the next step's URL is valid at the store already (its window starts
    // CLOCK_SKEW_SECONDS before its step).
    const near = node((img.boundary - CLOCK_SKEW_SECONDS) * 1000);
    const [hit] = await near.urls.resolveMany([img]);
    expect(hit!.cached).toBe(true);
    expect(hit!.url).toBe(next!.url);
    expect(near.signed).toEqual([]);

    // Past it: a miss. The node signs its own step's URL for the answer, and neither writes it
    // back (the store keeps the later one) nor announces it.
    const far = node((img.boundary - CLOCK_SKEW_SECONDS - 1) * 1000);
    const [own] = await far.urls.resolveMany([img]);
    await far.store.landed();
    expect(own!.cached).toBe(false);
    expect(own!.expiresAt).toBe((img.boundary - STEP + TTL) * 1000);
    expect(far.signed).toEqual([img.key]);
    expect(far.events).toEqual([]);
    expect((await stored(r, img.id)).end).toBe(img.boundary + TTL);
    expect(await r.zscore(k.schedule, img.id)).toBe(due);
    // An older step is never served, however close.
    const past = node((img.boundary + STEP - 1) * 1000);
    const [cur] = await past.urls.resolveMany([img]);
    expect(cur!.url).toBe(next!.url);
    past.clock.set((img.boundary + STEP + 1) * 1000);
    const [after] = await past.urls.resolveMany([img]);
    expect(after!.cached).toBe(false);
    expect(after!.url).not.toBe(next!.url);
  });
});
