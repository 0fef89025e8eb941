import type { Clock } from '../clock.js';
import type { MaybePromise } from '../lib/maybe-promise.js';
import type { UrlSignature } from '../storage/storage.js';
import type { GuardedCache } from './guarded-cache.js';
import type { RegionChoice } from './region-choice.js';
import type { ResolvedUrl, SignTarget, UrlRequest } from './resolved-url.js';
import type { UrlSigner } from './signer.js';
import type { UrlCache } from './store.js';
import type { UrlTelemetry } from './telemetry.js';
import type { UrlMemo } from './url-memo.js';
import type { WindowGrid } from './window-grid.js';

export type { ResolvedUrl, SignTarget, UrlRequest, UrlTiming } from './resolved-url.js';

export interface UrlServiceDeps {
  cache: GuardedCache;
  /** The raw cache, for purges (a deleted image must not keep a working URL). */
  store: Pick<UrlCache, 'purge' | 'forgetImages'>;
  signer: UrlSigner;
  memo: UrlMemo;
  telemetry: UrlTelemetry;
  grid: WindowGrid;
  clock: Clock;
  /** Several regions: whose bucket each URL is signed for (undefined: one region). */
  regions?: RegionChoice | undefined;
}

/**
 * The hot path: resolve many (image, minTtl) requests with one cache round trip, sign the misses
 * in bulk on the window grid, never fail because the cache did. A cache entry is a memo of the
 * grid: it is used only while it is the image's current step, or the next step's once that URL is
 * valid (a node whose clock runs ahead stepped first: `WindowGrid.isCurrent`), never an older
 * step. See docs/architecture.md, "The hot path" and "The window grid".
 */
export class UrlService {
  constructor(private readonly d: UrlServiceDeps) {}

