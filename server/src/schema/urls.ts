import type { UrlRequest } from '../urls/resolved-url.js';
import { builder } from './builder.js';
import { ImageRef } from './images.js';
import { parseMinTtl } from './validate.js';

builder.objectType('SignedUrl', {
  description: 'A presigned GET URL and its life.',
  fields: (t) => ({
    url: t.exposeString('url'),
    expiresAt: t.field({ type: 'DateTime', resolve: (u) => new Date(u.expiresAt) }),
    refreshAt: t.field({
      type: 'DateTime',
      description: 'When the gateway re-signs it (and pushes the new URL to subscribers)',
      resolve: (u) => new Date(u.refreshAt),
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
  // Every signedUrl of a response lands in one batch: one cache round trip, bulk signing.
  signedUrl: t.loadable({
    type: 'SignedUrl',
    args: {
      minTtl: t.arg.int({
        required: false,
        description: 'Seconds the URL must stay valid at least (default 300, or a quarter of the TTL)',
      }),
    },
    load: (reqs: UrlRequest[], ctx) => ctx.urls.resolveMany(reqs),
    loaderOptions: { cacheKeyFn: (r: UrlRequest) => `${r.id}:${r.minTtl}` },
    resolve: (image, args, ctx): UrlRequest => ({
      id: image.id,
      key: image.objectKey,
      minTtl: parseMinTtl(args.minTtl, ctx.limits),
    }),
  }),
  urlStatus: t.loadable({
    type: 'UrlStatus',
    load: (ids: string[], ctx) => ctx.images.urlStatus(ids),
    resolve: (image) => image.id,
  }),
}));
