import { badInput, forbidden } from '../errors.js';
import { WORKER_STALE_MS } from '../freshness.js';
import { lastDays, STATS_RETENTION_DAYS } from '../stats/stats-store.js';
import { builder } from './builder.js';

const rate = (hits: number, misses: number) => (hits + misses === 0 ? 0 : hits / (hits + misses));

builder.objectType('WorkerStatus', {
  description: 'A node doing background work, from its heartbeats.',
  fields: (t) => ({
    id: t.exposeID('id'),
    role: t.exposeString('role'),
    alive: t.exposeBoolean('alive'),
    lastHeartbeatAt: t.field({ type: 'DateTime', resolve: (w) => new Date(w.lastBeatAt) }),
    startedAt: t.field({ type: 'DateTime', resolve: (w) => new Date(w.startedAt) }),
    refreshed: t.exposeInt('refreshed', { description: 'URLs this node re-signed since it started' }),
  }),
});

builder.objectType('DailyUrlStats', {
  fields: (t) => ({
    date: t.exposeString('date', { description: 'YYYY-MM-DD (UTC)' }),
    requests: t.exposeInt('requests'),
    cacheHits: t.exposeInt('cacheHits'),
    cacheMisses: t.exposeInt('cacheMisses'),
    hitRate: t.exposeFloat('hitRate'),
    refreshes: t.exposeInt('refreshes'),
    errors: t.exposeInt('errors'),
    uniqueImages: t.exposeInt('uniqueImages'),
  }),
});

builder.objectType('UrlStats', {
  fields: (t) => ({
    requests: t.exposeInt('requests', { description: 'URLs resolved' }),
    cacheHits: t.exposeInt('cacheHits'),
    cacheMisses: t.exposeInt('cacheMisses'),
    hitRate: t.exposeFloat('hitRate'),
    refreshes: t.exposeInt('refreshes'),
    errors: t.exposeInt('errors', { description: 'Cache failures answered by signing directly' }),
    avgResolveMs: t.exposeFloat('avgResolveMs'),
    uniqueImages: t.exposeInt('uniqueImages'),
    refreshBacklog: t.exposeInt('refreshBacklog'),
    refreshLagSeconds: t.exposeFloat('refreshLagSeconds'),
    workers: t.field({ type: ['WorkerStatus'], resolve: (s) => s.workers }),
    days: t.field({ type: ['DailyUrlStats'], resolve: (s) => s.days }),
  }),
});

builder.queryField('urlStats', (t) =>
  t.field({
    type: 'UrlStats',
    description: `URL statistics over the last \`days\` days (1 to ${STATS_RETENTION_DAYS}); admins only.`,
    args: { days: t.arg.int({ defaultValue: 1, required: false }) },
    resolve: async (_root, args, ctx) => {
      if (!ctx.viewer.isAdmin) throw forbidden('urlStats is for admins');
      const n = args.days ?? 1;
      if (!Number.isInteger(n) || n < 1 || n > STATS_RETENTION_DAYS) {
        throw badInput(`days must be between 1 and ${STATS_RETENTION_DAYS}, got ${n}`, { argument: 'days' });
      }
      const { stats, refresher, clock } = ctx.services;
      // This node's counters since the last flush belong in the answer too.
      await ctx.services.access.flush();
      const now = clock.now();
      const dates = lastDays(now, n);
      const [rows, uniqueImages, workers, schedule] = await Promise.all([
        stats.days(dates),
        stats.uniqueImages(dates),
        stats.workers(),
        refresher.observe(),
      ]);
      const sum = (
        f:
          | 'requests'
          | 'cacheHits'
          | 'cacheMisses'
          | 'refreshes'
          | 'errors'
          | 'resolveMsTotal'
          | 'resolveBatches',
      ) => rows.reduce((a, r) => a + r[f], 0);
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
    },
  }),
);
