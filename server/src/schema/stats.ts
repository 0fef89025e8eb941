import { STATS_RETENTION_DAYS } from '../stats/stats-store.js';
import { builder } from './builder.js';

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
    resolve: (_root, args, ctx) => ctx.urlStats(ctx.viewer, args.days ?? 1),
  }),
);
