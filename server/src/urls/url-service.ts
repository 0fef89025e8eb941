import type { Clock } from '../clock.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import type { SignWindow, Storage, UrlSignature } from '../storage/storage.js';
import type { AccessTracker } from './access-tracker.js';
import { CacheBreaker } from './cache-breaker.js';
import type { StoreEntry, UrlStore } from './store.js';

export interface UrlRequest {
  id: string;
  key: string;
  /** Seconds the URL must still be valid for when it is handed out. */
  minTtl: number;
}

export interface ResolvedUrl {
  url: string;
  /** Epoch ms. */
  expiresAt: number;
  refreshAt: number;
  cached: boolean;
}

export interface UrlTiming {
  urlTtlSeconds: number;
  refreshAheadSeconds: number;
  defaultMinTtlSeconds: number;
}

/** Something that wants to hear about every re-signed URL (the event bus). */
export type SignedListener = (events: { id: string; url: ResolvedUrl }[], reason: 'miss' | 'refresh') => void;

export interface UrlServiceDeps {
  storage: Storage;
  store: UrlStore;
  clock: Clock;
  metrics: Metrics;
  logger: Logger;
  timing: UrlTiming;
  access: AccessTracker;
}

/** URLs kept built in process: a few MB, enough for every image a node serves often. */
const URL_MEMO_ENTRIES = 20_000;

/** Signatures start a little in the past so a storage clock running behind still accepts them. */
const CLOCK_SKEW_SECONDS = 60;

