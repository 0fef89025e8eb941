import type { Clock } from '../clock.js';
import type { SignedUrlEvent } from '../events/event-bus.js';
import { LogThrottle, suppressedField } from '../lib/log-throttle.js';
import type { Logger } from '../logger.js';
import { type SendTogether, sendAsIs } from '../redis/send-together.js';
import type { SignWindow, UrlSignature } from '../storage/storage.js';
import type { GuardedCache } from './guarded-cache.js';
import type { SignTarget, StorageOf, UrlRequest, UrlTiming } from './resolved-url.js';
import { encodeSignature, type StoreEntry } from './store.js';
import type { UrlTelemetry } from './telemetry.js';
import type { UrlMemo } from './url-memo.js';
import type { WindowGrid } from './window-grid.js';

/** Where every signing is announced (the event bus: subscriptions on every node). */
export interface SignedUrlPublisher {
  publish(events: readonly SignedUrlEvent[]): Promise<void>;
}

export interface UrlSignerDeps {
  /** Each region's signer (several regions); this node's own for undefined. */
  storageOf: StorageOf;
  cache: GuardedCache;
  memo: UrlMemo;
  events: SignedUrlPublisher;
  telemetry: UrlTelemetry;
  clock: Clock;
  logger: Logger;
  timing: UrlTiming;
  grid: WindowGrid;
  /**
   * Sends a write-back and its event in one socket write (redis/send-together.ts); as they come
   * without Redis.
   */
  sendTogether?: SendTogether;
}

/**
 * Signs in bulk, writes the signatures back to the cache in one round trip and publishes one event
 * per batch. Concurrent misses for the same image in this process share one signing
 * (single-flight). See docs/architecture.md, "The hot path".
 */
export class UrlSigner {
  /** Ids being signed or written back, with the batch result that holds their signature. */
  private readonly inflight = new Map<string, Promise<Map<string, UrlSignature>>>();
  /** Ids whose write-back is pending, with a promise that settles when it lands or fails. */
  private readonly landing = new Map<string, Promise<void>>();

  private readonly together: SendTogether;

  private readonly publishErrors = new LogThrottle();

  constructor(private readonly d: UrlSignerDeps) {
    this.together = d.sendTogether ?? sendAsIs;
  }

  /**
   * Signs what a resolve missed, on the grid, sharing in-flight signings of the same id. A request
   * that wants more life than its step's URL has left gets a URL of its own (off the grid: not
   * cached, not published, counted).
   */
  async signMissing(reqs: readonly UrlRequest[]): Promise<Map<string, UrlSignature>> {
    const out = new Map<string, UrlSignature>();
    const waits: Promise<void>[] = [];
    const mine: UrlRequest[] = [];
    const again: UrlRequest[] = [];
    const offGrid: UrlRequest[] = [];
    const now = this.d.clock.now();
    for (const r of reqs) {
      const w = this.d.grid.windowAt(r.id, now);
      if (w.end * 1000 - now < r.minTtl * 1000) {
        offGrid.push(r);
        continue;
      }
      const pending = this.inflight.get(r.id);
      if (pending) {
        waits.push(
          pending.then((batch) => {
            const sig = batch.get(r.id)!;
            // Shared only if it is this step's signing (one in flight across a boundary is not)
            // for the same bucket (the row may have been seen replicated since).
            if (sig.start === w.start && sig.end === w.end && sig.region === r.region) out.set(r.id, sig);
            else again.push(r);
          }),
        );
      } else {
        mine.push(r);
      }
    }
    // Start our own signing before the first await: that registers it in flight, so a concurrent
    // batch that read the same misses waits for it instead of signing them again.
    const first = mine.length > 0 ? this.sign(mine, 'miss') : undefined;
    const ownOffGrid = offGrid.length > 0 ? this.signOffGrid(offGrid) : undefined;
    const [signed] = await Promise.all([first, Promise.all(waits)]);
    for (const [id, sig] of signed ?? []) out.set(id, sig);
    // Waiters whose shared signing was for another step sign their own (rare: a boundary).
    if (again.length > 0) {
      for (const [id, sig] of await this.sign(again, 'miss')) out.set(id, sig);
    }
    for (const [id, sig] of ownOffGrid ?? []) out.set(id, sig);
    return out;
  }

