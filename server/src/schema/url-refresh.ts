import { MAX_IDS, parseImageIds } from '../images/image-id.js';
import { MAX_PRELOAD_IDS } from '../images/image-service.js';
import { builder } from './builder.js';

builder.objectType('SignedUrlEvent', {
  description: 'A re-signed URL. Treat one whose expiresAt is not later than yours as a no-op.',
  fields: (t) => ({
    imageId: t.exposeID('imageId'),
    signedUrl: t.field({ type: 'SignedUrl', resolve: (e) => e.signedUrl }),
    srcset: t.string({
      nullable: true,
      description: "With a preset: the variant's srcset, its 1x entry being this event's URL",
      resolve: async (e, _args, ctx) => {
        if (!e.variantOf) return null;
        const plan = ctx.variants.srcsetPlan(
          e.variantOf.row,
          e.variantOf.preset,
          ctx.limits.defaultMinTtlSeconds,
        );
        // Every variant of an image steps with the image: the 2x entry was re-signed with this one
        // (or is signed now, to the same URL). Not through the request's loader: a subscription's
        // context lives for hours.
        const rest = await ctx.urls.resolveMany(plan.requests.slice(1));
        return plan.join([e.signedUrl.url, ...rest.map((u) => u.url)]);
      },
    }),
  }),
});

builder.mutationFields((t) => ({
  refreshSignedUrls: t.field({
    type: ['SignedUrl'],
    nullable: { list: false, items: true },
    description:
      "A URL that works now (the client saw a load error): signed again unless the cached URL is already the current window's, which is returned as it is. Same order as ids, null where not visible. Rate-limited per viewer.",
    args: { ids: t.arg.idList({ required: true }) },
    resolve: (_root, args, ctx) => ctx.images.refresh(ctx.viewer, parseImageIds(args.ids.map(String))),
  }),
  preloadSignedUrls: t.int({
    description: `Warms the cache for these images; returns how many were signed (up to ${MAX_PRELOAD_IDS} ids; large lists run as background jobs). Rate-limited per viewer; RATE_LIMITED when the job queue is full.`,
    args: { ids: t.arg.idList({ required: true }) },
    resolve: (_root, args, ctx) =>
      ctx.images.preload(ctx.viewer, parseImageIds(args.ids.map(String), 'ids', MAX_PRELOAD_IDS)),
  }),
}));

builder.subscriptionField('signedUrlRefreshed', (t) =>
  t.field({
    type: 'SignedUrlEvent',
    description: `Every re-signed URL of these images (ids the viewer cannot see deliver nothing). At-most-once: after a reconnect, refetch your URLs. At most ${MAX_IDS} ids a stream (more: BAD_USER_INPUT), and SUBSCRIPTIONS_PER_VIEWER streams (64 by default) per viewer on a node (more: RATE_LIMITED).`,
    args: {
      ids: t.arg.idList({ required: true }),
      preset: t.arg.string({
        required: false,
        description: "That variant's URLs (and srcset) instead of the originals'",
      }),
    },
    subscribe: (_root, args, ctx) => {
      const ids = parseImageIds(args.ids.map(String));
      if (args.preset == null) return ctx.live.listen(ctx.viewer, ids);
      const preset = ctx.variants.preset(args.preset).name;
      return ctx.live.listen(ctx.viewer, ids, {
        preset,
        urlIdOf: (row) => ctx.variants.srcsetPlan(row, preset, 0).requests[0]!.id,
      });
    },
    resolve: (e) => e,
  }),
);
