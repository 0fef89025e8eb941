import type { ProxyLinks } from '../auth/proxy-links.js';
import type { Viewer } from '../auth/viewer.js';
import type { Config } from '../config.js';
import type { ImageRow } from '../db/types.js';
import type { ImageService } from '../images/image-service.js';
import type { VariantCatalog } from '../images/variants.js';
import type { UrlStatsView } from '../stats/url-stats-report.js';
import type { LiveUrls } from '../urls/live-urls.js';
import type { UrlService } from '../urls/url-service.js';

/** What resolvers may call: the domain, nothing else (built once by the container). */
export interface SchemaServices {
  images: ImageService;
  urls: Pick<UrlService, 'resolveMany'>;
  live: LiveUrls<ImageRow>;
  links: ProxyLinks;
  /** Presets and transforms: which variant a field's arguments ask for. */
  variants: VariantCatalog;
  urlStats(viewer: Viewer, days: number): Promise<UrlStatsView>;
  /** The URL life limits `minTtl` is checked against. */
  limits: Pick<Config, 'urlTtlSeconds' | 'defaultMinTtlSeconds'>;
}

export interface Context extends SchemaServices {
  viewer: Viewer;
  requestId: string;
}

/**
 * A request's context: the services, its viewer and its request id. Written out rather than
 * `{ ...services, viewer, requestId }`: V8's optimized code gives every object built by a spread
 * followed by more properties a map (shape) of its own, ~4 µs each, and resolvers reading a
 * context would meet a new shape per request (docs/benchmarks.md, finding 33).
 */
export function contextOf(s: SchemaServices, viewer: Viewer, requestId: string): Context {
  return {
    images: s.images,
    urls: s.urls,
    live: s.live,
    links: s.links,
    variants: s.variants,
    urlStats: s.urlStats,
    limits: s.limits,
    viewer,
    requestId,
  };
}
