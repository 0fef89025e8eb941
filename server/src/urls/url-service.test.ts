import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { answered } from '../../test/support/answered.js';
import { captureLogger } from '../../test/support/logs.js';
import { FakeClock } from '../clock.js';
import { MemoryEventBus } from '../events/memory-bus.js';
import { createMetrics, type Metrics } from '../metrics.js';
import { createLocalStorage, verifyLocalSignature } from '../storage/local.js';
import type { SignWindow, Storage } from '../storage/storage.js';
import { variantOf } from '../storage/variant.js';
import { MemoryUrlStore } from './memory-store.js';
import type { ResolvedUrl, UrlRequest } from './resolved-url.js';
import type { UrlStore } from './store.js';
import { createUrlPath } from './url-path.js';

const SECRET = 'unit-test-secret-unit-test-secret';
const TTL = 3600;
const T0 = Date.UTC(2026, 0, 1);
const req = (n: number, minTtl = 300): UrlRequest => ({ id: `id-${n}`, key: `u/alice/${n}.png`, minTtl });

/** The real local driver, counting its signMany calls and the URLs it builds (a thin decorator, not a mock). */
function counting(storage: Storage): Storage & { calls: string[][]; built: string[] } {
  const calls: string[][] = [];
  const built: string[] = [];
  return Object.assign(Object.create(storage) as Storage, {
    calls,
    built,
    signMany(keys: readonly string[], window: SignWindow) {
      calls.push([...keys]);
      return storage.signMany(keys, window);
    },
    urlFor(...args: Parameters<Storage['urlFor']>) {
      built.push(args[0]);
      return storage.urlFor(...args);
    },
  });
}

/** The real MemoryUrlStore, noting which of its cache methods a resolve called (not a mock). */
class RecordingStore extends MemoryUrlStore {
  readonly calls: string[] = [];
  override read(ids: readonly string[]) {
    this.calls.push('read');
    return super.read(ids);
  }
  override write(entries: Parameters<MemoryUrlStore['write']>[0], reason: 'miss' | 'refresh') {
    this.calls.push('write');
    return super.write(entries, reason);
  }
}

/** The real MemoryUrlStore handing out copies of its signatures, as a cache over the network does. */
class CopyingStore extends MemoryUrlStore {
  override async read(ids: readonly string[]) {
    return (await super.read(ids)).map((s) =>
      s ? { start: s.start, end: s.end, sig: s.sig, by: s.by, region: s.region } : null,
    );
  }
}

/** A cache that is down: every call fails, as a dead Redis does after its command timeout. */
class FailingStore implements UrlStore {
  readonly kind = 'redis' as const;
  calls = 0;
  private fail = async (): Promise<never> => {
    this.calls++;
    throw new Error('Command timed out');
  };
  read = this.fail;
  write = this.fail;
  purge = this.fail;
  forgetImages = this.fail;
  recordAccess = this.fail;
  status = this.fail;
  claimDue = this.fail;
  unschedule = this.fail;
  reschedule = this.fail;
  scheduleInfo = this.fail;
  ping = this.fail;
  close = async () => {};
}

const counter = async (c: { get(): Promise<{ values: { value: number }[] }> }) =>
  (await c.get()).values.reduce((a, v) => a + v.value, 0);

