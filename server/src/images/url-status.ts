import type { Viewer } from '../auth/viewer.js';
import type { Clock } from '../clock.js';
import type { ImageRow } from '../db/types.js';
import type { AccessCounters } from '../urls/store.js';
import { canManage } from './visibility.js';

/** `Image.urlStatus`: what the cache knows about an image's URL. */
export interface UrlStatusView {
  cached: boolean;
  expiresAt: Date | null;
  ttlSeconds: number | null;
  accessCount: number;
  refreshCount: number;
  lastAccessAt: Date | null;
}

/** One image's status, asked by a viewer who may or may not see who has been looking at it. */
export interface UrlStatusRequest {
  id: string;
  /** `seesActivity(viewer, row)`. */
  activity: boolean;
}

/**
 * Whether a viewer sees an image's activity (how often and when it was last looked at, how often
 * re-signed): its owner, an admin, a service. Anyone else who reads a public image would learn
 * when its owner, or any other viewer, looked at it (docs/architecture.md, "Who sees what").
 */
export function seesActivity(viewer: Viewer, row: Pick<ImageRow, 'ownerId'>): boolean {
  return viewer.role === 'service' || canManage(viewer, row);
}

export async function urlStatuses(
  deps: { counters: Pick<AccessCounters, 'status'>; clock: Clock },
  requests: readonly UrlStatusRequest[],
): Promise<UrlStatusView[]> {
  const now = deps.clock.now();
  const records = await deps.counters.status(requests.map((r) => r.id));
  return records.map((r, i) => {
    const activity = requests[i]!.activity;
    return {
      cached: r.sig !== null,
      expiresAt: r.sig ? new Date(r.sig.end * 1000) : null,
      ttlSeconds: r.sig ? Math.max(0, Math.floor(r.sig.end - now / 1000)) : null,
      accessCount: activity ? r.accessCount : 0,
      refreshCount: activity ? r.refreshCount : 0,
      lastAccessAt: activity && r.lastAccessAt ? new Date(r.lastAccessAt) : null,
    };
  });
}