  /**
   * Signs items on the grid now, whatever the cache holds. With `strict` (refresh sweeps), a
   * cache write that fails throws, so the sweep leaves the batch to its lease.
   */
  async sign(
    items: readonly SignTarget[],
    reason: 'miss' | 'refresh',
    strict = false,
  ): Promise<Map<string, UrlSignature>> {
    const { cache, clock, grid } = this.d;
    const nowMs = clock.now();
    const result = this.signOnGrid(items, reason, nowMs);
    const events: SignedUrlEvent[] = [];
    const entries: StoreEntry[] = items.map((it) => {
      const sig = result.get(it.id)!;
      const signedUrl = this.d.memo.presentSigned(it.id, it.key, sig, it.variant);
      // With what the URL was built from: the bus sends that, not the URL (events/event-bus.ts).
      events.push({ imageId: it.id, signedUrl, objectKey: it.key, signature: encodeSignature(sig) });
      const refreshAt = grid.refreshAtOf(sig);
      // The cache holds a step's URL until the step ends: then the next step's URL takes over.
      return { id: it.id, sig, ttlMs: refreshAt - nowMs, refreshAt };
    });

    if (!strict) {
      // The answer does not wait for the write-back: the URL is the step's whatever the cache
      // holds (the grid makes it deterministic), and a lost write only costs a signing later.
      // The event and the write-back are sent once this tick's answers are written (a cold
      // page's response leaves before the ~16 KB write-back is built and sent), the event first
      // and both in one socket write (below). Until the write lands, a concurrent resolve that
      // missed the same ids takes this batch's signatures instead of signing them again. See
      // docs/architecture.md, "The hot path".
      const release = this.holdInFlight(items, result);
      setImmediate(() => {
        let writing: Promise<unknown> | undefined;
        try {
          writing = this.together(() => {
            this.publish(events);
            return cache.write(entries, reason);
          });
        } finally {
          // A write that threw (or was skipped by the breaker) holds nothing in flight.
          if (writing) void writing.then(release);
          else release();
        }
      });
      return result;
    }
    // The event goes out with the write-back, ahead of it on the same connection, not once its
    // reply is back: a step stored and not announced (a node killed in between) would be read as
    // current by every other node, so nobody would sign or announce it again. Redis runs one
    // connection's commands in order, so on a single Redis a step it stores was announced first,
    // wherever a dying node's bytes were cut off; one socket write makes that cut rare too. A
    // write that fails fails the batch; its retry announces the same URL again (the grid), which
    // clients take as a no-op. See docs/architecture.md, "Freshness".
    // Past the breaker: a sweep wants the cache's own answer (urls/guarded-cache.ts).
    const writing = this.together(() => cache.write(entries, reason, () => this.publish(events), true));
    if (!writing) throw new Error('URL cache write was not started');
    // In flight from now until the write lands, as above.
    void writing.then(this.holdInFlight(items, result));
    const failure = await writing;
    if (failure) throw failure;
    return result;
  }

  /**
   * Registers a batch's signatures in flight for its ids; the returned function clears the ids
   * that still point at this batch (call it when the write-back lands, or fails).
   */
  private holdInFlight(items: readonly SignTarget[], result: Map<string, UrlSignature>): () => void {
    const shared = Promise.resolve(result);
    let landed!: () => void;
    const landing = new Promise<void>((resolve) => {
      landed = resolve;
    });
    for (const it of items) {
      this.inflight.set(it.id, shared);
      this.landing.set(it.id, landing);
    }
    return () => {
      for (const it of items) {
        if (this.inflight.get(it.id) === shared) this.inflight.delete(it.id);
        if (this.landing.get(it.id) === landing) this.landing.delete(it.id);
      }
      landed();
    };
  }

  /**
   * Resolves once every write-back in flight for these ids has landed (or failed): a purge sent
   * before a write-back that was signed earlier would otherwise be undone by it.
   */
  async writesLanded(ids: readonly string[]): Promise<void> {
    const pending: Promise<void>[] = [];
    for (const id of ids) {
      const p = this.landing.get(id);
      if (p) pending.push(p);
    }
    if (pending.length > 0) await Promise.all(pending);
  }

