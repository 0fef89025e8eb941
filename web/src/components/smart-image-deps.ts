import type { InjectionKey } from 'vue';
import type { UrlRefresh } from '../composables/useUrlRefresh';
import type { Observe } from '../lib/visibility';

/** What SmartImage needs from the outside world; App provides the real ones, tests fakes. */
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
