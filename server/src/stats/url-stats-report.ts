import { requireSignedIn, type Viewer } from '../auth/viewer.js';
import type { Clock } from '../clock.js';
import { badInput, forbidden } from '../errors/index.js';
import type { AccessTracker } from '../urls/access-tracker.js';
import type { Refresher } from '../urls/refresher.js';
import { WORKER_STALE_MS } from './heartbeat.js';
import {
  type DailyStats,
  lastDays,
  STATS_RETENTION_DAYS,
  type StatsStore,
  type WorkerBeat,
} from './stats-store.js';

export interface UrlStatsView {
  requests: number;
  cacheHits: number;
  cacheMisses: number;
  hitRate: number;
  refreshes: number;
  errors: number;
  avgResolveMs: number;
  uniqueImages: number;
  refreshBacklog: number;
  refreshLagSeconds: number;
  workers: (WorkerBeat & { alive: boolean })[];
  days: (DailyStats & { hitRate: number })[];
}

const rate = (hits: number, misses: number) => (hits + misses === 0 ? 0 : hits / (hits + misses));

type Summed =
  | 'requests'
  | 'cacheHits'
  | 'cacheMisses'
  | 'refreshes'
  | 'errors'
  | 'resolveMsTotal'
  | 'resolveBatches';

/** `urlStats(days)`: admins only; this node's unflushed counters are included. */
export async function urlStatsReport(
  d: {
    stats: Pick<StatsStore, 'days' | 'uniqueImages' | 'workers'>;
    access: Pick<AccessTracker, 'flush'>;
    refresher: Pick<Refresher, 'observe'>;
    clock: Clock;
  },
  viewer: Viewer,
  days: number,
): Promise<UrlStatsView> {
  requireSignedIn(viewer);
  if (!viewer.isAdmin) throw forbidden('urlStats is for admins');
  if (!Number.isInteger(days) || days < 1 || days > STATS_RETENTION_DAYS) {
    throw badInput(`days must be between 1 and ${STATS_RETENTION_DAYS}, got ${days}`, { argument: 'days' });
  }
  await d.access.flush();
  const now = d.clock.now();
  const dates = lastDays(now, days);
  const [rows, uniqueImages, workers, schedule] = await Promise.all([
    d.stats.days(dates),
    d.stats.uniqueImages(dates),
    d.stats.workers(),
    d.refresher.observe(),
  ]);
  const sum = (f: Summed) => rows.reduce((a, r) => a + r[f], 0);
  const batches = sum('resolveBatches');
  return {
    requests: sum('requests'),
    cacheHits: sum('cacheHits'),
    cacheMisses: sum('cacheMisses'),
    hitRate: rate(sum('cacheHits'), sum('cacheMisses')),
    refreshes: sum('refreshes'),
    errors: sum('errors'),
    avgResolveMs: batches === 0 ? 0 : sum('resolveMsTotal') / batches,
    uniqueImages,
    refreshBacklog: schedule.backlog,
    refreshLagSeconds: schedule.lagSeconds,
    workers: workers
      .map((w) => ({ ...w, alive: now - w.lastBeatAt <= WORKER_STALE_MS }))
      .sort((a, b) => a.id.localeCompare(b.id)),
    days: rows.map((r) => ({ ...r, hitRate: rate(r.cacheHits, r.cacheMisses) })),
  };
}
