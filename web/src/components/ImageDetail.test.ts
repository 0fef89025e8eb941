import { SMART_IMAGE_DEPS } from '@signet/vue';
import { DefaultApolloClient } from '@vue/apollo-composable';
import { flushPromises, mount } from '@vue/test-utils';
import { afterEach, describe, expect, it } from 'vitest';
import { createApolloClient } from '../lib/apollo';
import { galleryImage, quietImages } from '../test-support/gallery-fixtures';
import ImageDetail from './ImageDetail.vue';

const image = galleryImage(1);

/** The gateway away (a network error) while `down.value` is true, else the detail's answer. */
function mountDetail(down: { value: boolean }) {
  let asked = 0;
  const fetchImpl = async () => {
    asked++;
    if (down.value) throw new TypeError('Failed to fetch');
    const data = {
      imagesByIds: [
        {
          __typename: 'Image',
          id: 'img-1',
          medium: {
            __typename: 'SignedUrl',
            url: 'http://bucket.test/m.webp',
            expiresAt: '2030-01-01T13:00:00Z',
          },
          mediumSrcset: 'http://bucket.test/m.webp 800w',
          mediumProxyUrl: 'http://gateway.test/proxy/m',
        },
      ],
    };
    return new Response(JSON.stringify({ data }), { headers: { 'content-type': 'application/json' } });
  };
  const client = createApolloClient('/graphql', fetchImpl as typeof fetch);
  const w = mount(ImageDetail, {
    attachTo: document.body,
    props: { image, position: 1, total: 3, hasPrev: false, hasNext: true, deleting: false },
    global: { provide: { [DefaultApolloClient]: client, [SMART_IMAGE_DEPS as symbol]: quietImages } },
  });
  return { w, asked: () => asked };
}

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
