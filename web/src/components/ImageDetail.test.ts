import {
  type LinkState,
  SMART_IMAGE_DEPS,
  SmartImage,
  type SmartImageSource,
  type UrlRefresh,
} from '@signet/vue';
import { DefaultApolloClient } from '@vue/apollo-composable';
import { flushPromises, mount } from '@vue/test-utils';
import { afterEach, describe, expect, it } from 'vitest';
import { type Ref, ref } from 'vue';
import { LIVE_URLS } from '../composables/useImagePresets';
import { createApolloClient } from '../lib/apollo';
import { DETAIL_BAR_PX, detailSizes, type Presets } from '../lib/presets';
import { galleryImage, quietImages } from '../test-support/gallery-fixtures';
import ImageDetail from './ImageDetail.vue';

const image = galleryImage(1);
const defaults: Presets = { tile: 'thumb', detail: 'medium' };

/**
 * The gateway away (a network error) while `down.value` is true, else the detail's answer (the
 * `medium` preset's, or the original's when the query says `$medium: false`). `streams` stands
 * for the live-URL streams main.ts provides (LIVE_URLS).
 */
function mountDetail(
  down: { value: boolean },
  presets: Presets = defaults,
  streams?: (preset?: string) => UrlRefresh,
) {
  let asked = 0;
  const variables: Record<string, unknown>[] = [];
  const fetchImpl = async (_url: RequestInfo | URL, init?: RequestInit) => {
    asked++;
    variables.push((JSON.parse(String(init?.body)) as { variables: Record<string, unknown> }).variables);
    if (down.value) throw new TypeError('Failed to fetch');
    const url = (u: string) => ({ __typename: 'SignedUrl', url: u, expiresAt: '2030-01-01T13:00:00Z' });
    const medium = variables.at(-1)!['medium'] !== false;
    const data = {
      imagesByIds: [
        {
          __typename: 'Image',
          id: 'img-1',
          ...(medium
            ? {
                medium: url('http://bucket.test/m.webp'),
                mediumSrcset: 'http://bucket.test/m.webp 800w',
                mediumProxyUrl: 'http://gateway.test/proxy/m',
              }
            : {
                original: url('http://bucket.test/img-1.png'),
                originalProxyUrl: 'http://gateway.test/proxy/img-1?m=stream',
              }),
        },
      ],
    };
    return new Response(JSON.stringify({ data }), { headers: { 'content-type': 'application/json' } });
  };
  const client = createApolloClient('/graphql', fetchImpl as typeof fetch);
  const w = mount(ImageDetail, {
    attachTo: document.body,
    props: { image, presets, position: 1, total: 3, hasPrev: false, hasNext: true, deleting: false },
    global: {
      provide: {
        [DefaultApolloClient]: client,
        [SMART_IMAGE_DEPS as symbol]: quietImages,
        ...(streams ? { [LIVE_URLS as symbol]: streams } : {}),
      },
    },
  });
  return { w, asked: () => asked, variables };
}

/** A live-URL stream that only has a state (what the detail view looks at). */
const stream = () => ({ state: ref<LinkState>('live') }) as unknown as UrlRefresh & { state: Ref<LinkState> };

afterEach(() => {
  document.body.innerHTML = '';
});

describe('ImageDetail after a failed load', () => {
  it('offers Retry, which loads the picture once the gateway answers', async () => {
    const down = { value: true };
    const { w } = mountDetail(down);
    await flushPromises();
    const alert = w.get('[role=alert]');
    expect(alert.text()).toContain('Couldn’t load this image: Failed to fetch');
    const retry = alert.get('button');
    expect(retry.text()).toBe('Retry');

    // Still away: the error again, and focus back on its button.
    retry.element.focus();
    await retry.trigger('click');
    await flushPromises();
    expect(w.find('[role=alert]').exists()).toBe(true);
    expect(document.activeElement?.textContent?.trim()).toBe('Retry');

    down.value = false;
    await w.get('[role=alert] button').trigger('click');
    await flushPromises();
    expect(w.find('[role=alert]').exists()).toBe(false);
    expect(w.find('.smart-image').exists()).toBe(true);
    w.unmount();
  });

  it('asks again by itself when the browser is back online', async () => {
    const down = { value: true };
    const { w, asked } = mountDetail(down);
    await flushPromises();
    expect(w.find('[role=alert]').exists()).toBe(true);
    const before = asked();
    down.value = false;
    window.dispatchEvent(new Event('online'));
    await flushPromises();
    expect(asked()).toBe(before + 1);
    expect(w.find('.smart-image').exists()).toBe(true);
    w.unmount();
  });
});

