import type { LinkState, UrlRefresh } from '@signet/vue';
import { DefaultApolloClient } from '@vue/apollo-composable';
import { flushPromises, mount } from '@vue/test-utils';
import { describe, expect, it } from 'vitest';
import { defineComponent, h, ref } from 'vue';
import { createApolloClient } from '../lib/apollo';
import { loadPresets } from '../lib/presets';
import { presetsAnswer } from '../test-support/gallery-fixtures';
import { LIVE_URLS, useImagePresets, useTileLinkState } from './useImagePresets';

/** A gateway with these presets, counting the questions. */
function gateway(names: readonly string[]) {
  const gw = {
    asked: 0,
    client: createApolloClient('/graphql', (async () => {
      gw.asked++;
      return new Response(JSON.stringify(presetsAnswer(names)), {
        headers: { 'content-type': 'application/json' },
      });
    }) as typeof fetch),
  };
  return gw;
}

/** Mounts `setup` as a component's, with the client (and the streams) provided; returns what it gave. */
function run<T>(gw: ReturnType<typeof gateway>, setup: () => T, provide: Record<symbol, unknown> = {}) {
  let out!: T;
  const w = mount(
    defineComponent({
      setup() {
        out = setup();
        return () => h('div');
      },
    }),
    { global: { provide: { [DefaultApolloClient]: gw.client, ...provide } } },
  );
  return { w, out };
}

describe('useImagePresets', () => {
  it('is undefined until the gateway answers, then the app’s presets it has', async () => {
    const gw = gateway(['thumb', 'hero']);
    const { w, out } = run(gw, () => useImagePresets());
    expect(out.presets.value).toBeUndefined();
    await flushPromises();
    expect(out.presets.value).toEqual({ tile: 'thumb', detail: undefined });
    expect(gw.asked).toBe(1);
    // Another component asking later reads the cache.
    const second = run(gw, () => useImagePresets());
    await flushPromises();
    expect(second.out.presets.value).toEqual({ tile: 'thumb', detail: undefined });
    expect(gw.asked).toBe(1);
    w.unmount();
    second.w.unmount();
  });

  it('with ask: false asks nothing, and has the answer once someone else asked', async () => {
    const gw = gateway([]);
    const { w, out } = run(gw, () => useImagePresets({ ask: false }));
    await flushPromises();
    expect(gw.asked).toBe(0);
    expect(out.presets.value).toBeUndefined();
    await loadPresets(gw.client);
    await flushPromises();
    expect(out.presets.value).toEqual({ tile: undefined, detail: undefined });
    expect(gw.asked).toBe(1);
    w.unmount();
  });
});

describe('useTileLinkState', () => {
  const stream = (state: LinkState) => ({ state: ref<LinkState>(state) }) as unknown as UrlRefresh;

  it('follows the tile preset’s stream, or the originals’ where the gateway has none', async () => {
    const streams: Record<string, UrlRefresh> = { thumb: stream('live'), '': stream('reconnecting') };
    const tile = ref<string | undefined>(undefined);
    const { w, out } = run(gateway([]), () => useTileLinkState(() => tile.value), {
      [LIVE_URLS as symbol]: (preset?: string) => streams[preset ?? '']!,
    });
    expect(out.value).toBe('reconnecting');
    tile.value = 'thumb';
    expect(out.value).toBe('live');
    w.unmount();
  });

  it('is idle without streams (a component mounted alone)', () => {
    const { w, out } = run(gateway([]), () => useTileLinkState(() => 'thumb'));
    expect(out.value).toBe('idle');
    w.unmount();
  });
});
