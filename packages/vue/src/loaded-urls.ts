import type { FreshUrl } from './useUrlRefresh';

/** Images remembered per Signet instance: the oldest goes first past this. */
const MAX_REMEMBERED = 2000;

/**
 * The signed URL each image (and preset) last loaded from, per Signet instance (its SmartImage
 * deps). A tile mounted again (a detail view reopened, a tile scrolled back into a virtualised
 * list, a `v-if` toggled) starts from it while it has life left: the browser holds the picture
 * under that URL, and the newest URL, which a push may have made another, would download the
 * same bytes again.
 */
const byInstance = new WeakMap<object, Map<string, FreshUrl>>();

export function rememberLoaded(instance: object, key: string, url: FreshUrl): void {
  let loaded = byInstance.get(instance);
  if (!loaded) {
    loaded = new Map();
    byInstance.set(instance, loaded);
  }
  loaded.delete(key); // re-inserted: the newest last
  loaded.set(key, url);
  if (loaded.size > MAX_REMEMBERED) loaded.delete(loaded.keys().next().value as string);
}

export function lastLoaded(instance: object, key: string): FreshUrl | undefined {
  return byInstance.get(instance)?.get(key);
}