  /**
   * @param remember keep the URLs it signs built in this node's memo at once (the proxy's single
   * images, reused for a few seconds by `resolveRecent`); else a signed URL is kept once it is
   * read back from the cache (url-memo.ts).
   */
  async resolveMany(requests: readonly UrlRequest[], remember = false): Promise<ResolvedUrl[]> {
    const started = performance.now();
    const reqs = this.placed(requests);
    const { ids, slots } = uniqueIds(reqs);
    const cached = await this.d.cache.read(ids);
    const now = this.d.clock.now();
    const { memo, grid, signer } = this.d;
    // A signature is good only from this bucket's signer as it signs now (urls/signer.ts).
    const ownBy = signer.signedBy(undefined);

    // A hit is good only if it is this step's URL (or the next step's, stored by a node whose
    // clock is ahead, once it is valid) for the bucket chosen now, signed with the credentials
    // this node signs with (a key rotation: storage.ts, `signedBy`), and lives long enough for
    // every request of it. Most hits are URLs this node built before: the memo answers those in a
    // few comparisons (the same object each time); the rest are checked against the grid here.
    const out = new Array<ResolvedUrl>(reqs.length);
    let needs: Map<string, UrlRequest> | undefined;
    let offGrid: Map<string, UrlRequest> | undefined;
    let behind: Map<string, UrlRequest> | undefined;
    for (let i = 0; i < reqs.length; i++) {
      const r = reqs[i]!;
      const sig = cached[slots ? slots[i]! : i] ?? null;
      if (
        sig &&
        sig.region === r.region &&
        sig.by === (r.region === undefined ? ownBy : signer.signedBy(r.region))
      ) {
        const hit = memo.hit(r.id, r.key, sig, now, r.minTtl);
        if (hit) {
          out[i] = hit;
          continue;
        }
        if (grid.isCurrent(r.id, sig, now) && sig.end * 1000 - now >= r.minTtl * 1000) {
          out[i] = memo.present(r.id, r.key, sig, true, r.variant);
          continue;
        }
      }
      // A request wanting more life than its step's URL has left gets a URL of its own, and
      // only it: the image's other requests of this batch keep the step's URL (DESIGN: every
      // request within a step gets the byte-identical URL). Kept apart, per id, from those.
      let into: Map<string, UrlRequest>;
      if (this.wantsOwn(r, now)) {
        offGrid ??= new Map();
        into = offGrid;
      } else if (sig && sig.end > grid.windowAt(r.id, now).end) {
        // The cache holds a later step that is not valid yet by this node's clock (a node more
        // than the back-dating ahead stored it): the store keeps that one (WRITE_SCRIPT), so
        // this node's URL is signed for the answer only, neither written back nor announced.
        behind ??= new Map();
        into = behind;
      } else {
        needs ??= new Map();
        into = needs;
      }
      const prev = into.get(r.id);
      if (!prev || prev.minTtl < r.minTtl) into.set(r.id, r);
    }

    let fresh: Map<string, UrlSignature> = NOTHING_SIGNED;
    let fresher: Map<string, UrlSignature> = NOTHING_SIGNED;
    if (needs || offGrid || behind) {
      [fresh, fresher] = await Promise.all([
        needs ? this.d.signer.signMissing([...needs.values()]) : NOTHING_SIGNED,
        offGrid ? this.d.signer.signMissing([...offGrid.values()]) : NOTHING_SIGNED,
      ]);
      // An id is in `behind` or in `needs`, never both (the cached entry decides, once per id).
      if (behind) {
        const unstored = this.d.signer.signUnstored([...behind.values()]);
        if (fresh === NOTHING_SIGNED) fresh = unstored;
        else for (const [id, sig] of unstored) fresh.set(id, sig);
      }
      // Every request not answered by a hit takes the batch's new URL of its kind.
      for (let i = 0; i < reqs.length; i++) {
        if (out[i]) continue;
        const r = reqs[i]!;
        const own = offGrid?.has(r.id) && this.wantsOwn(r, now);
        const f = own ? fresher.get(r.id) : fresh.get(r.id);
        if (f) out[i] = memo.present(r.id, r.key, f, false, r.variant, remember);
      }
    }
    // Ids signed (an id may be in two maps: counted once).
    let misses = (needs?.size ?? 0) + (behind?.size ?? 0);
    if (offGrid) for (const id of offGrid.keys()) if (!needs?.has(id) && !behind?.has(id)) misses++;
    this.d.telemetry.resolved(ids, now, misses, started, out);
    this.d.telemetry.variants(reqs, out);
    return out;
  }

  /**
   * Does the request want more life than its step's URL has left? Never when it asks no more
   * than any step's URL has (most requests: the default minTtl is under REFRESH_AHEAD), so the
   * step is worked out only for the others.
   */
  private wantsOwn(r: UrlRequest, now: number): boolean {
    const want = r.minTtl * 1000;
    return want > this.d.grid.minLifeMs && this.d.grid.windowAt(r.id, now).end * 1000 - now < want;
  }

  /**
   * One image's URL for a single-image request (the proxy's redirect): the URL this node read or
   * signed for it within `withinMs`, if it still has `minTtl` to live, else `resolveMany`. A Redis
   * round trip is most of what a redirect costs; reusing a URL for seconds is well inside what
   * the redirect's own `max-age` already lets every browser do. A hit is at hand (no promise).
   */
  resolveRecent(request: UrlRequest, withinMs: number): MaybePromise<ResolvedUrl> {
    const started = performance.now();
    const req = this.placed([request])[0]!;
    const hit = this.d.memo.recent(req.id, req.key, withinMs, req.minTtl, req.region);
    if (!hit) return this.resolveMany([req], true).then((out) => out[0]!);
    this.d.telemetry.resolved([req.id], this.d.clock.now(), 0, started, [hit]);
    return hit;
  }

