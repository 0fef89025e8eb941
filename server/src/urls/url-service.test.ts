import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeClock } from '../clock.js';
import { MemoryEventBus } from '../events/memory-bus.js';
import { createLogger } from '../logger.js';
import { createMetrics, type Metrics } from '../metrics.js';
import { createLocalStorage, verifyLocalSignature } from '../storage/local.js';
import type { SignWindow, Storage } from '../storage/storage.js';
import { MemoryUrlStore } from './memory-store.js';
import type { ResolvedUrl, UrlRequest } from './resolved-url.js';
import type { UrlStore } from './store.js';
import { createUrlPath } from './url-path.js';

const SECRET = 'unit-test-secret-unit-test-secret';
const TTL = 3600;
const T0 = Date.UTC(2026, 0, 1);
const req = (n: number, minTtl = 300): UrlRequest => ({ id: `id-${n}`, key: `u/alice/${n}.png`, minTtl });

/** The real local driver, counting its signMany calls (a thin decorator, not a mock). */
function counting(storage: Storage): Storage & { calls: string[][] } {
  const calls: string[][] = [];
  return Object.assign(Object.create(storage) as Storage, {
    calls,
    signMany(keys: readonly string[], window: SignWindow) {
      calls.push([...keys]);
      return storage.signMany(keys, window);
    },
    urlFor: storage.urlFor.bind(storage),
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
  recordAccess = this.fail;
  status = this.fail;
  claimDue = this.fail;
  unschedule = this.fail;
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

  function setup(opts: { store?: UrlStore | ((clock: FakeClock) => UrlStore); maxEntries?: number } = {}) {
    const clock = new FakeClock(T0);
    const logs: string[] = [];
    const logger = createLogger(
      'info',
      new Writable({
        write(chunk, _enc, cb) {
          logs.push(chunk.toString());
          cb();
        },
      }),
    );
    const storage = counting(
      createLocalStorage({ root: path.join(dir, 'bucket'), publicUrl: 'http://gw.test', secret: SECRET }),
    );
    const store =
      typeof opts.store === 'function'
        ? opts.store(clock)
        : (opts.store ?? new MemoryUrlStore(clock, opts.maxEntries ?? 1000));
    const metrics: Metrics = createMetrics();
    const { urls } = createUrlPath({
      storage,
      store,
      events: new MemoryEventBus(),
      clock,
      metrics,
      logger,
      timing: { urlTtlSeconds: TTL, refreshAheadSeconds: 900, defaultMinTtlSeconds: 300 },
    });
    return { clock, logs, storage, store, metrics, urls };
  }

  /** The URL really is a valid local-bucket URL for key, alive at the clock's now. */
  function expectWorks(u: ResolvedUrl, key: string, now: number) {
    const url = new URL(u.url);
    expect(decodeURIComponent(url.pathname)).toBe(`/local-bucket/${key}`);
    const window = { start: Number(url.searchParams.get('s')), end: Number(url.searchParams.get('e')) };
    expect(verifyLocalSignature(SECRET, key, window, url.searchParams.get('sig')!)).toBe(true);
    expect(window.start * 1000).toBeLessThanOrEqual(now);
    expect(window.end * 1000).toBe(u.expiresAt);
    expect(u.expiresAt).toBeGreaterThan(now);
  }

  it('signs misses in one batch and serves them from the cache next time', async () => {
    const { urls, storage, store, clock } = setup({ store: (c) => new RecordingStore(c, 1000) });
    const reqs = [1, 2, 3].map((n) => req(n));
    const first = await urls.resolveMany(reqs);
    expect(storage.calls).toEqual([reqs.map((r) => r.key)]);
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
    expect(storage.calls).toHaveLength(1);
    expect(second.map((u) => u.url)).toEqual(first.map((u) => u.url));
    expect(second.every((u) => u.cached)).toBe(true);
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

  it('re-signs a hit that has less than minTtl left, and serves one that has enough', async () => {
    const { urls, storage, clock } = setup();
    const [signed] = await urls.resolveMany([req(1)]);
    clock.advance((TTL - 600) * 1000); // 600 s left: still cached (the cache lets go at 300 s)

    const [enough] = await urls.resolveMany([req(1, 600)]);
    expect(enough!.cached).toBe(true);
    expect(enough!.url).toBe(signed!.url);

    const [short] = await urls.resolveMany([req(1, 601)]);
    expect(short!.cached).toBe(false);
    expect(short!.expiresAt - clock.now()).toBeGreaterThanOrEqual(601_000);
    expectWorks(short!, req(1).key, clock.now());
    expect(storage.calls).toHaveLength(2);

    // Two requests for one id in one batch: the stricter one decides, both get the fresh URL.
    clock.advance((TTL - 500) * 1000);
    const both = await urls.resolveMany([req(1, 0), req(1, 1200)]);
    expect(storage.calls).toHaveLength(3);
    expect(both[0]!.url).toBe(both[1]!.url);
    for (const u of both) expect(u.expiresAt - clock.now()).toBeGreaterThanOrEqual(1200_000);
  });

  it('URLs built once per signature: the same string while cached, the new one after a re-sign', async () => {
    const { urls, clock } = setup();
    const [first] = await urls.resolveMany([req(1)]);
    const [again] = await urls.resolveMany([req(1)]);
    expect(again!.url).toBe(first!.url);
    clock.advance(5_000);
    const fresh = (await urls.refreshMany([{ id: 'id-1', key: req(1).key }])).get('id-1')!;
    expect(fresh.url).not.toBe(first!.url);
    const [after] = await urls.resolveMany([req(1)]);
    expect(after!.url).toBe(fresh.url);
    expectWorks(after!, req(1).key, clock.now());
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
    // Another node re-signs (same shared cache): seen here once the window has passed.
    const other = setup({ store });
    other.clock.set(clock.now() + 1_000);
    const elsewhere = (await other.urls.refreshMany([{ id: 'id-1', key: req(1).key }])).get('id-1')!;
    expect((await urls.resolveRecent(req(1), 5000)).url).toBe(first.url);
    clock.advance(5_001);
    const seen = await urls.resolveRecent(req(1), 5000);
    expect(seen.url).toBe(elsewhere.url);
    expect(reads).toBe(2);
    // Not long enough to live: never served from memory.
    clock.advance(1_000);
    await urls.resolveRecent(req(1, TTL), 5000);
    expect(reads).toBe(3);
    // A purge (the image was deleted) forgets it at once.
    await urls.resolveRecent(req(1), 5000);
    expect(reads).toBe(3);
    await urls.purge(['id-1']);
    await urls.resolveRecent(req(1), 5000);
    expect(reads).toBe(4);
    expectWorks(seen, req(1).key, clock.now());
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
