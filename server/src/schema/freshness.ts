import { Repeater } from 'graphql-yoga';
import type { ImageRow } from '../db/types.js';
import { AppError, badInput } from '../errors.js';
import type { UrlEvent } from '../events/event-bus.js';
import type { ResolvedUrl } from '../urls/url-service.js';
import { builder } from './builder.js';
import type { Context } from './context.js';
import { MAX_IDS, parseImageIds } from './validate.js';

/** Larger preload lists run as a background job (BullMQ with Redis). */
const MAX_PRELOAD_IDS = 10_000;

builder.objectType('SignedUrlEvent', {
  description: 'A re-signed URL. Treat one whose expiresAt is not later than yours as a no-op.',
  fields: (t) => ({
    imageId: t.exposeID('imageId'),
    signedUrl: t.field({ type: 'SignedUrl', resolve: (e) => e.signedUrl }),
  }),
});

async function visibleRows(ctx: Context, ids: string[]) {
  const rows = await ctx.services.images.findVisible(ctx.viewer.id, ids);
  return new Map(rows.map((r) => [r.id, r]));
}

builder.mutationFields((t) => ({
  refreshSignedUrls: t.field({
    type: ['SignedUrl'],
    nullable: { list: false, items: true },
    description:
      'Forces a re-sign (the client saw a load error). Same order as ids, null where not visible. Rate-limited per viewer.',
    args: { ids: t.arg.idList({ required: true }) },
    resolve: async (_root, args, ctx) => {
      const ids = parseImageIds(args.ids.map(String));
      const limit = await ctx.services.refreshLimiter.hit(ctx.viewer.id);
      if (!limit.allowed) {
        throw new AppError(
          'RATE_LIMITED',
          `Too many refreshSignedUrls calls; retry in ${limit.retryAfter} s`,
          {
            retryAfter: limit.retryAfter,
          },
        );
      }
      const rows = await visibleRows(ctx, ids);
      const items = [...rows.values()].map((r) => ({ id: r.id, key: r.objectKey }));
      const fresh =
        items.length > 0 ? await ctx.services.urls.refreshMany(items) : new Map<string, ResolvedUrl>();
      return ids.map((id) => fresh.get(id) ?? null);
    },
  }),
  preloadSignedUrls: t.int({
    description: `Warms the cache for these images; returns how many were signed (up to ${MAX_PRELOAD_IDS} ids; large lists run as a background job).`,
    args: { ids: t.arg.idList({ required: true }) },
    resolve: async (_root, args, ctx) => {
      if (args.ids.length > MAX_PRELOAD_IDS) {
        throw badInput(`ids takes at most ${MAX_PRELOAD_IDS} ids, got ${args.ids.length}`, {
          argument: 'ids',
        });
      }
      const ids: string[] = [];
      for (let i = 0; i < args.ids.length; i += MAX_IDS) {
        ids.push(...parseImageIds(args.ids.slice(i, i + MAX_IDS).map(String)));
      }
      const rows: ImageRow[] = [];
      for (let i = 0; i < ids.length; i += MAX_IDS) {
        rows.push(...(await visibleRows(ctx, ids.slice(i, i + MAX_IDS))).values());
      }
      if (rows.length > MAX_IDS) return ctx.services.jobs.preload(rows.map((r) => r.id));
      const { defaultMinTtlSeconds } = ctx.services.config;
      const urls = await ctx.services.urls.resolveMany(
        rows.map((r) => ({ id: r.id, key: r.objectKey, minTtl: defaultMinTtlSeconds })),
      );
      return urls.filter((u) => !u.cached).length;
    },
  }),
}));

builder.subscriptionField('signedUrlRefreshed', (t) =>
  t.field({
    type: 'SignedUrlEvent',
    description:
      'Every re-signed URL of these images (ids the viewer cannot see deliver nothing). At-most-once: after a reconnect, refetch your URLs.',
    args: { ids: t.arg.idList({ required: true }) },
    subscribe: (_root, args, ctx) => {
      const ids = parseImageIds(args.ids.map(String));
      const { events, metrics } = ctx.services;
      return new Repeater<UrlEvent>(async (push, stop) => {
        const visible = [...(await visibleRows(ctx, ids)).keys()];
        const unsubscribe = events.subscribe(visible, (e) => void push(e));
        metrics.sseSubscribers.inc();
        await stop;
        unsubscribe();
        metrics.sseSubscribers.dec();
      });
    },
    resolve: (e) => ({
      imageId: e.imageId,
      signedUrl: { url: e.url, expiresAt: e.expiresAt, refreshAt: e.refreshAt, cached: false },
    }),
  }),
);