  /**
   * Signs the current step's URL of the given images now (refresh sweeps, forced refreshes) and
   * stores it. With `strict`, a failed cache write throws, so a sweep leaves the work to its
   * lease. With `onlyStale` (sweeps), images whose cached URL is already this step's — a request
   * signed it since the boundary — are left alone: each URL is signed once per step; `onCurrent`
   * hears each of them with the moment its URL's step ends (when it is due again). With
   * `keepCurrent` as well, the map also holds those images' cached URLs (a client's refresh:
   * signing again would give the same bytes, and publishing them would push every subscriber an
   * event that changes nothing).
   */
  async refreshMany(
    items: readonly SignTarget[],
    options: {
      strict?: boolean;
      onlyStale?: boolean;
      keepCurrent?: boolean;
      onCurrent?: (id: string, refreshAt: number) => void;
    } = {},
  ): Promise<Map<string, ResolvedUrl>> {
    const out = new Map<string, ResolvedUrl>();
    const placed = this.placed(items);
    let todo = placed;
    if (options.onlyStale && placed.length > 0) {
      // A strict caller (a sweep) reads past the breaker as it writes (urls/guarded-cache.ts).
      const cached = await this.d.cache.read(
        placed.map((i) => i.id),
        options.strict ?? false,
      );
      const now = this.d.clock.now();
      // The placed items: each compared with (and signed for) the bucket chosen now.
      todo = placed.filter((it, i) => {
        const sig = cached[i];
        const stale =
          !sig ||
          sig.region !== it.region ||
          sig.by !== this.d.signer.signedBy(it.region) ||
          !this.d.grid.isCurrent(it.id, sig, now);
        if (!stale) {
          options.onCurrent?.(it.id, this.d.grid.refreshAtOf(sig!));
          if (options.keepCurrent) out.set(it.id, this.d.memo.present(it.id, it.key, sig!, true, it.variant));
        }
        return stale;
      });
    }
    const sigs =
      todo.length > 0 ? await this.d.signer.sign(todo, 'refresh', options.strict ?? false) : new Map();
    for (const it of todo)
      out.set(it.id, this.d.memo.present(it.id, it.key, sigs.get(it.id)!, false, it.variant));
    return out;
  }

  /**
   * The requests with the region whose bucket each is signed for (several regions; the same
   * array with one region). See urls/region-choice.ts.
   */
  private placed<T extends SignTarget>(reqs: readonly T[]): readonly T[] {
    const regions = this.d.regions;
    if (!regions) return reqs;
    const now = this.d.clock.now();
    return reqs.map((r) => {
      const region = regions.regionOf(r.placement, now, r.key);
      return region === r.region ? r : { ...r, region };
    });
  }

  /** Drops the cached URLs of ids (a deleted image must not keep a working URL in the cache). */
  async purge(ids: readonly string[]): Promise<void> {
    for (const id of ids) this.d.memo.forget(id);
    // A write-back of these ids still on its way would put the URL back after the purge.
    await this.d.signer.writesLanded(ids);
    await this.d.store.purge(ids);
  }

  /** Forgets every url id of these images from the schedule and counters (UrlCache.forgetImages). */
  forgetImages(imageIds: readonly string[]): Promise<number> {
    return this.d.store.forgetImages(imageIds);
  }
}

const NOTHING_SIGNED: Map<string, UrlSignature> = new Map();

/**
 * The distinct ids of a batch, and where each request's id is among them (`slots`, undefined
 * when every request has its own id: then request i is id i, the common case).
 */
function uniqueIds(reqs: readonly UrlRequest[]): { ids: string[]; slots: number[] | undefined } {
  if (reqs.length === 1) return { ids: [reqs[0]!.id], slots: undefined };
  const at = new Map<string, number>();
  const ids: string[] = [];
  let slots: number[] | undefined;
  for (let i = 0; i < reqs.length; i++) {
    const id = reqs[i]!.id;
    const seen = at.get(id);
    if (seen === undefined) {
      at.set(id, ids.length);
      ids.push(id);
      if (slots) slots.push(ids.length - 1);
    } else {
      // The first repeat: from here on requests and ids no longer line up.
      slots ??= Array.from({ length: i }, (_, j) => j);
      slots.push(seen);
    }
  }
  return { ids, slots };
}
