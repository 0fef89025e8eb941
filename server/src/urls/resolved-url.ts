import type { Storage } from '../storage/storage.js';
import type { Variant } from '../storage/variant.js';

/** The storage that signs for a region's bucket (undefined: this node's own). */
export type StorageOf = (region: string | undefined) => Pick<Storage, 'signMany' | 'urlFor' | 'signedBy'>;

/**
 * Which regions' buckets hold an object (the image row's columns; see urls/region-choice.ts).
 * An image row is one.
 */
export interface ObjectPlacement {
  homeRegion: string | null;
  replicatedRegions: readonly string[];
  createdAt: Date;
}

/** An object to sign: the URL's cache id, the object key and the variant (undefined: the original). */
export interface SignTarget {
  /** The image id for an original; `<image id>~<variant key>` for a variant (`urlIdOf`). */
  id: string;
  key: string;
  variant?: Variant | undefined;
  /** Where the object is (several regions); undefined: this node's bucket has it. */
  placement?: ObjectPlacement | undefined;
  /**
   * The region whose bucket to sign for, as the URL service decided from `placement` (undefined:
   * this node's own). Set by the service, not by callers.
   */
  region?: string | undefined;
}

/** One image's (or one variant's) URL asked for by a request. */
export interface UrlRequest extends SignTarget {
  /** Seconds the URL must still be valid for when it is handed out. */
  minTtl: number;
  /** The preset a variant was asked by (`transform` for a client's own): the metrics' label. */
  preset?: string | undefined;
}

/** A URL as handed out (`SignedUrl` in the schema). */
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

/** Where the next step begins: REFRESH_AHEAD before the URL expires (epoch ms). */
export function refreshAtOf(expiresAt: number, refreshAheadSeconds: number): number {
  return expiresAt - refreshAheadSeconds * 1000;
}
