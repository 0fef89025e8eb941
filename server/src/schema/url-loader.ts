import DataLoader from 'dataloader';
import type { ResolvedUrl, UrlRequest } from '../urls/resolved-url.js';
import type { Context } from './context.js';

const loaders = new WeakMap<Context, DataLoader<UrlRequest, ResolvedUrl, string>>();

/**
 * The one URL batch of a request: `signedUrl` (original, preset or transform) and `srcset` of
 * every image of a response load through this loader, so a page asking for originals,
 * thumbnails and srcsets is one `resolveMany` — one cache round trip, one bulk signing. Per
 * request (the context), like the Pothos dataloader fields; subscriptions do not use it (their
 * context lives for hours and the URLs it remembered would go stale).
 */
export function urlLoader(ctx: Context): DataLoader<UrlRequest, ResolvedUrl, string> {
  let loader = loaders.get(ctx);
  if (!loader) {
    // No per-request memo: resolveMany already reads and signs each id once per batch, however
    // often it is asked, so keying every load by a fresh string (100 a page) bought nothing.
    loader = new DataLoader((reqs: readonly UrlRequest[]) => ctx.urls.resolveMany(reqs), { cache: false });
    loaders.set(ctx, loader);
  }
  return loader;
}

/**
 * The URLs of many requests, or the first failure (a srcset is whole or an error). `load` each,
 * not `loadMany`: that one catches every load into one more promise, and a page's srcsets are a
 * hundred of these calls (one or two URLs each).
 */
export function loadAll(ctx: Context, reqs: readonly UrlRequest[]): Promise<ResolvedUrl[]> {
  const loader = urlLoader(ctx);
  if (reqs.length === 1) return loader.load(reqs[0]!).then((u) => [u]);
  return Promise.all(reqs.map((r) => loader.load(r)));
}
