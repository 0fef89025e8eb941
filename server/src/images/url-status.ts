import type { Clock } from '../clock.js';
import type { AccessCounters } from '../urls/store.js';

/** `Image.urlStatus`: what the cache knows about an image's URL. */
export interface UrlStatusView {
  cached: boolean;
  expiresAt: Date | null;
  ttlSeconds: number | null;
  accessCount: number;
  refreshCount: number;
  lastAccessAt: Date | null;
}

export async function urlStatuses(
  deps: { counters: Pick<AccessCounters, 'status'>; clock: Clock },
  ids: readonly string[],
): Promise<UrlStatusView[]> {
  const now = deps.clock.now();
  const records = await deps.counters.status(ids);
  return records.map((r) => ({
    cached: r.sig !== null,
    expiresAt: r.sig ? new Date(r.sig.end * 1000) : null,
    ttlSeconds: r.sig ? Math.max(0, Math.floor(r.sig.end - now / 1000)) : null,
    accessCount: r.accessCount,
    refreshCount: r.refreshCount,
    lastAccessAt: r.lastAccessAt ? new Date(r.lastAccessAt) : null,
  }));
}