/** FNV-1a: a cheap, stable hash so every node picks the same jitter for an image. */
function hash32(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/**
 * The hot path (DESIGN §5 "The URL path"): resolve many ids in one cache round trip, sign the
 * misses in bulk with one window, write them back in one more, never fail because Redis did.
 */
export class UrlService {
  private readonly inflight = new Map<string, Promise<UrlSignature>>();
  /** Built URLs by image id, with when this node last had them confirmed (bounded; oldest out). */
  private readonly urls = new Map<
    string,
    { start: number; end: number; key: string; url: string; seenAt: number }
  >();
  private readonly listeners: SignedListener[] = [];
  private readonly breaker = new CacheBreaker();

  constructor(private readonly d: UrlServiceDeps) {}

  onSigned(listener: SignedListener): void {
    this.listeners.push(listener);
  }

  /** False while the cache is failing and skipped (readiness reports "degraded"). */
  cacheHealthy(): boolean {
    return !this.breaker.open;
  }

  /**
   * One image's URL for a single-image request (the proxy's redirect): the URL this node read or
   * signed for it within `withinMs`, if it still has `minTtl` to live, else `resolveMany`. A Redis
   * round trip is most of what a redirect costs; reusing a URL for seconds is well inside what
   * the redirect's own `max-age` already lets every browser do. A re-sign elsewhere is seen here
   * at most `withinMs` late; until then the old URL, still valid, is served.
   */
  async resolveRecent(req: UrlRequest, withinMs: number): Promise<ResolvedUrl> {
    const started = performance.now();
    const now = this.d.clock.now();
    const memo = this.urls.get(req.id);
    if (
      !memo ||
      memo.key !== req.key ||
      now - memo.seenAt > withinMs ||
      memo.end * 1000 - now < req.minTtl * 1000
    ) {
      return (await this.resolveMany([req]))[0]!;
    }
    const expiresAt = memo.end * 1000;
    const out = { url: memo.url, expiresAt, refreshAt: this.refreshAtFor(req.id, expiresAt), cached: true };
    this.account([req.id], now, 0, started, [out]);
    return out;
  }

  async resolveMany(reqs: readonly UrlRequest[]): Promise<ResolvedUrl[]> {
    const started = performance.now();
    const { clock, store } = this.d;
    const ids = uniqueIds(reqs);
    let cached: (UrlSignature | null)[] = [];
    if (this.breaker.allow()) {
      try {
        cached = await store.read(ids);
        this.breaker.succeeded();
      } catch (err) {
        this.cacheFailed(err);
      }
    } else {
      this.countFallback();
    }
    const now = clock.now();
    const byId = new Map<string, UrlSignature | null>();
    ids.forEach((id, i) => {
      byId.set(id, cached[i] ?? null);
    });

    // A hit is good only if it lives long enough for every request of that id.
    const needs = new Map<string, UrlRequest>();
    for (const r of reqs) {
      const sig = byId.get(r.id);
      if (!sig || sig.end * 1000 - now < r.minTtl * 1000) needs.set(r.id, r);
    }
    const fresh =
      needs.size > 0 ? await this.signMissing([...needs.values()]) : new Map<string, UrlSignature>();

    const out = reqs.map((r) => {
      const f = fresh.get(r.id);
      const sig = f ?? byId.get(r.id)!;
      return this.toResolved(r.id, r.key, sig, !f);
    });
    this.account(ids, now, needs.size, started, out);
    return out;
  }

  /** Metrics, access tracking and usage counters of one resolve (all in process, no I/O). */
  private account(
    ids: readonly string[],
    now: number,
    misses: number,
    started: number,
    out: readonly ResolvedUrl[],
  ): void {
    const { metrics, access } = this.d;
    metrics.cacheHits.inc(ids.length - misses);
    metrics.cacheMisses.inc(misses);
    access.record(ids, now, ids.length - misses, misses);
    const elapsed = performance.now() - started;
    metrics.resolveSeconds.observe(elapsed / 1000);
    access.recordResolve(elapsed);
    for (const o of out) metrics.servedRemainingSeconds.observe(Math.max(0, (o.expiresAt - now) / 1000));
  }

  /**
   * Re-signs the given images now, whatever the cache holds (refresh sweeps, forced refreshes).
   * With `strict`, a failed cache write throws, so a sweep leaves the work to its lease.
   */
  async refreshMany(
    items: readonly { id: string; key: string }[],
    options: { strict?: boolean } = {},
  ): Promise<Map<string, ResolvedUrl>> {
    const sigs = await this.signAndStore(items, 'refresh', options.strict ?? false);
    const out = new Map<string, ResolvedUrl>();
    for (const it of items) out.set(it.id, this.toResolved(it.id, it.key, sigs.get(it.id)!, false));
    return out;
  }

  /** Drops the cached URLs of ids (a deleted image must not keep a working URL in the cache). */
  async purge(ids: readonly string[]): Promise<void> {
    for (const id of ids) this.urls.delete(id);
    await this.d.store.purge(ids);
  }

  toResolved(id: string, key: string, sig: UrlSignature, cached: boolean): ResolvedUrl {
    const expiresAt = sig.end * 1000;
    return { url: this.urlOf(id, key, sig), expiresAt, refreshAt: this.refreshAtFor(id, expiresAt), cached };
  }

  /**
   * The URL of a signature, built once per signature: a warm page hands out the same URLs request
   * after request, and rebuilding a page's worth of long strings each time is CPU and garbage
   * (collected while requests wait on Redis) for nothing.
   */
  private urlOf(id: string, key: string, sig: UrlSignature): string {
    const memo = this.urls.get(id);
    const now = this.d.clock.now();
    // Signing is deterministic: one key and one window give one signature, so one URL. (A URL
    // another node signed with other credentials for the same second is as valid as this one.)
    if (memo && memo.start === sig.start && memo.end === sig.end && memo.key === key) {
      memo.seenAt = now;
      return memo.url;
    }
    const url = this.d.storage.urlFor(key, sig);
    if (!memo && this.urls.size >= URL_MEMO_ENTRIES) this.urls.delete(this.urls.keys().next().value!);
    this.urls.set(id, { start: sig.start, end: sig.end, key, url, seenAt: now });
    return url;
  }

  /** When the schedule re-signs a URL: REFRESH_AHEAD before expiry, plus jitter scaled to the TTL. */
  refreshAtFor(id: string, expiresAt: number): number {
    const { refreshAheadSeconds } = this.d.timing;
    const jitterMs = Math.min(60_000, refreshAheadSeconds * 100); // at most 10% of the lead time
    return expiresAt - refreshAheadSeconds * 1000 + (hash32(id) % 1000) * (jitterMs / 1000);
  }

  /** Signs what is missing, sharing in-flight signings of the same id (single-flight). */
  private async signMissing(reqs: UrlRequest[]): Promise<Map<string, UrlSignature>> {
    const out = new Map<string, UrlSignature>();
    const waits: Promise<void>[] = [];
    const mine: UrlRequest[] = [];
    const again: UrlRequest[] = [];
    const now = this.d.clock.now();
    for (const r of reqs) {
      const pending = this.inflight.get(r.id);
      if (pending) {
        waits.push(
          pending.then((sig) => {
            // A signing that started long ago may not satisfy this request's minTtl.
            if (sig.end * 1000 - now >= r.minTtl * 1000) out.set(r.id, sig);
            else again.push(r);
          }),
        );
      } else {
        mine.push(r);
      }
    }
    // Start our own signing before the first await: that registers it in flight, so a concurrent
    // batch that read the same misses waits for it instead of signing them again.
    const own = mine.length > 0 ? this.signAndStore(mine, 'miss') : undefined;
    const [signed] = await Promise.all([own, Promise.all(waits)]);
    for (const [id, sig] of signed ?? []) out.set(id, sig);
    if (again.length > 0) {
      for (const [id, sig] of await this.signAndStore(again, 'miss')) out.set(id, sig);
    }
    return out;
  }

  private async signAndStore(
    items: readonly { id: string; key: string }[],
    reason: 'miss' | 'refresh',
    strict = false,
  ): Promise<Map<string, UrlSignature>> {
    const { storage, store, clock, metrics, timing } = this.d;
    const nowMs = clock.now();
    const nowS = Math.floor(nowMs / 1000);
    const window: SignWindow = { start: nowS - CLOCK_SKEW_SECONDS, end: nowS + timing.urlTtlSeconds };
    const keys = items.map((i) => i.key);
    const sigs = storage.signMany(keys, window);
    metrics.signatures.inc({ reason }, items.length);
    if (reason === 'refresh') {
      metrics.refreshes.inc(items.length);
      this.d.access.recordRefreshes(items.length);
    }
    const result = new Map<string, UrlSignature>();
    const entries: StoreEntry[] = items.map((it, i) => {
      const sig: UrlSignature = { ...window, sig: sigs[i]! };
      result.set(it.id, sig);
      const expiresAt = window.end * 1000;
      return {
        id: it.id,
        sig,
        // The cache lets go before the URL gets shorter than the default minTtl.
        ttlMs: expiresAt - nowMs - timing.defaultMinTtlSeconds * 1000,
        refreshAt: this.refreshAtFor(it.id, expiresAt),
      };
    });

    let resolveAll!: () => void;
    const written = new Promise<void>((r) => {
      resolveAll = r;
    });
    for (const it of items) {
      const p = written.then(() => result.get(it.id)!);
      this.inflight.set(it.id, p);
    }
    try {
      const writing = this.breaker.allow() ? store.write(entries, reason) : undefined;
      // Told in the same tick, the event publish leaves on the same connection right behind the
      // write-back pipeline: one round trip for both, not one more per cold page. A sweep
      // (strict) publishes only what it managed to store, below.
      if (!strict) this.notify(items, result, reason);
      if (writing) {
        try {
          await writing;
          this.breaker.succeeded();
        } catch (err) {
          this.cacheFailed(err);
          if (strict) throw err;
        }
      } else if (strict) {
        // Cooling down after a failure: a sweep leaves the batch to its lease.
        throw new Error('URL cache unavailable (cooling down after a failure)');
      }
    } finally {
      resolveAll();
      for (const it of items) this.inflight.delete(it.id);
    }
    if (strict) this.notify(items, result, reason);
    return result;
  }

  /** Listeners observe; one that throws must not fail the signing (nor leave a write unawaited). */
  private notify(
    items: readonly { id: string; key: string }[],
    result: Map<string, UrlSignature>,
    reason: 'miss' | 'refresh',
  ): void {
    if (this.listeners.length === 0) return;
    const events = items.map((it) => ({
      id: it.id,
      url: this.toResolved(it.id, it.key, result.get(it.id)!, false),
    }));
    for (const l of this.listeners) {
      try {
        l(events, reason);
      } catch (err) {
        this.d.logger.error({ err }, 'signed-URL listener failed');
      }
    }
  }

  private cacheFailed(err: unknown): void {
    if (!this.breaker.open) {
      this.d.logger.warn({ err: (err as Error).message }, 'URL cache unavailable; signing directly');
    }
    this.breaker.failed();
    this.countFallback();
  }

  private countFallback(): void {
    this.d.metrics.redisFallbacks.inc();
    this.d.access.recordFallback();
  }
}

function uniqueIds(reqs: readonly UrlRequest[]): string[] {
  if (reqs.length === 1) return [reqs[0]!.id];
  return [...new Set(reqs.map((r) => r.id))];
}
