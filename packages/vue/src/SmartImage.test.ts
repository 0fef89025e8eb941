import { flushPromises, mount } from '@vue/test-utils';
import { rgbaToThumbHash } from 'thumbhash';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import SmartImage from './SmartImage.vue';
import {
  defaultBackoffMs,
  SMART_IMAGE_DEPS,
  type SmartImageDeps,
  type SmartImageSource,
} from './smart-image-deps';
import { type FreshUrl, UNREACHABLE, type Unreachable } from './useUrlRefresh';

const NOW = Date.parse('2030-01-01T12:00:00Z');
const at = (secondsFromNow: number) => new Date(NOW + secondsFromNow * 1000).toISOString();
const url = (name: string, secondsFromNow = 3600): FreshUrl => ({
  url: `https://bucket.test/${name}.png`,
  expiresAt: at(secondsFromNow),
});

/**
 * The component's outside world, recorded: visibility is switched by the test, URL refreshes and
 * current-URL reads answer from queues. Only this edge is faked.
 */
function fakeDeps() {
  let setVisible: (visible: boolean) => void = () => {};
  const listeners = new Map<string, (u: FreshUrl) => void>();
  const refreshAnswers: Array<FreshUrl | null | Unreachable> = [];
  const currentAnswers: Array<FreshUrl | null> = [];
  const urls: SmartImageDeps['urls'] = {
    track: vi.fn((id: string, listener: (u: FreshUrl) => void) => {
      listeners.set(id, listener);
      return () => listeners.delete(id);
    }),
    refresh: vi.fn(async () => refreshAnswers.shift() ?? null),
    current: vi.fn(async () => currentAnswers.shift() ?? null),
  };
  const deps: SmartImageDeps = {
    observe: vi.fn((_el, onChange) => {
      setVisible = onChange;
      return () => {};
    }),
    urls,
    // One set of fakes for every preset: the tests check which preset was asked for.
    variantUrls: vi.fn(() => urls),
    now: () => NOW,
    backoffMs: defaultBackoffMs,
  };
  return {
    deps,
    refreshAnswers,
    currentAnswers,
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

function setup(
  source = image(),
  extra: { preset?: string; sizes?: string; fill?: boolean; fit?: 'cover' | 'contain' } = {},
  fake = fakeDeps(),
) {
  const wrapper = mount(SmartImage, {
    props: { image: source, alt: 'PNG image, 480 × 320', ...extra },
    global: { provide: { [SMART_IMAGE_DEPS as symbol]: fake.deps } },
  });
  const root = () => wrapper.get('.smart-image');
  const img = () => wrapper.find('img');
  const state = () => root().attributes('data-state');
  return { ...fake, wrapper, root, img, state };
}

/** Shows the tile and fails every try (refreshes answer nothing, the proxy fails too): its error state. */
async function failForGood(t = setup()) {
  t.visible(true);
  await flushPromises();
  await t.img().trigger('error');
  await vi.advanceTimersByTimeAsync(400 + 800 + 1600);
  await flushPromises();
  expect(t.root().attributes('data-source')).toBe('proxy');
  expect(t.img().attributes('srcset')).toBeUndefined(); // the proxy link is one picture
  await t.img().trigger('error');
  await flushPromises();
  expect(t.state()).toBe('error');
  return t;
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

  it('replaces a URL that ran out before it was shown with the current one, without a re-sign', async () => {
    const t = setup(image({ signedUrl: url('old', 1) }));
    t.currentAnswers.push(url('current'));
    t.visible(true);
    await flushPromises();
    expect(t.deps.urls.current).toHaveBeenCalledWith('img-1');
    expect(t.deps.urls.refresh).not.toHaveBeenCalled(); // refreshSignedUrls is for load errors
    expect(t.img().attributes('src')).toBe('https://bucket.test/current.png');
  });

  it('keeps showing the picture it has when a newer URL is pushed: the same element, the same src', async () => {
    const t = setup();
    t.visible(true);
    await flushPromises();
    await t.img().trigger('load');
    const element = t.img().element;

    t.push('img-1', url('pushed', 7200));
    await flushPromises();
    await vi.advanceTimersByTimeAsync(60_000);
    // A new URL is a new cache key: showing it would download the same bytes again.
    expect(t.img().attributes('src')).toBe('https://bucket.test/first.png');
    expect(t.img().element).toBe(element);
    expect(t.state()).toBe('loaded');
    expect(t.deps.urls.refresh).not.toHaveBeenCalled();
    expect(t.deps.urls.current).not.toHaveBeenCalled();
  });

  it('a load in flight keeps its URL when a newer one arrives, and finishes with it', async () => {
    const t = setup();
    t.visible(true);
    await flushPromises();
    expect(t.state()).toBe('loading');
    t.push('img-1', url('pushed', 7200));
    await t.wrapper.setProps({ image: image({ signedUrl: url('refetched', 7300) }) });
    await flushPromises();
    expect(t.img().attributes('src')).toBe('https://bucket.test/first.png');
    await t.img().trigger('load');
    expect(t.state()).toBe('loaded');
    expect(t.img().attributes('src')).toBe('https://bucket.test/first.png');
  });

  it('the next load after a push uses the pushed URL at once: no backoff, no refreshSignedUrls', async () => {
    const t = setup();
    t.visible(true);
    await flushPromises();
    await t.img().trigger('load');
    t.push('img-1', url('pushed', 7200));
    await flushPromises();

    // The picture has to be fetched again (here: the old URL fails).
    await t.img().trigger('error');
    await flushPromises();
    expect(t.img().attributes('src')).toBe('https://bucket.test/pushed.png');
    expect(t.state()).toBe('loading');
    expect(t.deps.urls.refresh).not.toHaveBeenCalled();
    await t.img().trigger('load');
    expect(t.state()).toBe('loaded');
  });

  it('ignores offered URLs that expire no later than the one it holds', async () => {
    const t = setup();
    t.refreshAnswers.push(url('refreshed', 7200));
    t.visible(true);
    await flushPromises();
    await t.img().trigger('load');
    t.push('img-1', url('stale', 100)); // expires before the one it holds
    t.push('img-1', url('same', 3600)); // not later either
    await t.wrapper.setProps({ image: image({ signedUrl: url('older', 50) }) });
    await flushPromises();

    // So a failure goes through the backoff and a re-sign, not to one of those URLs.
    await t.img().trigger('error');
    await flushPromises();
    expect(t.img().attributes('src')).toBe('https://bucket.test/first.png');
    await vi.advanceTimersByTimeAsync(400);
    await flushPromises();
    expect(t.deps.urls.refresh).toHaveBeenCalledTimes(1);
    expect(t.img().attributes('src')).toBe('https://bucket.test/refreshed.png');
  });

  it('takes a newer URL from its props (the Apollo cache) before its first load', async () => {
    const t = setup(image({ signedUrl: url('page', 1) })); // would be stale by the time it shows
    await t.wrapper.setProps({ image: image({ signedUrl: url('from-cache', 7200) }) });
    t.visible(true);
    await flushPromises();
    expect(t.img().attributes('src')).toBe('https://bucket.test/from-cache.png');
    expect(t.deps.urls.current).not.toHaveBeenCalled();
    expect(t.deps.urls.refresh).not.toHaveBeenCalled();
  });

  it('a mount starts from the URL its props carry (what the Apollo cache holds now)', async () => {
    const first = setup(image({ signedUrl: url('first', 3600) }));
    first.visible(true);
    await flushPromises();
    await first.img().trigger('load');
    first.wrapper.unmount();

    const again = setup(image({ signedUrl: url('newest', 7200) }));
    again.visible(true);
    await flushPromises();
    expect(again.img().attributes('src')).toBe('https://bucket.test/newest.png');
  });

  it('mounted again in the same app, starts from the URL it loaded before while that has life: no second download', async () => {
    const shared = fakeDeps();
    const first = setup(image({ signedUrl: url('loaded', 3600) }), {}, shared);
    first.visible(true);
    await flushPromises();
    await first.img().trigger('load');
    first.wrapper.unmount();

    // A push made the cache's URL newer meanwhile (a detail view closed, then reopened).
    const again = setup(image({ signedUrl: url('newest', 7200) }), {}, shared);
    again.visible(true);
    await flushPromises();
    expect(again.img().attributes('src')).toBe('https://bucket.test/loaded.png');
    // If it fails after all, the newest at once: no backoff, no re-sign.
    await again.img().trigger('error');
    await flushPromises();
    expect(again.img().attributes('src')).toBe('https://bucket.test/newest.png');
    expect(shared.deps.urls.refresh).not.toHaveBeenCalled();
    await again.img().trigger('load');
    again.wrapper.unmount();

    // Another preset of the image is another picture; one with little life left is not reused.
    const thumb = setup(image({ signedUrl: url('thumb', 3600) }), { preset: 'thumb' }, shared);
    thumb.visible(true);
    await flushPromises();
    expect(thumb.img().attributes('src')).toBe('https://bucket.test/thumb.png');
    const shortLived = fakeDeps();
    const a = setup(image({ signedUrl: url('short', 20) }), {}, shortLived);
    a.visible(true);
    await flushPromises();
    await a.img().trigger('load');
    a.wrapper.unmount();
    const b = setup(image({ signedUrl: url('longer', 3600) }), {}, shortLived);
    b.visible(true);
    await flushPromises();
    expect(b.img().attributes('src')).toBe('https://bucket.test/longer.png');
  });

  it('leaves the srcset out when the reader saves data or is on 2G: the 1x URL only', async () => {
    const srcset = 'https://bucket.test/t320.webp 320w, https://bucket.test/t640.webp 640w';
    const withSet = () => image({ signedUrl: { ...url('t320'), srcset } });
    const normal = setup(withSet(), { sizes: '50vw' });
    normal.visible(true);
    await flushPromises();
    expect(normal.img().attributes('srcset')).toBe(srcset);
    for (const connection of [{ saveData: true }, { effectiveType: '2g' }, { effectiveType: 'slow-2g' }]) {
      Object.defineProperty(navigator, 'connection', { value: connection, configurable: true });
      try {
        const saving = setup(withSet(), { sizes: '50vw' });
        saving.visible(true);
        await flushPromises();
        expect(saving.img().attributes('src'), JSON.stringify(connection)).toBe(
          'https://bucket.test/t320.png',
        );
        expect(saving.img().attributes('srcset'), JSON.stringify(connection)).toBeUndefined();
      } finally {
        Reflect.deleteProperty(navigator, 'connection');
      }
    }
  });

  it('a URL pushed during the backoff serves the retry instead of a re-sign', async () => {
    const t = setup();
    t.visible(true);
    await flushPromises();
    await t.img().trigger('error');
    await vi.advanceTimersByTimeAsync(100);
    t.push('img-1', url('pushed', 7200));
    await vi.advanceTimersByTimeAsync(300);
    await flushPromises();
    expect(t.img().attributes('src')).toBe('https://bucket.test/pushed.png');
    expect(t.deps.urls.refresh).not.toHaveBeenCalled();
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
    // A named group, not an image: the Retry button inside stays reachable by screen readers.
    expect(t.root().attributes('role')).toBe('group');
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
    const t = await failForGood();

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

  it('the retry button shows nothing while it asks for a URL: the failed link does not come back', async () => {
    const t = await failForGood();

    let answer!: (u: FreshUrl) => void;
    vi.mocked(t.deps.urls.refresh).mockImplementationOnce(
      () => new Promise<FreshUrl>((resolve) => (answer = resolve)),
    );
    await t.wrapper.get('button').trigger('click');
    await flushPromises();
    expect(t.state()).toBe('loading');
    expect(t.img().exists()).toBe(false);
    expect(t.root().attributes('aria-label')).toBe('PNG image, 480 × 320');

    answer(url('after-retry'));
    await flushPromises();
    expect(t.img().attributes('src')).toBe('https://bucket.test/after-retry.png');
    expect(t.state()).toBe('loading');
    await t.img().trigger('load');
    expect(t.state()).toBe('loaded');
  });

  it('given another image, starts over with it: its picture, its URL, its subscription', async () => {
    const t = setup();
    t.visible(true);
    await flushPromises();
    await t.img().trigger('load');
    expect(t.tracked()).toEqual(['img-1']);
    const next = image({ id: 'img-2', width: 320, height: 480, signedUrl: url('second', 3000) });
    await t.wrapper.setProps({ image: next, alt: 'PNG image, 320 × 480' });
    await flushPromises();
    // A URL that expires sooner than the first image's is still the one to show: another image.
    expect(t.img().attributes('src')).toBe('https://bucket.test/second.png');
    expect(t.img().attributes('alt')).toBe('PNG image, 320 × 480');
    expect(t.state()).toBe('loading');
    expect(t.tracked()).toEqual(['img-2']);
    await t.img().trigger('load');
    expect(t.state()).toBe('loaded');
    // Off screen when it changes: the next image waits for the observer, as a new mount does.
    t.visible(false);
    await t.wrapper.setProps({ image: image({ id: 'img-3', signedUrl: url('third') }) });
    await flushPromises();
    expect(t.state()).toBe('placeholder');
    expect(t.img().exists()).toBe(false);
    expect(t.tracked()).toEqual([]);
    t.visible(true);
    await flushPromises();
    expect(t.img().attributes('src')).toBe('https://bucket.test/third.png');
    expect(t.tracked()).toEqual(['img-3']);
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

  describe('when the network goes away', () => {
    let onLine = true;
    beforeEach(() => {
      onLine = true;
      vi.spyOn(navigator, 'onLine', 'get').mockImplementation(() => onLine);
    });
    afterEach(() => {
      vi.restoreAllMocks();
    });
    const backOnline = () => {
      onLine = true;
      window.dispatchEvent(new Event('online'));
    };

    it('a load failing offline spends no try and no proxy: it waits, and loads again when the browser is back online', async () => {
      const t = setup();
      t.visible(true);
      await flushPromises();
      onLine = false;
      await t.img().trigger('error');
      await flushPromises();
      // The error state (its Retry works), but nothing asked and nothing spent, however long it waits.
      expect(t.state()).toBe('error');
      await vi.advanceTimersByTimeAsync(60_000);
      expect(t.deps.urls.refresh).not.toHaveBeenCalled();
      expect(t.root().attributes('data-source')).toBe('signed');

      backOnline();
      await flushPromises();
      expect(t.state()).toBe('loading');
      expect(t.img().attributes('src')).toBe('https://bucket.test/first.png'); // still good: no re-sign
      await t.img().trigger('load');
      expect(t.state()).toBe('loaded');

      // Its tries were all kept: a later failure gets the whole sequence, re-signs before the proxy.
      await t.img().trigger('error');
      await vi.advanceTimersByTimeAsync(400 + 800 + 1600);
      await flushPromises();
      expect(t.deps.urls.refresh).toHaveBeenCalledTimes(3);
      expect(t.root().attributes('data-source')).toBe('proxy');
    });

    it('back online, a tile in error off screen loads again when it comes on screen, not before', async () => {
      const t = setup(image({ signedUrl: url('old', 1) }));
      t.currentAnswers.push(url('current', 7200));
      t.visible(true);
      await flushPromises();
      onLine = false;
      await t.img().trigger('error');
      t.visible(false);
      backOnline();
      await flushPromises();
      expect(t.state()).toBe('error');
      expect(t.img().exists()).toBe(false);
      t.visible(true);
      await flushPromises();
      expect(t.state()).toBe('loading');
      expect(t.img().attributes('src')).toBe('https://bucket.test/current.png');
    });

    it('a re-sign that did not reach the gateway spends no try: the tile waits, and the gateway’s next URL starts it again', async () => {
      const t = setup();
      t.refreshAnswers.push(UNREACHABLE);
      t.visible(true);
      await flushPromises();
      await t.img().trigger('error');
      await vi.advanceTimersByTimeAsync(400);
      await flushPromises();
      expect(t.deps.urls.refresh).toHaveBeenCalledTimes(1);
      expect(t.state()).toBe('error');
      // Not the proxy: the same gateway, away. And no more asking meanwhile (its first look
      // again is 5 s away).
      expect(t.root().attributes('data-source')).toBe('signed');
      await vi.advanceTimersByTimeAsync(4000);
      expect(t.deps.urls.refresh).toHaveBeenCalledTimes(1);

      // The stream is back and refetches: its URL (newer or not) shows the gateway answers again.
      t.push('img-1', url('first'));
      await flushPromises();
      expect(t.state()).toBe('loading');
      expect(t.img().attributes('src')).toBe('https://bucket.test/first.png');
      // The try was not spent: the next failure re-signs (a real answer now) rather than the proxy.
      t.refreshAnswers.push(url('resigned', 7200));
      await t.img().trigger('error');
      await vi.advanceTimersByTimeAsync(800);
      await flushPromises();
      expect(t.img().attributes('src')).toBe('https://bucket.test/resigned.png');
      expect(t.root().attributes('data-source')).toBe('signed');
    });

    it('stalled while online (a 503 of a moment), the tile looks again after 5 s, then 10 s, on screen, without a push', async () => {
      const t = setup();
      t.refreshAnswers.push(UNREACHABLE);
      t.visible(true);
      await flushPromises();
      await t.img().trigger('error');
      await vi.advanceTimersByTimeAsync(400);
      await flushPromises();
      expect(t.state()).toBe('error');
      await vi.advanceTimersByTimeAsync(5000);
      await flushPromises();
      // Loads its URL again: no try spent, nothing asked of the gateway.
      expect(t.state()).toBe('loading');
      expect(t.deps.urls.refresh).toHaveBeenCalledTimes(1);
      // It fails again, and the gateway is still away: the next look is 10 s later.
      t.refreshAnswers.push(UNREACHABLE);
      await t.img().trigger('error');
      await vi.advanceTimersByTimeAsync(400);
      await flushPromises();
      expect(t.state()).toBe('error');
      await vi.advanceTimersByTimeAsync(9000);
      await flushPromises();
      expect(t.state()).toBe('error');
      await vi.advanceTimersByTimeAsync(1100);
      await flushPromises();
      expect(t.state()).toBe('loading');
      await t.img().trigger('load');
      expect(t.state()).toBe('loaded');
    });

    it('in the error state for good, a newer URL offered loads once more, and only once', async () => {
      const t = await failForGood();
      t.push('img-1', url('pushed', 7200));
      await flushPromises();
      expect(t.state()).toBe('loading');
      expect(t.img().attributes('src')).toBe('https://bucket.test/pushed.png');
      await t.img().trigger('error'); // its tries are spent: the proxy, then the error state
      await flushPromises();
      expect(t.root().attributes('data-source')).toBe('proxy');
      await t.img().trigger('error');
      expect(t.state()).toBe('error');

      // A broken image is not fetched again at every step.
      t.push('img-1', url('pushed-again', 7300));
      await t.wrapper.setProps({ image: image({ signedUrl: url('from-cache', 7400) }) });
      await flushPromises();
      expect(t.state()).toBe('error');
      expect(t.img().exists()).toBe(false);
    });

    it('the browser back online retries a tile that failed for good once', async () => {
      const t = await failForGood();
      backOnline();
      await flushPromises();
      expect(t.state()).toBe('loading');
      expect(t.root().attributes('data-source')).toBe('signed');
      await t.img().trigger('load');
      expect(t.state()).toBe('loaded');
    });
  });

  it('URLs pushed at every step while each load fails still end at the proxy (a newer URL skips the backoff once per load)', async () => {
    const t = setup();
    t.visible(true);
    await flushPromises();
    let step = 0;
    for (; step < 12 && t.root().attributes('data-source') !== 'proxy'; step++) {
      t.push('img-1', url(`step-${step}`, 3700 + step * 100)); // a new step's URL, pushed
      await flushPromises();
      await t.img().trigger('error'); // and the load fails again
      await vi.advanceTimersByTimeAsync(2000);
      await flushPromises();
    }
    expect(t.root().attributes('data-source')).toBe('proxy');
    expect(step).toBeLessThanOrEqual(5); // the newer URL once, then the three counted tries
    expect(t.deps.urls.refresh).not.toHaveBeenCalled(); // each counted try had a pushed URL
  });

  describe('with a preset, its srcset and a placeholder', () => {
    const thumb = (name: string, secondsFromNow = 3600): FreshUrl => ({
      url: `https://bucket.test/${name}-320.webp`,
      expiresAt: at(secondsFromNow),
      srcset: `https://bucket.test/${name}-320.webp 320w, https://bucket.test/${name}-640.webp 640w`,
    });
    /** A real ThumbHash: a 32×24 gradient from red to blue. */
    const hash = (() => {
      const w = 32;
      const h = 24;
      const rgba = new Uint8Array(w * h * 4);
      for (let i = 0; i < w * h; i++) {
        const x = i % w;
        rgba.set([255 - x * 8, 40, x * 8, 255], i * 4);
      }
      return btoa(String.fromCharCode(...rgbaToThumbHash(w, h, rgba)));
    })();
    const SIZES = '(max-width: 640px) 50vw, 320px';
    const variant = (over: Partial<SmartImageSource> = {}) =>
      image({
        signedUrl: thumb('first'),
        placeholder: hash,
        proxyUrl: 'http://gateway.test/proxy/img-1?t=tok&p=thumb',
        ...over,
      });

    it('loads through the srcset with sizes, and follows the preset’s URLs, not the originals’', async () => {
      const t = setup(variant(), { preset: 'thumb', sizes: SIZES });
      expect(t.deps.variantUrls).toHaveBeenCalledWith('thumb');
      t.visible(true);
      await flushPromises();
      expect(t.img().attributes('src')).toBe('https://bucket.test/first-320.webp');
      expect(t.img().attributes('srcset')).toBe(
        'https://bucket.test/first-320.webp 320w, https://bucket.test/first-640.webp 640w',
      );
      expect(t.img().attributes('sizes')).toBe(SIZES);
      expect(t.img().attributes('width')).toBe('480'); // the box is reserved: no layout shift
      expect(t.img().attributes('height')).toBe('320');
      expect(t.tracked()).toEqual(['img-1']);
    });

    it('without a preset, asks for no variant and has no srcset', async () => {
      const t = setup(image(), { sizes: SIZES });
      expect(t.deps.variantUrls).not.toHaveBeenCalled();
      t.visible(true);
      await flushPromises();
      expect(t.img().attributes('srcset')).toBeUndefined();
      expect(t.img().attributes('sizes')).toBeUndefined();
    });

    it('paints the ThumbHash from the start, and keeps it when the picture cannot load', async () => {
      const t = setup(variant(), { preset: 'thumb', sizes: SIZES });
      const painted = () => t.root().attributes('style') ?? '';
      expect(t.state()).toBe('placeholder');
      expect(t.root().attributes('data-placeholder')).toBe('thumbhash');
      expect(painted()).toMatch(/background-image: url\("?data:image\/png;base64,[A-Za-z0-9+/=]+"?\)/);
      const first = painted();

      await failForGood(t);
      expect(painted()).toBe(first);
    });

    it('a retry after a failure uses the refreshed URL together with its own srcset', async () => {
      const t = setup(variant(), { preset: 'thumb', sizes: SIZES });
      t.refreshAnswers.push(thumb('resigned', 7200));
      t.visible(true);
      await flushPromises();
      await t.img().trigger('error');
      await vi.advanceTimersByTimeAsync(400);
      await flushPromises();
      expect(t.img().attributes('src')).toBe('https://bucket.test/resigned-320.webp');
      expect(t.img().attributes('srcset')).toBe(
        'https://bucket.test/resigned-320.webp 320w, https://bucket.test/resigned-640.webp 640w',
      );
    });

    it('a pushed URL keeps what is on screen, and the next load takes it with its srcset', async () => {
      const t = setup(variant(), { preset: 'thumb', sizes: SIZES });
      t.visible(true);
      await flushPromises();
      await t.img().trigger('load');
      t.push('img-1', thumb('pushed', 7200));
      await flushPromises();
      expect(t.img().attributes('srcset')).toContain('first-640.webp');
      await t.img().trigger('error');
      await flushPromises();
      expect(t.img().attributes('srcset')).toBe(
        'https://bucket.test/pushed-320.webp 320w, https://bucket.test/pushed-640.webp 640w',
      );
      expect(t.deps.urls.refresh).not.toHaveBeenCalled();
    });

    it('crops to its box by default (a tile); fit="contain" letterboxes the picture and its placeholder', async () => {
      const tile = setup(variant(), { preset: 'thumb', fill: true });
      expect(tile.root().classes()).toContain('is-fill');
      expect(tile.root().classes()).not.toContain('is-contain');

      const whole = setup(variant(), { preset: 'medium', fill: true, fit: 'contain' });
      expect(whole.root().classes()).toEqual(expect.arrayContaining(['is-fill', 'is-contain']));
      expect(whole.root().attributes('style') ?? '').not.toContain('aspect-ratio'); // the host sizes it
      // Contained, the placeholder has the picture's exact ratio (480 × 320), not the ThumbHash's
      // rough one: an SVG of the image's size with the decoded ThumbHash stretched inside.
      const paint = decodeURIComponent(whole.root().attributes('style') ?? '');
      expect(paint).toContain('background-image: url("data:image/svg+xml,');
      expect(paint).toContain('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 480 320">');
      expect(paint).toMatch(
        /<image href="data:image\/png;base64,[A-Za-z0-9+/=]+" width="480" height="320" preserveAspectRatio="none"\/>/,
      );
      // Cropped (a tile), the ThumbHash is painted as it is.
      expect(tile.root().attributes('style')).toMatch(/background-image: url\("?data:image\/png;base64,/);
      whole.visible(true);
      await flushPromises();
      await whole.img().trigger('load');
      expect(whole.state()).toBe('loaded');
      expect(whole.root().classes()).toContain('is-contain'); // kept through the load

      // Without `fill` the box keeps the image's ratio, so `contain` and `cover` look the same there.
      const reserved = setup(variant(), { fit: 'contain' });
      expect(reserved.root().attributes('style')).toContain('aspect-ratio: 480 / 320');
      expect(reserved.root().classes()).toContain('is-contain');
    });

    it('a broken placeholder paints nothing rather than breaking the tile', () => {
      const t = setup(variant({ placeholder: '%%%not-base64' }), { preset: 'thumb' });
      expect(t.root().attributes('data-placeholder')).toBeUndefined();
      expect(t.root().attributes('style') ?? '').not.toContain('background-image');
      expect(t.state()).toBe('placeholder');
    });
  });
});
