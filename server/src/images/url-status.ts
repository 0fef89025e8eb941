import type { Viewer } from '../auth/viewer.js';
import type { Clock } from '../clock.js';
import type { ImageRow } from '../db/types.js';
import { fromRedis } from '../errors/index.js';
import { LogThrottle, suppressedField } from '../lib/log-throttle.js';
import type { Logger } from '../logger.js';
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

/** One line a minute per logger while Redis cannot answer status reads (see `urlStatuses`). */
const throttles = new WeakMap<object, LogThrottle>();

export async function urlStatuses(
  deps: { counters: Pick<AccessCounters, 'status'>; clock: Clock; logger?: Pick<Logger, 'warn'> },
  requests: readonly UrlStatusRequest[],
): Promise<UrlStatusView[]> {
  const now = deps.clock.now();
  let records: Awaited<ReturnType<AccessCounters['status']>>;
  try {
    records = await deps.counters.status(requests.map((r) => r.id));
  } catch (err) {
    // Redis stalled, away or CLUSTERDOWN: what only Redis knows cannot be told now. That is
    // SERVICE_UNAVAILABLE with a retry (errors/classify.ts), not an unexpected error: a page's
    // images share this one batch, and each of them logged a stack of it. One line a minute.
    const known = fromRedis(err);
    if (!known) throw err;
    const logger = deps.logger;
    if (logger) {
      let throttle = throttles.get(logger);
      if (!throttle) {
        throttle = new LogThrottle();
        throttles.set(logger, throttle);
      }
      throttle.run('url-status', (suppressed) =>
        logger.warn(
          { err: (err as Error).message, ...suppressedField(suppressed) },
          'URL status unavailable: Redis did not answer',
        ),
      );
    }
    throw known;
  }
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
