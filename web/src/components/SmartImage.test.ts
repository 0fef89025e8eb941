import { flushPromises, mount } from '@vue/test-utils';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { FreshUrl } from '../composables/useUrlRefresh';
import SmartImage, { type SmartImageSource } from './SmartImage.vue';
import { defaultBackoffMs, SMART_IMAGE_DEPS, type SmartImageDeps } from './smart-image-deps';

const NOW = Date.parse('2030-01-01T12:00:00Z');
const at = (secondsFromNow: number) => new Date(NOW + secondsFromNow * 1000).toISOString();
const url = (name: string, secondsFromNow = 3600): FreshUrl => ({
  url: `https://bucket.test/${name}.png`,
  expiresAt: at(secondsFromNow),
});

/**
 * The component's outside world, recorded: visibility is switched by the test, URL refreshes
 * answer from a queue, preloads resolve (or fail) on demand. Only this edge is faked.
 */
function fakeDeps() {
  let setVisible: (visible: boolean) => void = () => {};
  const listeners = new Map<string, (u: FreshUrl) => void>();
  const refreshAnswers: Array<FreshUrl | null> = [];
  const deps: SmartImageDeps = {
    observe: vi.fn((_el, onChange) => {
      setVisible = onChange;
      return () => {};
    }),
    urls: {
      track: vi.fn((id: string, listener: (u: FreshUrl) => void) => {
        listeners.set(id, listener);
        return () => listeners.delete(id);
      }),
      refresh: vi.fn(async () => refreshAnswers.shift() ?? null),
    },
    preload: vi.fn(async () => {}),
    now: () => NOW,
    backoffMs: defaultBackoffMs,
  };
  return {
    deps,
    refreshAnswers,
    visible: (v: boolean) => setVisible(v),
    push: (id: string, u: FreshUrl) => listeners.get(id)?.(u),
    tracked: () => [...listeners.keys()],
  };
}

const image = (over: Partial<SmartImageSource> = {}): SmartImageSource => ({
  id: 'img-1',
  width: 480,
  height: 320,
  signedUrl: url('first'),
  proxyUrl: 'http://gateway.test/proxy/img-1?t=tok&mode=stream',
  ...over,
});

function setup(source = image()) {
  const fake = fakeDeps();
  const wrapper = mount(SmartImage, {
    props: { image: source, alt: 'PNG image, 480 × 320' },
    global: { provide: { [SMART_IMAGE_DEPS as symbol]: fake.deps } },
  });
  const root = () => wrapper.get('.smart-image');
  const img = () => wrapper.find('img');
  const state = () => root().attributes('data-state');
  return { ...fake, wrapper, root, img, state };
}

