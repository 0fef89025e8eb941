import type { ServerResponse } from 'node:http';
import type { Clock } from '../clock.js';
import type { Config } from '../config.js';
import type { ImagePreset } from '../config-images.js';
import { RECENT_ROW_MS } from '../db/recent-rows.js';
import { type ProxyGrant, secondsUntil } from '../images/proxy-grant.js';
import type { VariantCatalog } from '../images/variants.js';
import { andThen, type MaybePromise } from '../lib/maybe-promise.js';
import { urlIdOf } from '../storage/variant.js';
import type { UrlService } from '../urls/url-service.js';

/**
 * How long before a URL dies a cached redirect must be dropped: time for the browser to follow
 * the cached redirect and for an origin clock running ahead. A tenth of the TTL for tiny TTLs.
 */
export function redirectMarginSeconds(urlTtlSeconds: number): number {
  return Math.min(60, Math.max(1, Math.floor(urlTtlSeconds / 10)));
}

export interface RedirectDeps {
  config: Pick<Config, 'defaultMinTtlSeconds' | 'urlTtlSeconds'>;
  urls: Pick<UrlService, 'resolveRecent'>;
  variants: Pick<VariantCatalog, 'forImage' | 'objectKeyFor'>;
  clock: Clock;
}

/**
 * Redirect mode: a 302 to the URL the URL service holds for the image (the cache path, so
 * repeated hits sign nothing). A cached redirect must never outlive its signature, so max-age is
 * the URL's remaining life minus a margin (and no longer than the link itself lives). A URL
 * seen in the last few seconds answers at once, with no promise (a hot link).
 */
export function redirectToSignedUrl(
  s: RedirectDeps,
  res: ServerResponse,
  g: ProxyGrant,
  preset?: ImagePreset,
): MaybePromise<void> {
  const variant = preset && s.variants.forImage(preset, g.row);
  const resolved = s.urls.resolveRecent(
    {
      id: urlIdOf(g.row.id, variant),
      key: s.variants.objectKeyFor(g.row, variant, preset?.name),
      placement: g.row,
      minTtl: s.config.defaultMinTtlSeconds,
      variant,
      preset: variant ? preset.name : undefined,
    },
    // The same bound as the rows': what a node remembers for the proxy is at most 5 s behind.
    RECENT_ROW_MS,
  );
  return andThen(resolved, (r) => {
    const now = s.clock.now();
    let maxAge = secondsUntil(r.expiresAt - redirectMarginSeconds(s.config.urlTtlSeconds) * 1000, now);
    if (g.tokenExpiresAt !== null) maxAge = Math.min(maxAge, secondsUntil(g.tokenExpiresAt, now));
    res.writeHead(302, {
      location: r.url,
      'cache-control': `private, max-age=${maxAge}`,
      'content-length': 0,
      // The signed URL must not leak to the next site through Referer.
      'referrer-policy': 'no-referrer',
      ...(g.byBearer ? { vary: 'Authorization' } : {}),
    });
    res.end();
  });
}
