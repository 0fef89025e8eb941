import type { Clock } from '../clock.js';
import type { SignedUrlEvent } from '../events/event-bus.js';
import type { Logger } from '../logger.js';
import type { SignWindow, Storage, UrlSignature } from '../storage/storage.js';
import type { GuardedCache } from './guarded-cache.js';
import type { UrlRequest, UrlTiming } from './resolved-url.js';
import type { StoreEntry } from './store.js';
import type { UrlTelemetry } from './telemetry.js';
import type { UrlMemo } from './url-memo.js';

/** Signatures start a little in the past so a storage clock running behind still accepts them. */
const CLOCK_SKEW_SECONDS = 60;

/** Where every signing is announced (the event bus: subscriptions on every node). */
export interface SignedUrlPublisher {
  publish(events: readonly SignedUrlEvent[]): Promise<void>;
}

export interface UrlSignerDeps {
  storage: Pick<Storage, 'signMany'>;
  cache: GuardedCache;
  memo: UrlMemo;
  events: SignedUrlPublisher;
  telemetry: UrlTelemetry;
  clock: Clock;
  logger: Logger;
  timing: UrlTiming;
}

/**
 * Signs in bulk, writes the signatures back to the cache in one pipeline and publishes one event
 * per batch. Concurrent misses for the same image in this process share one signing
 * (single-flight). See docs/architecture.md, "The hot path".
 */
export class UrlSigner {
  private readonly inflight = new Map<string, Promise<UrlSignature>>();

  constructor(private readonly d: UrlSignerDeps) {}

  /** Signs what a resolve missed, sharing in-flight signings of the same id. */
  async signMissing(reqs: readonly UrlRequest[]): Promise<Map<string, UrlSignature>> {
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
    const own = mine.length > 0 ? this.sign(mine, 'miss') : undefined;
    const [signed] = await Promise.all([own, Promise.all(waits)]);
    for (const [id, sig] of signed ?? []) out.set(id, sig);
    if (again.length > 0) {
      for (const [id, sig] of await this.sign(again, 'miss')) out.set(id, sig);
    }
    return out;
  }

  /**
   * Signs items now, whatever the cache holds. With `strict` (refresh sweeps), a cache write that
   * fails throws, and only what was stored is published, so the sweep leaves the batch to its lease.
   */
  async sign(
    items: readonly { id: string; key: string }[],
    reason: 'miss' | 'refresh',
    strict = false,
  ): Promise<Map<string, UrlSignature>> {
    const { storage, cache, clock, timing } = this.d;
    const nowMs = clock.now();
    const nowS = Math.floor(nowMs / 1000);
    const window: SignWindow = { start: nowS - CLOCK_SKEW_SECONDS, end: nowS + timing.urlTtlSeconds };
    const sigs = storage.signMany(
      items.map((i) => i.key),
      window,
    );
    this.d.telemetry.signed(
      reason,
      items.map((i) => i.id),
    );
    const result = new Map<string, UrlSignature>();
    const events: SignedUrlEvent[] = [];
    const entries: StoreEntry[] = items.map((it, i) => {
      const sig: UrlSignature = { ...window, sig: sigs[i]! };
      result.set(it.id, sig);
      const signedUrl = this.d.memo.present(it.id, it.key, sig, false);
      events.push({ imageId: it.id, signedUrl });
      return {
        id: it.id,
        sig,
        // The cache lets go before the URL gets shorter than the default minTtl.
        ttlMs: signedUrl.expiresAt - nowMs - timing.defaultMinTtlSeconds * 1000,
        refreshAt: signedUrl.refreshAt,
      };
    });

    let release!: () => void;
    const written = new Promise<void>((r) => {
      release = r;
    });
    for (const it of items)
      this.inflight.set(
        it.id,
        written.then(() => result.get(it.id)!),
      );
    try {
      const writing = cache.write(entries, reason);
      // Published in the same tick, the event leaves on the same connection right behind the
      // write-back pipeline: one round trip for both, not one more per cold page.
      if (!strict) this.publish(events);
      const failure = writing
        ? await writing
        : new Error('URL cache unavailable (cooling down after a failure)');
      if (strict && failure) throw failure;
    } finally {
      release();
      for (const it of items) this.inflight.delete(it.id);
    }
    if (strict) this.publish(events);
    return result;
  }

  /** Publishing never fails a signing: subscribers are told at most once, and refetch on reconnect. */
  private publish(events: readonly SignedUrlEvent[]): void {
    try {
      this.d.events
        .publish(events)
        .catch((err: Error) => this.d.logger.warn({ err: err.message }, 'event publish failed'));
    } catch (err) {
      this.d.logger.error({ err }, 'event publish threw');
    }
  }
}