  /**
   * This step's URLs for requests whose cache holds a later step not valid yet by this node's
   * clock (a node more than the back-dating ahead stored it): signed for the answer only, neither
   * written back (the store would keep the later one: redis-store.ts, WRITE_SCRIPT) nor announced
   * (subscribers hold the later URL already). See docs/architecture.md, "The window grid".
   */
  signUnstored(reqs: readonly UrlRequest[]): Map<string, UrlSignature> {
    return this.signOnGrid(reqs, 'miss', this.d.clock.now());
  }

  /** Each item's URL on its grid window at `nowMs`: signing only (no write-back, no event). */
  private signOnGrid(
    items: readonly SignTarget[],
    reason: 'miss' | 'refresh',
    nowMs: number,
  ): Map<string, UrlSignature> {
    const { grid } = this.d;
    // Object literals written out, not spread (`{ ...it, window }`): V8 builds a spread followed
    // by more properties on a slow path, ~0.7-0.9 µs an object here against ~0.01 µs, twice per
    // cold URL (docs/benchmarks.md, finding 33).
    return this.signWindows(
      items.map((it) => ({
        id: it.id,
        key: it.key,
        variant: it.variant,
        region: it.region,
        window: grid.windowAt(it.id, nowMs),
      })),
      reason,
    );
  }

  /** URLs of their own for requests the step's URL cannot serve: signed, not cached, not published. */
  private signOffGrid(reqs: readonly UrlRequest[]): Map<string, UrlSignature> {
    const window = this.d.grid.offGridAt(this.d.clock.now());
    this.d.telemetry.offGrid(reqs.length);
    return this.signWindows(
      reqs.map((r) => ({ id: r.id, key: r.key, variant: r.variant, region: r.region, window })),
      'miss',
    );
  }

  /**
   * Who signs for a bucket now (`Storage.signedBy`): a cached signature anyone else made is a
   * miss (a key rotation: urls/url-service.ts).
   */
  signedBy(region: string | undefined): string {
    return this.d.storageOf(region).signedBy;
  }

  /**
   * One signMany per distinct window and bucket (the grid has few windows per step: one signing
   * key each; a region's bucket has its own signer).
   */
  private signWindows(
    items: readonly (SignTarget & { window: SignWindow })[],
    reason: 'miss' | 'refresh',
  ): Map<string, UrlSignature> {
    const groups = new Map<string, { window: SignWindow; region: string | undefined; items: SignTarget[] }>();
    for (const it of items) {
      const k =
        it.region === undefined
          ? `${it.window.start}:${it.window.end}`
          : `${it.window.start}:${it.window.end}:${it.region}`;
      const g = groups.get(k);
      if (g) g.items.push(it);
      else groups.set(k, { window: it.window, region: it.region, items: [it] });
    }
    const result = new Map<string, UrlSignature>();
    for (const { window, region, items: group } of groups.values()) {
      const variants = group.some((i) => i.variant) ? group.map((i) => i.variant) : undefined;
      const storage = this.d.storageOf(region);
      const sigs = storage.signMany(
        group.map((i) => i.key),
        window,
        variants,
      );
      const by = storage.signedBy;
      group.forEach((it, i) => {
        // The shape a cache read decodes (urls/store.ts): one hidden class for both.
        result.set(it.id, { start: window.start, end: window.end, sig: sigs[i]!, by, region });
      });
    }
    this.d.telemetry.signed(
      reason,
      items.map((i) => i.id),
    );
    return result;
  }

  /**
   * Publishing never fails a signing: subscribers are told at most once, and refetch on reconnect.
   * A failure is logged once a minute: while Redis is down every signing request fails to publish.
   */
  private publish(events: readonly SignedUrlEvent[]): void {
    try {
      this.d.events
        .publish(events)
        .catch((err: Error) =>
          this.publishErrors.run('publish', (suppressed) =>
            this.d.logger.warn(
              { err: err.message, ...suppressedField(suppressed) },
              'event publish failed (live URL updates are not sent while it fails)',
            ),
          ),
        );
    } catch (err) {
      this.d.logger.error({ err }, 'event publish threw');
    }
  }
}
