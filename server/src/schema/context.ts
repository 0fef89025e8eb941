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
