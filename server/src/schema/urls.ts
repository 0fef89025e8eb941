import { seesActivity, type UrlStatusRequest } from '../images/url-status.js';
import { builder } from './builder.js';
import { ImageRef } from './images.js';
import { ORIGINAL_URL_READS, pageReads, VARIANT_URL_READS } from './page-projection.js';
import { loadAll, urlLoader } from './url-loader.js';
import { parseMinTtl } from './validate.js';
import { ImageTransformInput } from './variants.js';

builder.objectType('SignedUrl', {
  description: 'A presigned GET URL and its life.',
  fields: (t) => ({
    url: t.exposeString('url'),
    // Epoch ms, not a Date: DateTime formats a known instant from its memo (schema/scalars.ts),
    // where a Date cost an object and a toISOString per URL (300 a page with variants).
    expiresAt: t.field({ type: 'DateTime', resolve: (u) => u.expiresAt }),
    refreshAt: t.field({
      type: 'DateTime',
      description: 'When the gateway re-signs it (and pushes the new URL to subscribers)',
      resolve: (u) => u.refreshAt,
    }),
    cached: t.exposeBoolean('cached', {
      description: 'Served from the cache rather than signed for this request',
    }),
  }),
});

builder.objectType('UrlStatus', {
  description: 'What the cache knows about an image URL.',
  fields: (t) => ({
    cached: t.exposeBoolean('cached'),
    expiresAt: t.expose('expiresAt', { type: 'DateTime', nullable: true }),
    ttlSeconds: t.exposeInt('ttlSeconds', { nullable: true }),
    accessCount: t.exposeInt('accessCount'),
    refreshCount: t.exposeInt('refreshCount'),
    lastAccessAt: t.expose('lastAccessAt', { type: 'DateTime', nullable: true }),
  }),
});

builder.objectFields(ImageRef, (t) => ({
  // Every signedUrl and srcset of a response lands in one batch (url-loader.ts): one cache
  // round trip, bulk signing of the misses, variants included.
  signedUrl: t.field({
    type: 'SignedUrl',
    description:
      'A presigned URL of the original, of a preset (`preset`) or of your own transform (`transform`, when the gateway allows it). One URL per image and variant per window.',
    args: {
      minTtl: t.arg.int({
        required: false,
        description: 'Seconds the URL must stay valid at least (default 300, or a quarter of the TTL)',
      }),
      preset: t.arg.string({ required: false, description: 'One of imagePresets' }),
      transform: t.arg({ type: ImageTransformInput, required: false }),
    },
    // The original's URL reads less of the row than a variant's (a page selects only that).
    extensions: pageReads((args) =>
      args.has('preset') || args.has('transform') ? VARIANT_URL_READS : ORIGINAL_URL_READS,
    ),
    resolve: (image, args, ctx) =>
      urlLoader(ctx).load(
        ctx.variants.urlRequest(image, parseMinTtl(args.minTtl, ctx.limits), args.preset, args.transform),
      ),
  }),
  srcset: t.string({
    description:
      'The preset at 1x and 2x ("URL 320w, URL 640w"), never wider than the original: for <img srcset> with sizes.',
    args: { preset: t.arg.string({ required: true, description: 'One of imagePresets' }) },
    extensions: pageReads(VARIANT_URL_READS),
    resolve: (image, args, ctx) => {
      const plan = ctx.variants.srcsetPlan(image, args.preset, ctx.limits.defaultMinTtlSeconds);
      return loadAll(ctx, plan.requests).then((urls) => plan.join(urls.map((u) => u.url)));
    },
  }),
  urlStatus: t.loadable({
    type: 'UrlStatus',
    description:
      "What the cache knows about the original's URL. accessCount, refreshCount and lastAccessAt are 0 and null unless the viewer owns the image, is an admin or a service: they tell when others looked at it.",
    load: (requests: UrlStatusRequest[], ctx) => ctx.images.urlStatus(requests),
    loaderOptions: { cacheKeyFn: (r: UrlStatusRequest) => (r.activity ? r.id : `~${r.id}`) },
    resolve: (image, _args, ctx) => ({ id: image.id, activity: seesActivity(ctx.viewer, image) }),
    extensions: pageReads(['id', 'ownerId']),
  }),
}));
