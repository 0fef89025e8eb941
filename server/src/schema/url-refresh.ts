import { parseImageIds } from '../images/image-id.js';
import { MAX_PRELOAD_IDS } from '../images/image-service.js';
import { builder } from './builder.js';

builder.objectType('SignedUrlEvent', {
  description: 'A re-signed URL. Treat one whose expiresAt is not later than yours as a no-op.',
  fields: (t) => ({
    imageId: t.exposeID('imageId'),
    signedUrl: t.field({ type: 'SignedUrl', resolve: (e) => e.signedUrl }),
  }),
});

builder.mutationFields((t) => ({
  refreshSignedUrls: t.field({
    type: ['SignedUrl'],
    nullable: { list: false, items: true },
    description:
      'Forces a re-sign (the client saw a load error). Same order as ids, null where not visible. Rate-limited per viewer.',
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
    description:
      'Every re-signed URL of these images (ids the viewer cannot see deliver nothing). At-most-once: after a reconnect, refetch your URLs.',
    args: { ids: t.arg.idList({ required: true }) },
    subscribe: (_root, args, ctx) => ctx.live.listen(ctx.viewer, parseImageIds(args.ids.map(String))),
    resolve: (e) => e,
  }),
);
