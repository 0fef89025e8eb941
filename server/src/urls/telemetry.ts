import type { Metrics } from '../metrics.js';
import type { AccessTracker } from './access-tracker.js';
import type { ResolvedUrl, UrlRequest } from './resolved-url.js';

/**
 * The one observer of the URL path: every resolve, signing and cache fallback is told here once,
 * and it feeds both the Prometheus metrics and the access tracker (per-image access counts and
 * the daily usage stats). In process only: no I/O on the hot path.
 */
export class UrlTelemetry {
  constructor(
    private readonly metrics: Metrics,
    private readonly access: AccessTracker,
  ) {}

  /** A resolve of `ids` (unique) at `now`, `misses` of them signed, `started` by performance.now(). */
  resolved(
    ids: readonly string[],
    now: number,
    misses: number,
    started: number,
    out: readonly ResolvedUrl[],
  ): void {
    const { metrics, access } = this;
    metrics.cacheHits.inc(ids.length - misses);
    metrics.cacheMisses.inc(misses);
    access.record(ids, now, ids.length - misses, misses);
    const elapsed = performance.now() - started;
    metrics.resolveSeconds.observe(elapsed / 1000);
    access.recordResolve(elapsed);
    for (const o of out) metrics.servedRemainingSeconds.observe(Math.max(0, (o.expiresAt - now) / 1000));
  }

  /**
   * Variants of a resolve, by preset: served from the cache, or signed for it (`out`, in the
   * order of `reqs`, says which). Originals cost nothing here.
   */
  variants(reqs: readonly UrlRequest[], out: readonly ResolvedUrl[]): void {
    // Counted per run of one preset, not per request: a labelled inc hashes its labels each
    // time, and a page of thumbs and srcsets is 200 of them in one preset.
    let preset: string | undefined;
    let hits = 0;
    let signed = 0;
    for (let i = 0; i < reqs.length; i++) {
      const r = reqs[i]!;
      if (!r.variant) continue;
      const p = r.preset ?? 'transform';
      if (p !== preset) {
        this.countVariants(preset, hits, signed);
        preset = p;
        hits = 0;
        signed = 0;
      }
      // Per request: an image's request answered from the cache is a hit even when another
      // request of it in the batch got a URL of its own.
      if (out[i]!.cached) hits++;
      else signed++;
    }
    this.countVariants(preset, hits, signed);
  }

  private countVariants(preset: string | undefined, hits: number, signed: number): void {
    if (preset === undefined) return;
    if (signed > 0) this.metrics.variantSignatures.inc({ preset }, signed);
    if (hits > 0) this.metrics.variantCacheHits.inc({ preset }, hits);
  }

  /** Images signed for `reason` (a miss of a resolve, or a refresh). */
  signed(reason: 'miss' | 'refresh', ids: readonly string[]): void {
    const count = ids.length;
    this.metrics.signatures.inc({ reason }, count);
    if (reason === 'refresh') {
      this.metrics.refreshes.inc(count);
      this.access.recordRefreshes(count);
    }
  }

  /** Requests that wanted more life than their step's URL had: signed off the grid. */
  offGrid(count: number): void {
    this.metrics.offGridSignatures.inc(count);
  }

  /** The cache failed or was skipped: the request was answered by signing directly. */
  fallback(): void {
    this.metrics.redisFallbacks.inc();
    this.access.recordFallback();
  }
}
