import type { InjectionKey } from 'vue';
import type { FreshUrl, UrlRefresh } from './useUrlRefresh';
import type { Observe } from './visibility';

/** An image as SmartImage shows it: the SignetImage fragment has this shape. */
export interface SmartImageSource {
  id: string;
  width?: number | null;
  height?: number | null;
  /** With a preset: the preset's URL, and its srcset beside it (`srcset`). */
  signedUrl: FreshUrl;
  /** Stable capability link, the last resort when signed URLs keep failing. */
  proxyUrl: string;
  /** The image's ThumbHash (base64), painted before and under the picture; null until computed. */
  placeholder?: string | null;
}

/** What SmartImage needs from the outside world; createSignet provides the real ones, tests fakes. */
export type ImageUrls = Pick<UrlRefresh, 'track' | 'refresh' | 'current'>;

export interface SmartImageDeps {
  /** The originals' URLs. */
  urls: ImageUrls;
  /** A preset's URLs (with their srcset): one shared subscription per preset. */
  variantUrls(preset: string): ImageUrls;
  observe: Observe;
  now(): number;
  /** Wait before refresh attempt n (1-based): exponential backoff. */
  backoffMs(attempt: number): number;
}

export const SMART_IMAGE_DEPS: InjectionKey<SmartImageDeps> = Symbol('SmartImageDeps');

export const MAX_REFRESH_ATTEMPTS = 3;

export const defaultBackoffMs = (attempt: number) => 400 * 2 ** (attempt - 1);