describe('SmartImage', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('shows a placeholder with the reserved size and asks for nothing while off screen', () => {
    const t = setup();
    expect(t.state()).toBe('placeholder');
    expect(t.img().exists()).toBe(false);
    expect(t.root().attributes('style')).toContain('aspect-ratio: 480 / 320');
    expect(t.root().attributes('role')).toBe('img');
    expect(t.root().attributes('aria-label')).toBe('PNG image, 480 × 320');
    expect(t.deps.urls.refresh).not.toHaveBeenCalled();
    expect(t.deps.urls.track).not.toHaveBeenCalled();
  });

  it('starts loading its URL once visible, joins the shared subscription, and shows the picture', async () => {
    const t = setup();
    t.visible(true);
    await flushPromises();
    expect(t.state()).toBe('loading');
    expect(t.root().attributes('aria-busy')).toBe('true');
    expect(t.img().attributes('src')).toBe('https://bucket.test/first.png');
    expect(t.img().attributes('alt')).toBe('PNG image, 480 × 320');
    expect(t.img().attributes('width')).toBe('480');
    expect(t.img().attributes('height')).toBe('320');
    expect(t.tracked()).toEqual(['img-1']);

    await t.img().trigger('load');
    expect(t.state()).toBe('loaded');
    expect(t.wrapper.find('.smart-image__skeleton').exists()).toBe(false);

    t.visible(false);
    expect(t.tracked()).toEqual([]); // off screen: no longer in the subscription
  });

  it('replaces a URL about to expire before using it', async () => {
    const t = setup(image({ signedUrl: url('old', 1) }));
    t.refreshAnswers.push(url('renewed'));
    t.visible(true);
    await flushPromises();
    expect(t.deps.urls.refresh).toHaveBeenCalledWith('img-1');
    expect(t.img().attributes('src')).toBe('https://bucket.test/renewed.png');
  });

  it('swaps in a pushed URL only after it is preloaded, and ignores URLs that are not newer', async () => {
    const t = setup();
    t.visible(true);
    await flushPromises();
    await t.img().trigger('load');
    const element = t.img().element;

    let release: () => void = () => {};
    vi.mocked(t.deps.preload).mockImplementationOnce(
      () =>
        new Promise<void>((resolve) => {
          release = resolve;
        }),
    );
    t.push('img-1', url('pushed', 7200));
    await flushPromises();
    expect(t.deps.preload).toHaveBeenCalledWith('https://bucket.test/pushed.png');
    // Until the new picture is decoded the old one stays: no flash.
    expect(t.img().attributes('src')).toBe('https://bucket.test/first.png');
    release();
    await flushPromises();
    expect(t.img().attributes('src')).toBe('https://bucket.test/pushed.png');
    expect(t.img().element).toBe(element); // same element: swapped, not re-created
    expect(t.state()).toBe('loaded');

    t.push('img-1', url('stale', 100)); // expires earlier than what it shows: a no-op
    t.push('img-1', url('same', 7200)); // not later either
    await flushPromises();
    expect(t.deps.preload).toHaveBeenCalledTimes(1);
    expect(t.img().attributes('src')).toBe('https://bucket.test/pushed.png');
  });

  it('keeps the shown picture when a pushed URL fails to preload', async () => {
    const t = setup();
    t.visible(true);
    await flushPromises();
    await t.img().trigger('load');
    vi.mocked(t.deps.preload).mockRejectedValueOnce(new Error('decode failed'));
    t.push('img-1', url('broken', 7200));
    await flushPromises();
    expect(t.img().attributes('src')).toBe('https://bucket.test/first.png');
    expect(t.state()).toBe('loaded');
  });

  it('takes a newer URL from its props (a refetched page) the same way', async () => {
    const t = setup();
    t.visible(true);
    await flushPromises();
    await t.img().trigger('load');
    await t.wrapper.setProps({ image: image({ signedUrl: url('refetched', 7200) }) });
    await flushPromises();
    expect(t.img().attributes('src')).toBe('https://bucket.test/refetched.png');
  });

  it('on load errors retries with exponential backoff through refreshSignedUrls, then the proxy, then an error state', async () => {
    const t = setup();
    t.refreshAnswers.push(url('retry-1'), url('retry-2'), url('retry-3'));
    t.visible(true);
    await flushPromises();
    const refresh = vi.mocked(t.deps.urls.refresh);

    const delays = [400, 800, 1600];
    for (const [i, delay] of delays.entries()) {
      await t.img().trigger('error');
      expect(t.state()).toBe('loading');
      await vi.advanceTimersByTimeAsync(delay - 1);
      expect(refresh).toHaveBeenCalledTimes(i); // still backing off
      await vi.advanceTimersByTimeAsync(1);
      await flushPromises();
      expect(refresh).toHaveBeenCalledTimes(i + 1);
      expect(t.img().attributes('src')).toBe(`https://bucket.test/retry-${i + 1}.png`);
    }

    // Three refreshed URLs failed too: the stable proxy link is next, without waiting.
    await t.img().trigger('error');
    await flushPromises();
    expect(refresh).toHaveBeenCalledTimes(3);
    expect(t.img().attributes('src')).toBe('http://gateway.test/proxy/img-1?t=tok&mode=stream');
    expect(t.root().attributes('data-source')).toBe('proxy');

    await t.img().trigger('error');
    expect(t.state()).toBe('error');
    expect(t.img().exists()).toBe(false);
    expect(t.root().attributes('aria-label')).toBe('PNG image, 480 × 320');
    const button = t.wrapper.get('button');
    expect(button.text()).toBe('Retry');
    expect(button.attributes('type')).toBe('button'); // a real button: focusable, Enter and Space work
    expect(button.attributes('aria-label')).toBe('Retry loading PNG image, 480 × 320');
  });

  it('recovers through the proxy when refreshed URLs keep failing', async () => {
    const t = setup();
    t.visible(true);
    await flushPromises();
    await t.img().trigger('error');
    // Every refresh answers null (e.g. the gateway is down): each try is spent in turn.
    await vi.advanceTimersByTimeAsync(400);
    expect(t.deps.urls.refresh).toHaveBeenCalledTimes(1);
    await vi.advanceTimersByTimeAsync(799);
    expect(t.deps.urls.refresh).toHaveBeenCalledTimes(1);
    await vi.advanceTimersByTimeAsync(1 + 1600);
    await flushPromises();
    expect(t.deps.urls.refresh).toHaveBeenCalledTimes(3);
    expect(t.root().attributes('data-source')).toBe('proxy');
    await t.img().trigger('load');
    expect(t.state()).toBe('loaded');
  });

  it('the retry button starts over with a fresh URL and can succeed', async () => {
    const t = setup();
    t.visible(true);
    await flushPromises();
    await t.img().trigger('error');
    await vi.advanceTimersByTimeAsync(400 + 800 + 1600);
    await flushPromises();
    expect(t.root().attributes('data-source')).toBe('proxy');
    await t.img().trigger('error'); // the proxy fails too
    await flushPromises();
    expect(t.state()).toBe('error');

    t.refreshAnswers.push(url('after-retry'));
    await t.wrapper.get('button').trigger('click');
    await flushPromises();
    expect(t.deps.urls.refresh).toHaveBeenCalledTimes(4);
    expect(t.state()).toBe('loading');
    expect(t.img().attributes('src')).toBe('https://bucket.test/after-retry.png');
    expect(t.root().attributes('data-source')).toBe('signed');
    await t.img().trigger('load');
    expect(t.state()).toBe('loaded');

    // A later failure gets the whole backoff sequence again.
    t.refreshAnswers.push(url('again'));
    await t.img().trigger('error');
    await vi.advanceTimersByTimeAsync(400);
    await flushPromises();
    expect(t.img().attributes('src')).toBe('https://bucket.test/again.png');
  });

  it('stops its timers and subscription when unmounted mid-retry', async () => {
    const t = setup();
    t.visible(true);
    await flushPromises();
    await t.img().trigger('error');
    t.wrapper.unmount();
    await vi.advanceTimersByTimeAsync(5000);
    expect(t.deps.urls.refresh).not.toHaveBeenCalled();
    expect(t.tracked()).toEqual([]);
  });
});