describe('UrlService over the real MemoryUrlStore and local driver', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'signet-url-service-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  function setup(
    opts: {
      store?: UrlStore | ((clock: FakeClock) => UrlStore);
      maxEntries?: number;
      events?: MemoryEventBus;
      /** The local bucket's signing secret (default SECRET). */
      secret?: string;
    } = {},
  ) {
    const clock = new FakeClock(T0);
    const { logger, logs } = captureLogger('info');
    const storage = counting(
      createLocalStorage({
        root: path.join(dir, 'bucket'),
        publicUrl: 'http://gw.test',
        secret: opts.secret ?? SECRET,
      }),
    );
    const store =
      typeof opts.store === 'function'
        ? opts.store(clock)
        : (opts.store ?? new MemoryUrlStore(clock, opts.maxEntries ?? 1000));
    const metrics: Metrics = createMetrics();
    const urls = answered(
      createUrlPath({
        storage,
        store,
        events: opts.events ?? new MemoryEventBus(),
        clock,
        metrics,
        logger,
        timing: { urlTtlSeconds: TTL, refreshAheadSeconds: 900, defaultMinTtlSeconds: 300 },
      }).urls,
    );
    return { clock, logs, storage, store, metrics, urls };
  }

  /** The URL really is a valid local-bucket URL for key, alive at the clock's now. */
  function expectWorks(u: ResolvedUrl, key: string, now: number, secret = SECRET) {
    const url = new URL(u.url);
    expect(decodeURIComponent(url.pathname)).toBe(`/local-bucket/${key}`);
    const window = { start: Number(url.searchParams.get('s')), end: Number(url.searchParams.get('e')) };
    expect(verifyLocalSignature(secret, key, window, url.searchParams.get('sig')!)).toBe(true);
    expect(window.start * 1000).toBeLessThanOrEqual(now);
    expect(window.end * 1000).toBe(u.expiresAt);
    expect(u.expiresAt).toBeGreaterThan(now);
  }

  it('signs misses in one batch and serves them from the cache next time', async () => {
    const { urls, storage, store, clock } = setup({ store: (c) => new RecordingStore(c, 1000) });
    const reqs = [1, 2, 3].map((n) => req(n));
    const first = await urls.resolveMany(reqs);
    // One signing each, in one batch (grouped by grid window: one signing key per window).
    expect(storage.calls.flat().sort()).toEqual(reqs.map((r) => r.key).sort());
    const signCalls = storage.calls.length;
    // The misses: one read of the cache for all three, one write-back of all three.
    const calls = (store as RecordingStore).calls;
    expect(calls).toEqual(['read', 'write']);
    first.forEach((u, i) => {
      expect(u.cached).toBe(false);
      expectWorks(u, reqs[i]!.key, clock.now());
    });
    calls.length = 0;
    const second = await urls.resolveMany(reqs);
    // The hits: one read of the cache for all three, nothing written, nothing signed.
    expect(calls).toEqual(['read']);
    expect(storage.calls).toHaveLength(signCalls);
    expect(second.map((u) => u.url)).toEqual(first.map((u) => u.url));
    expect(second.every((u) => u.cached)).toBe(true);
  });

  it('reads a signature made with other credentials as a miss: after a key rotation each node signs its own', async () => {
    const ROTATED = 'the-rotated-local-signing-secret';
    const before = setup();
    const reqs = [1, 2].map((n) => req(n));
    const old = await before.urls.resolveMany(reqs);
    // A node with the new secret over the same cache: the old node's entries are not its URLs
    // (built around them, they would fail the bucket's check), so it signs its own.
    const after = setup({ store: before.store, secret: ROTATED });
    const got = await after.urls.resolveMany(reqs);
    got.forEach((u, i) => {
      expect(u.cached).toBe(false);
      expect(u.url).not.toBe(old[i]!.url);
      expectWorks(u, reqs[i]!.key, after.clock.now(), ROTATED);
    });
    expect((await after.urls.resolveMany(reqs)).every((u) => u.cached)).toBe(true);
    // A sweep of the old node finds the new node's entry stale for it and signs again.
    const swept = await before.urls.refreshMany([{ id: 'id-1', key: req(1).key }], { onlyStale: true });
    expectWorks(swept.get('id-1')!, req(1).key, before.clock.now());
    // And a page of the old node never hands out a URL built around the other's signature.
    expect((await before.urls.resolveMany(reqs)).map((u) => u.url)).toEqual(old.map((u) => u.url));
  });

  it('keeps a URL built once it is read back, not when a miss signs it: pages seen once do not crowd the memo', async () => {
    const { urls, storage, clock } = setup({ store: (c) => new CopyingStore(c, 1000) });
    const reqs = [1, 2, 3].map((n) => req(n));
    // A miss builds each URL once, for its event and its answer together.
    const first = await urls.resolveMany(reqs);
    expect(storage.built).toEqual(reqs.map((r) => r.key));
    // Read back from the cache (the image is looked at again): built once more, and kept from
    // then on: the next pages are answered from the memo (its hits are one object per URL).
    const second = await urls.resolveMany(reqs);
    expect(second.map((u) => u.url)).toEqual(first.map((u) => u.url));
    expect(storage.built).toHaveLength(6);
    const third = await urls.resolveMany(reqs);
    const fourth = await urls.resolveMany(reqs);
    expect(storage.built).toHaveLength(6);
    expect(third[0]).not.toBe(second[0]);
    expect(fourth[0]).toBe(third[0]);
    // A refresh of a kept image replaces its entry: the next page builds nothing.
    clock.set(first[0]!.refreshAt);
    const refreshed = await urls.refreshMany([{ id: 'id-1', key: req(1).key }]);
    expect(storage.built).toHaveLength(7);
    const after = await urls.resolveMany([req(1)]);
    expect(after[0]!.url).toBe(refreshed.get('id-1')!.url);
    expect(after[0]!.url).not.toBe(first[0]!.url);
    expect(storage.built).toHaveLength(7);
    // The proxy's single images are kept at once (resolveRecent reuses them for a few seconds).
    await urls.resolveRecent(req(4), 5000);
    expect(storage.built).toHaveLength(8);
    await urls.resolveRecent(req(4), 5000);
    await urls.resolveMany([req(4)]);
    expect(storage.built).toHaveLength(8);
  });

  it('single-flight: concurrent batches missing the same ids sign each id once', async () => {
    const { urls, storage, metrics } = setup();
    const reqs = [1, 2, 3, 4].map((n) => req(n));
    const [a, b, c] = await Promise.all([
      urls.resolveMany(reqs),
      urls.resolveMany([...reqs].reverse()),
      urls.resolveMany([req(2), req(5)]),
    ]);
    const signedKeys = storage.calls.flat();
    expect(signedKeys.sort()).toEqual([1, 2, 3, 4, 5].map((n) => req(n).key).sort());
    expect(await counter(metrics.signatures)).toBe(5);
    // Everyone got the same URL for the same id.
    expect(b!.map((u) => u.url).reverse()).toEqual(a!.map((u) => u.url));
    expect(c![0]!.url).toBe(a![1]!.url);
  });

  it('single-flight under load: 20 concurrent page loads of 50 ids sign 50 URLs', async () => {
    const { urls, metrics } = setup();
    const reqs = Array.from({ length: 50 }, (_, n) => req(n));
    const pages = await Promise.all(Array.from({ length: 20 }, () => urls.resolveMany(reqs)));
    expect(await counter(metrics.signatures)).toBe(50);
    for (const p of pages) expect(p.map((u) => u.url)).toEqual(pages[0]!.map((u) => u.url));
  });

  it('one URL per step: a hit is served while its step lasts, a request wanting more life gets one of its own', async () => {
    const { urls, storage, clock, metrics } = setup();
    const [signed] = await urls.resolveMany([req(1)]);
    const step = TTL - 900;
    expect(signed!.expiresAt - signed!.refreshAt).toBe(900_000);
    // Still this step, the URL has more than REFRESH_AHEAD left: the same URL, from the cache.
    clock.set(signed!.refreshAt - 1000);
    const [same] = await urls.resolveMany([req(1, 900)]);
    expect(same).toMatchObject({ cached: true, url: signed!.url });
    // More than the step's URL has left: a URL of its own, not cached, counted.
    const [own] = await urls.resolveMany([req(1, 1200)]);
    expect(own!.cached).toBe(false);
    expect(own!.url).not.toBe(signed!.url);
    expect(own!.expiresAt - clock.now()).toBeGreaterThanOrEqual(1200_000);
    expectWorks(own!, req(1).key, clock.now());
    expect(await counter(metrics.offGridSignatures)).toBe(1);
    const [stillGrid] = await urls.resolveMany([req(1)]);
    expect(stillGrid!.url).toBe(signed!.url);
    // Two requests for one id in one batch: each gets what it asked for. The one wanting more
    // life has a URL of its own; the other keeps the step's, byte for byte (it was answered from
    // the cache: a one-off URL there would cost every browser and CDN a download).
    const both = await urls.resolveMany([req(1, 0), req(1, 1200)]);
    expect(both[0]!.url).toBe(signed!.url);
    expect(both[1]!.url).not.toBe(signed!.url);
    expect(both[1]!.expiresAt - clock.now()).toBeGreaterThanOrEqual(1200_000);
    // The step ends: the next step's URL, once, for everyone.
    const calls = storage.calls.length;
    clock.advance(1_000);
    const [next] = await urls.resolveMany([req(1)]);
    expect(next!.url).not.toBe(signed!.url);
    expect(next!.expiresAt).toBe(signed!.expiresAt + step * 1000);
    const [nextAgain] = await urls.resolveMany([req(1)]);
    expect(nextAgain).toMatchObject({ cached: true, url: next!.url });
    expect(storage.calls.length).toBe(calls + 1);
  });

  it('a re-sign within the step is the byte-identical URL; after the boundary a new one', async () => {
    const { urls, clock } = setup();
    const [first] = await urls.resolveMany([req(1)]);
    const [again] = await urls.resolveMany([req(1)]);
    expect(again!.url).toBe(first!.url);
    clock.advance(5_000);
    const fresh = (await urls.refreshMany([{ id: 'id-1', key: req(1).key }])).get('id-1')!;
    expect(fresh.url).toBe(first!.url);
    clock.set(first!.refreshAt);
    const next = (await urls.refreshMany([{ id: 'id-1', key: req(1).key }])).get('id-1')!;
    expect(next.url).not.toBe(first!.url);
    const [after] = await urls.resolveMany([req(1)]);
    expect(after!.url).toBe(next.url);
    expectWorks(after!, req(1).key, clock.now());
  });

  it('nodes with other caches (or none) and clocks seconds apart hand out the same URL within a step', async () => {
    const a = setup();
    const b = setup();
    const reqs = Array.from({ length: 100 }, (_, n) => req(n));
    // b's clock runs 3 s ahead; no step starts in between (a's step boundaries are known).
    const first = await a.urls.resolveMany(reqs);
    const nextBoundary = Math.min(...first.map((u) => u.refreshAt));
    const lastStart = Math.max(...first.map((u) => u.refreshAt - (TTL - 900) * 1000));
    const at = Math.max(a.clock.now(), lastStart) + 1_000;
    if (at + 3_000 < nextBoundary) {
      a.clock.set(at);
      b.clock.set(at + 3_000);
    }
    const [fromA, fromB] = [await a.urls.resolveMany(reqs), await b.urls.resolveMany(reqs)];
    const aligned = fromA.filter(
      (u, i) => u.refreshAt > b.clock.now() && fromB[i]!.refreshAt === u.refreshAt,
    );
    expect(aligned.length).toBeGreaterThan(90);
    fromA.forEach((u, i) => {
      if (fromB[i]!.refreshAt === u.refreshAt) expect(fromB[i]!.url).toBe(u.url);
    });
  });

  it('resolveRecent reuses what this node saw for a few seconds, then asks the cache again', async () => {
    const { urls, store, clock } = setup();
    let reads = 0;
    const read = store.read.bind(store);
    store.read = (ids) => {
      reads++;
      return read(ids);
    };
    const first = await urls.resolveRecent(req(1), 5000);
    expect(reads).toBe(1);
    clock.advance(4_000);
    const again = await urls.resolveRecent(req(1), 5000);
    expect(again.url).toBe(first.url);
    expect(reads).toBe(1);
    // Another node re-signs in the same step (same shared cache): the same URL, nothing to see.
    const other = setup({ store });
    other.clock.set(clock.now() + 1_000);
    const elsewhere = (await other.urls.refreshMany([{ id: 'id-1', key: req(1).key }])).get('id-1')!;
    expect(elsewhere.url).toBe(first.url);
    expect((await urls.resolveRecent(req(1), 5000)).url).toBe(first.url);
    clock.advance(5_001);
    const seen = await urls.resolveRecent(req(1), 5000);
    expect(seen.url).toBe(elsewhere.url);
    expect(reads).toBe(2);
    // Past the step's end, memory is not a reason to hand out the old step's URL.
    clock.set(first.refreshAt);
    const stepped = await urls.resolveRecent(req(1), 5000);
    expect(stepped.url).not.toBe(first.url);
    expect(reads).toBe(3);
    clock.advance(1);
    await urls.resolveRecent(req(1), 5000);
    expect(reads).toBe(3);
    // Not long enough to live: never served from memory.
    clock.advance(1_000);
    await urls.resolveRecent(req(1, TTL - 1), 5000);
    expect(reads).toBe(4);
    // A purge (the image was deleted) forgets it at once.
    await urls.resolveRecent(req(1), 5000);
    expect(reads).toBe(4);
    await urls.purge(['id-1']);
    await urls.resolveRecent(req(1), 5000);
    expect(reads).toBe(5);
    expectWorks(seen, req(1).key, clock.now());
  });

  it('a request wanting more life gets a URL of its own, and the image’s other requests keep the step’s', async () => {
    const { urls, clock } = setup();
    // Where the step's URL has less than TTL - 1 s left (it always does once the step began).
    clock.advance(61_000);
    const step = async (n: number) => (await urls.resolveMany([req(n)]))[0]!;
    for (const warm of [true, false]) {
      const n = warm ? 1 : 2;
      const alone = warm ? await step(n) : undefined;
      const [plain, long, plainAgain] = await urls.resolveMany([req(n), req(n, TTL - 1), req(n, 60)]);
      expect(long!.expiresAt - clock.now()).toBeGreaterThanOrEqual((TTL - 1) * 1000);
      expect(long!.url).not.toBe(plain!.url);
      // The step's URL, byte for byte, for both requests that did not ask for more.
      expect(plainAgain!.url).toBe(plain!.url);
      expect(plain!.url).toBe((alone ?? (await step(n))).url);
      expectWorks(plain!, req(n).key, clock.now());
      expectWorks(long!, req(n).key, clock.now());
    }
  });

  it('counts a variant request served from the cache as a hit, beside one of the same image that got its own URL', async () => {
    const { urls, clock, metrics } = setup();
    const variant = variantOf({ width: 320, height: 320, fit: 'cover', format: 'webp', quality: 75 });
    const thumb = (minTtl: number): UrlRequest => ({
      id: `id-1~${variant.key}`,
      key: 'u/alice/1.png',
      variant,
      preset: 'thumb',
      minTtl,
    });
    clock.advance(61_000);
    await urls.resolveMany([thumb(300)]); // signed
    await urls.resolveMany([thumb(300)]); // read back: a hit
    const count = async () => ({
      signed: await counter(metrics.variantSignatures),
      hits: await counter(metrics.variantCacheHits),
    });
    const before = await count();
    const [plain, long] = await urls.resolveMany([thumb(300), thumb(TTL - 1)]);
    expect(plain!.cached).toBe(true);
    expect(long!.cached).toBe(false);
    const after = await count();
    expect({ signed: after.signed - before.signed, hits: after.hits - before.hits }).toEqual({
      signed: 1,
      hits: 1,
    });
  });

  it('never hands out an expired or too-short URL as time passes', async () => {
    const { urls, clock } = setup();
    const reqs = [1, 2, 3].map((n) => req(n));
    for (let step = 0; step < 100; step++) {
      clock.advance(97_000);
      const minTtl = [0, 300, 1800, TTL - 1][step % 4]!;
      const out = await urls.resolveMany(reqs.map((r) => ({ ...r, minTtl })));
      for (const [i, u] of out.entries()) {
        expect(u.expiresAt - clock.now()).toBeGreaterThanOrEqual(minTtl * 1000);
        expectWorks(u, reqs[i]!.key, clock.now());
      }
    }
  });

  it('a failing cache still answers with working URLs, counts the fallback and logs once', async () => {
    const store = new FailingStore();
    const { urls, metrics, logs, clock } = setup({ store });
    const reqs = [1, 2, 3].map((n) => req(n));
    for (let i = 0; i < 3; i++) {
      const out = await urls.resolveMany(reqs);
      out.forEach((u, j) => {
        expect(u.cached).toBe(false);
        expectWorks(u, reqs[j]!.key, clock.now());
      });
    }
    // The breaker spares a failing cache: one call failed, the next requests skipped it.
    expect(store.calls).toBe(1);
    expect(await counter(metrics.redisFallbacks)).toBeGreaterThanOrEqual(3);
    // Still skipped: the breaker stays open, so one more resolve does not touch the cache either.
    await urls.resolveMany(reqs);
    expect(store.calls).toBe(1);
    expect(logs.filter((l) => l.includes('URL cache unavailable'))).toHaveLength(1);
    // Forced refreshes work too (not strict), and a strict one reports the failure.
    const refreshed = await urls.refreshMany([{ id: 'id-1', key: req(1).key }]);
    expectWorks(refreshed.get('id-1')!, req(1).key, clock.now());
    await expect(urls.refreshMany([{ id: 'id-1', key: req(1).key }], { strict: true })).rejects.toThrow(
      /timed out|cooling down/,
    );
  });

  it('a sweep announces its URLs with the write-back, not after its reply: a node that dies in between leaves no step unannounced', async () => {
    // The write lands in the store and its reply never comes back: the node was killed as Redis took it.
    class UnansweredStore extends MemoryUrlStore {
      override write(entries: Parameters<MemoryUrlStore['write']>[0], reason: 'miss' | 'refresh') {
        void super.write(entries, reason);
        return new Promise<void>(() => {});
      }
    }
    const events = new MemoryEventBus();
    const heard: string[] = [];
    events.subscribe(['id-1', 'id-2'], (e) => heard.push(e.imageId));
    const { urls, store } = setup({ store: (c) => new UnansweredStore(c, 1000), events });
    let settled = false;
    void urls
      .refreshMany(
        [1, 2].map((n) => ({ id: `id-${n}`, key: req(n).key })),
        { strict: true },
      )
      .finally(() => {
        settled = true;
      });
    await new Promise((r) => setImmediate(r));
    expect(settled).toBe(false);
    // Stored (what every other node would read as this step's URL) and announced.
    const stored = await store.read(['id-1', 'id-2']);
    expect(stored.every((s) => s !== null)).toBe(true);
    expect(heard.sort()).toEqual(['id-1', 'id-2']);
  });

  it('a purge right behind a cold answer is not undone by its write-back, sent after the answer', async () => {
    const clock = new FakeClock(T0);
    const store = new MemoryUrlStore(clock, 100);
    const { urls } = createUrlPath({
      storage: createLocalStorage({
        root: path.join(dir, 'bucket'),
        publicUrl: 'http://gw.test',
        secret: SECRET,
      }),
      store,
      events: new MemoryEventBus(),
      clock,
      metrics: createMetrics(),
      logger: captureLogger('info').logger,
      timing: { urlTtlSeconds: TTL, refreshAheadSeconds: 900, defaultMinTtlSeconds: 300 },
    });
    const [signed] = await urls.resolveMany([req(1), req(2)]);
    expect(signed!.cached).toBe(false);
    // Same tick as the answer: the write-back has not been sent yet.
    await urls.purge(['id-1']);
    await new Promise<void>((resolve) => setImmediate(resolve));
    const [gone, kept] = await store.status(['id-1', 'id-2']);
    expect(gone!.sig).toBeNull();
    expect(kept!.sig).not.toBeNull();
  });

  it('the memory store is bounded: the oldest written entries go first', async () => {
    const { urls, store, storage } = setup({ maxEntries: 3 });
    await urls.resolveMany([1, 2, 3].map((n) => req(n)));
    await urls.resolveMany([req(1)]); // a read does not make an entry younger...
    await urls.resolveMany([req(4)]); // ...so this write pushes out id-1
    const status = await store.status(['id-1', 'id-2', 'id-3', 'id-4']);
    expect(status.map((s) => s.sig !== null)).toEqual([false, true, true, true]);

    const before = storage.calls.length;
    const again = await urls.resolveMany([req(2), req(3), req(4)]);
    expect(again.every((u) => u.cached)).toBe(true);
    const [evicted] = await urls.resolveMany([req(1)]);
    expect(evicted!.cached).toBe(false);
    expect(storage.calls.length - before).toBe(1);
  });

  it('the memory store drops an entry when its TTL ends, before the URL does', async () => {
    const clock = new FakeClock(T0);
    const store = new MemoryUrlStore(clock, 10);
    const sig = { start: T0 / 1000, end: T0 / 1000 + TTL, sig: 'x' };
    await store.write([{ id: 'a', sig, ttlMs: 1000, refreshAt: T0 + 500 }], 'miss');
    expect(await store.read(['a', 'b'])).toEqual([sig, null]);
    clock.advance(1000);
    expect(await store.read(['a'])).toEqual([null]);
  });
});
