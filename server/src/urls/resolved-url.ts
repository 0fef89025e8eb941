import { fnv1a32 } from '../lib/hash.js';

/** One image's URL asked for by a request. */
export interface UrlRequest {
  id: string;
  key: string;
  /** Seconds the URL must still be valid for when it is handed out. */
  minTtl: number;
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

/**
 * When the schedule re-signs a URL: REFRESH_AHEAD before expiry, plus a jitter scaled to the
 * lead time (at most 10% of it, at most a minute), the same on every node for an image.
 */
export function refreshAtFor(id: string, expiresAt: number, refreshAheadSeconds: number): number {
  const jitterMs = Math.min(60_000, refreshAheadSeconds * 100);
  return expiresAt - refreshAheadSeconds * 1000 + (fnv1a32(id) % 1000) * (jitterMs / 1000);
}
