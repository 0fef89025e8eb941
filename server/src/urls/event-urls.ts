import type { EventUrlOf } from '../events/event-bus.js';
import type { Storage } from '../storage/storage.js';
import { splitUrlId } from '../storage/variant.js';
import { refreshAtOf } from './resolved-url.js';
import { decodeSignature } from './store.js';

export interface EventUrlDeps {
  /** This node's own bucket (a signature without a region). */
  storage: Pick<Storage, 'urlFor' | 'signedBy'>;
  /** Every region's bucket by name (several regions; empty with one). */
  regions: ReadonlyMap<string, Pick<Storage, 'urlFor' | 'signedBy'>>;
  refreshAheadSeconds: number;
}

/**
 * The URL of an event that came over the bus in the compact wire form (its url id, object key and
 * signature: events/event-bus.ts), built as a cache read builds one on this node: the signature
 * in the store's text form, the bucket it names (none: this node's own; a bus is per region, as
 * the cache is), the variant the url id names. Undefined for a record this node cannot build — a
 * malformed one, or a region whose bucket it does not know: a URL for another bucket is never
 * built. See docs/architecture.md, "Freshness", Events and subscriptions.
 */
export function eventUrlOf(d: EventUrlDeps): EventUrlOf {
  return (urlId, objectKey, signature) => {
    const sig = decodeSignature(signature);
    const target = sig ? splitUrlId(urlId) : null;
    if (!sig || !target) return undefined;
    const storage = sig.region === undefined ? d.storage : d.regions.get(sig.region);
    // Nor a signature another signer made (a node with rotated credentials): its URL would name
    // this node's key around the other's signature (storage.ts, `signedBy`).
    if (!storage || sig.by !== storage.signedBy) return undefined;
    const expiresAt = sig.end * 1000;
    return {
      url: storage.urlFor(objectKey, sig, target.variant),
      expiresAt,
      refreshAt: refreshAtOf(expiresAt, d.refreshAheadSeconds),
      cached: false,
    };
  };
}
