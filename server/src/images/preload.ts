import type { ImagesRepo } from '../db/images-repo.js';
import type { ImageRow } from '../db/types.js';
import type { UrlService } from '../urls/url-service.js';

export interface PreloadDeps {
  images: Pick<ImagesRepo, 'findLive'>;
  urls: Pick<UrlService, 'resolveMany'>;
  /** Preloaded URLs must serve a request made right after: the default minTtl, like any request. */
  minTtlSeconds: number;
}

/** Rows looked up and URLs resolved per round (one SQL statement, one cache round trip). */
export const PRELOAD_CHUNK = 500;

/**
 * Warms the cache: resolves the URLs of these rows (misses are signed and written back) and
 * returns how many had to be signed. The one copy used by `preloadSignedUrls` and by the
 * background job that runs large lists.
 */
export async function preloadRows(deps: PreloadDeps, rows: readonly ImageRow[]): Promise<number> {
  let signed = 0;
  for (let i = 0; i < rows.length; i += PRELOAD_CHUNK) {
    const chunk = rows.slice(i, i + PRELOAD_CHUNK);
    const urls = await deps.urls.resolveMany(
      chunk.map((r) => ({ id: r.id, key: r.objectKey, placement: r, minTtl: deps.minTtlSeconds })),
    );
    signed += urls.filter((u) => !u.cached).length;
  }
  return signed;
}

/** The background job's half: ids checked when the job was queued, rows looked up again now. */
export async function preloadIds(deps: PreloadDeps, ids: readonly string[]): Promise<number> {
  let signed = 0;
  for (let i = 0; i < ids.length; i += PRELOAD_CHUNK) {
    const rows = await deps.images.findLive(ids.slice(i, i + PRELOAD_CHUNK));
    signed += await preloadRows(deps, rows);
  }
  return signed;
}
