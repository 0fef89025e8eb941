import type { LinkState, UrlRefresh } from '@signet/vue';
import { useQuery } from '@vue/apollo-composable';
import { type ComputedRef, computed, type InjectionKey, inject } from 'vue';
import { ImagePresetsDocument } from '../gql/graphql';
import { choosePresets, type Presets } from '../lib/presets';

/**
 * Which of the app's presets the gateway has (lib/presets.ts): undefined until it has said. Asked
 * once (the answer stays in the Apollo cache; a view mounted later reads it there). With
 * `ask: false` it is only read from the cache, never asked: for a part of the page that shows
 * before a viewer is signed in (the top bar), where the question would be refused.
 */
export function useImagePresets(options: { ask?: boolean } = {}) {
  const { result, error, loading, refetch } = useQuery(
    ImagePresetsDocument,
    {},
    { fetchPolicy: options.ask === false ? 'cache-only' : 'cache-first' },
  );
  const presets: ComputedRef<Presets | undefined> = computed(() => {
    const list = result.value?.imagePresets;
    return list ? choosePresets(list.map((p) => p.name)) : undefined;
  });
  return { presets, error, loading, refetch };
}

/** A preset's shared live-URL stream, or the originals' (`Signet.urls`; main.ts provides it). */
export const LIVE_URLS: InjectionKey<(preset?: string) => UrlRefresh> = Symbol('signet.liveUrls');

/**
 * The state of the live-URL stream the gallery's tiles follow: the tile preset's, or the
 * originals' where the gateway has no such preset. The top bar's badge shows it; the detail view
 * takes its reconnecting as the sign that a gateway that was away is back. 'idle' when no stream
 * is provided (a component mounted alone).
 */
export function useTileLinkState(tilePreset: () => string | undefined): ComputedRef<LinkState> {
  const streams = inject(LIVE_URLS, null);
  return computed(() => streams?.(tilePreset()).state.value ?? 'idle');
}
