import type { RegionsConfig } from '../config-regions.js';
import { isDerivedKey } from '../storage/derived-variants.js';
import type { ObjectPlacement } from './resolved-url.js';

/**
 * Whose bucket a URL is signed for (docs/operations.md, "Several regions"): this node's own
 * (undefined) when the object is known to be there — uploaded here, seen here by the replication
 * check, or older than REPLICATION_DELAY_SECONDS — else its home region's. Decided from the row
 * alone (it carries the placement), so no statement or round trip of its own.
 */
export class RegionChoice {
  private readonly known: Set<string>;
  private readonly delayMs: number | undefined;

  constructor(private readonly regions: RegionsConfig) {
    this.known = new Set(regions.buckets.map((b) => b.name));
    this.delayMs =
      regions.replicationDelaySeconds === undefined ? undefined : regions.replicationDelaySeconds * 1000;
  }

  get self(): string {
    return this.regions.self;
  }

  /**
   * The region whose bucket to sign `key` for; undefined: this node's own. `key` is the object the
   * URL names: a derived variant object (`_signet/variants/…`, the s3 driver) is known only in
   * its home region's bucket, where that region's workers made it (the replication check and
   * REPLICATION_DELAY_SECONDS speak for originals only), so another region signs it for the home
   * bucket. See docs/architecture.md, "Several regions and derived variants".
   */
  regionOf(p: ObjectPlacement | undefined, nowMs: number, key?: string): string | undefined {
    if (!p) return undefined;
    const home = p.homeRegion;
    // No home (one region, or rows from before regions): every bucket has the object. A home this
    // node does not know (a region removed from STORAGE_REGIONS): its own bucket is all it has.
    if (home === null || home === this.regions.self || !this.known.has(home)) return undefined;
    if (key !== undefined && isDerivedKey(key)) return home;
    if (p.replicatedRegions.includes(this.regions.self)) return undefined;
    if (this.delayMs !== undefined && p.createdAt.getTime() + this.delayMs <= nowMs) return undefined;
    return home;
  }
}