describe('ImageDetail and the presets the gateway has', () => {
  const shown = (w: ReturnType<typeof mountDetail>['w']) => {
    const c = w.getComponent(SmartImage);
    const source = c.props('image') as SmartImageSource;
    return { signedUrl: source.signedUrl, proxyUrl: source.proxyUrl, preset: c.props('preset') };
  };

  it('shows the `medium` preset through its srcset, following that preset’s live URLs', async () => {
    const { w, variables } = mountDetail({ value: false });
    await flushPromises();
    expect(variables).toEqual([{ id: 'img-1', medium: true }]);
    expect(shown(w)).toEqual({
      signedUrl: {
        __typename: 'SignedUrl',
        url: 'http://bucket.test/m.webp',
        expiresAt: '2030-01-01T13:00:00Z',
        srcset: 'http://bucket.test/m.webp 800w',
      },
      proxyUrl: 'http://gateway.test/proxy/m',
      preset: 'medium',
    });
    // The width it is shown at, from its 640×480 (happy-dom measures no bar: the CSS's 4.5rem).
    expect(w.getComponent(SmartImage).props('sizes')).toBe(detailSizes(640 / 480, DETAIL_BAR_PX));
    w.unmount();
  });

  it('without `medium` (another IMAGE_PRESETS, IMAGE_TRANSFORMS=off): the original, no srcset, the originals’ live URLs', async () => {
    const { w, variables } = mountDetail({ value: false }, { tile: undefined, detail: undefined });
    await flushPromises();
    expect(w.find('[role=alert]').exists()).toBe(false);
    expect(variables).toEqual([{ id: 'img-1', medium: false }]);
    expect(shown(w)).toEqual({
      signedUrl: {
        __typename: 'SignedUrl',
        url: 'http://bucket.test/img-1.png',
        expiresAt: '2030-01-01T13:00:00Z',
        srcset: null,
      },
      proxyUrl: 'http://gateway.test/proxy/img-1?m=stream',
      preset: undefined,
    });
    // "Original" stays the image's own proxy link.
    expect(w.get('[data-testid=original-link]').attributes('href')).toBe(image.proxyUrl);
    w.unmount();
  });

  it.each<[string, Presets['tile']]>([
    ['thumb', 'thumb'],
    ['none (the originals’)', undefined],
  ])('asks again when the tiles’ stream, %s, is back after reconnecting', async (_, tile) => {
    const streams = { thumb: stream(), original: stream() };
    const down = { value: true };
    const { w, asked } = mountDetail(down, { tile, detail: 'medium' }, (preset) =>
      preset === 'thumb' ? streams.thumb : streams.original,
    );
    await flushPromises();
    expect(w.find('[role=alert]').exists()).toBe(true);
    const before = asked();
    down.value = false;
    // The other stream coming back says nothing about the tiles'.
    const other = tile === 'thumb' ? streams.original : streams.thumb;
    other.state.value = 'reconnecting';
    await flushPromises();
    other.state.value = 'live';
    await flushPromises();
    expect(asked()).toBe(before);
    const own = tile === 'thumb' ? streams.thumb : streams.original;
    own.state.value = 'reconnecting';
    await flushPromises();
    own.state.value = 'live';
    await flushPromises();
    expect(asked()).toBe(before + 1);
    expect(w.find('[role=alert]').exists()).toBe(false);
    w.unmount();
  });
});
