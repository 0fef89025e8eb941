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

/** Where the next step begins: REFRESH_AHEAD before the URL expires (epoch ms). */
export function refreshAtOf(expiresAt: number, refreshAheadSeconds: number): number {
  return expiresAt - refreshAheadSeconds * 1000;
}
