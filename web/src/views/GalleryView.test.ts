import { SMART_IMAGE_DEPS, SmartImage, type SmartImageSource } from '@signet/vue';
import { DefaultApolloClient } from '@vue/apollo-composable';
import { flushPromises, mount } from '@vue/test-utils';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createApolloClient } from '../lib/apollo';
import { galleryImage as image, presetsAnswer, quietImages } from '../test-support/gallery-fixtures';
import GalleryView from './GalleryView.vue';

type Answer = { data?: unknown; errors?: unknown[] } | 'network';

/**
 * A gateway of `count` images, 3 a page (only the first page is ever asked here), with the
 * `presets` of its IMAGE_PRESETS (the defaults unless said), answering each operation by name as
 * its variables ask (`$thumb`, `$medium`); `override` replaces an answer (a failure). Records the
 * operations asked, and their variables.
 */
function gateway(
  count: number,
  override: Partial<Record<string, (vars: Record<string, unknown>) => Answer | undefined>> = {},
  presets?: readonly string[],
) {
  let ids = Array.from({ length: count }, (_, i) => i + 1);
  const asked: string[] = [];
  const calls: { op: string; vars: Record<string, unknown> }[] = [];
  const answer = (op: string, vars: Record<string, unknown>): Answer => {
    const own = override[op]?.(vars);
    if (own) return own;
    const images = ids.map((n) => image(n, vars['thumb'] !== false));
    if (op === 'ImagePresets') return presetsAnswer(presets);
    if (op === 'GalleryPage') {
      const edges = images.slice(0, 3).map((node) => ({ __typename: 'ImageEdge', cursor: node.id, node }));
      return {
        data: {
          images: {
            __typename: 'ImageConnection',
            totalCount: images.length,
            pageInfo: { __typename: 'PageInfo', hasNextPage: images.length > 3, endCursor: 'c' },
            edges,
          },
        },
      };
    }
    if (op === 'ImageById') return { data: { image: images.find((i) => i.id === vars['id']) ?? null } };
    if (op === 'ImageDetail') {
      const found = images.find((i) => i.id === vars['id']);
      const url = (u: string) => ({ __typename: 'SignedUrl', url: u, expiresAt: '2030-01-01T13:00:00Z' });
      return {
        data: {
          imagesByIds: [
            found && {
              __typename: 'Image',
              id: found.id,
              ...(vars['medium'] === false
                ? {
                    original: url(`http://bucket.test/${found.id}.png`),
                    originalProxyUrl: `http://gateway.test/proxy/${found.id}?m=stream`,
                  }
                : {
                    medium: url('http://bucket.test/m.webp'),
                    mediumSrcset: 'http://bucket.test/m.webp 800w',
                    mediumProxyUrl: 'http://gateway.test/proxy/m',
                  }),
            },
          ],
        },
      };
    }
    if (op === 'DeleteImage') {
      ids = ids.filter((n) => `img-${n}` !== vars['id']);
      return { data: { deleteImage: true } };
    }
    throw new Error(`unexpected ${op}`);
  };
  const fetchImpl = async (_url: RequestInfo | URL, init?: RequestInit) => {
    const body = JSON.parse(String(init?.body)) as {
      operationName: string;
      variables: Record<string, unknown>;
    };
    asked.push(body.operationName);
    calls.push({ op: body.operationName, vars: body.variables ?? {} });
    const a = answer(body.operationName, body.variables ?? {});
    if (a === 'network') throw new TypeError('Failed to fetch');
    return new Response(JSON.stringify(a), { headers: { 'content-type': 'application/json' } });
  };
  return {
    client: createApolloClient('/graphql', fetchImpl as typeof fetch),
    fetchImpl: fetchImpl as typeof fetch,
    asked,
    calls,
  };
}

/**
 * The page's address before the view mounts (happy-dom, unlike a browser, fires hashchange for
 * replaceState: it is let go by first, so the view does not take it for a link followed).
 */
async function at(hash: string) {
  history.replaceState(null, '', hash);
  await new Promise((resolve) => setTimeout(resolve, 0));
}

function mountGallery(gw: ReturnType<typeof gateway>) {
  return mount(GalleryView, {
    attachTo: document.body,
    global: { provide: { [DefaultApolloClient]: gw.client, [SMART_IMAGE_DEPS as symbol]: quietImages } },
  });
}

/**
 * IntersectionObserver as the test says: `near(true)` brings the end of the list into range;
 * `near.observed()` is how many times the sentinel was given to `observe`.
 */
function stubObserver() {
  const callbacks: IntersectionObserverCallback[] = [];
  let observed = 0;
  vi.stubGlobal(
    'IntersectionObserver',
    class {
      constructor(callback: IntersectionObserverCallback) {
        callbacks.push(callback);
      }
      observe() {
        observed++;
      }
      unobserve() {}
      disconnect() {}
    },
  );
  const near = (isIntersecting: boolean) => {
    for (const cb of callbacks)
      cb([{ isIntersecting } as IntersectionObserverEntry], {} as IntersectionObserver);
  };
  return Object.assign(near, { observed: () => observed });
}

beforeEach(() => {
  vi.stubGlobal('confirm', () => true);
});
afterEach(() => {
  vi.unstubAllGlobals();
  vi.restoreAllMocks();
  history.replaceState(null, '', '#/gallery');
  document.body.innerHTML = '';
});

describe('GalleryView: a link to an image (#/gallery/<id>)', () => {
  it('opens an image that is not among the pages loaded, asked for by its id', async () => {
    await at('#/gallery/img-5');
    const gw = gateway(6);
    const w = mountGallery(gw);
    await flushPromises();
    await flushPromises();
    expect(w.findAll('.card')).toHaveLength(3);
    expect(gw.asked).toContain('ImageById');
    const dialog = w.get('[role=dialog]');
    // Not "image 0 of 6": its place in the list is not known yet.
    expect(dialog.attributes('aria-label')).toMatch(/^PNG image, 640 × 480, added /);
    expect(w.find('[data-testid=image-not-found]').exists()).toBe(false);
    w.unmount();
  });

  it('asks nothing more for an image of the first page', async () => {
    await at('#/gallery/img-2');
    const gw = gateway(6);
    const w = mountGallery(gw);
    await flushPromises();
    await flushPromises();
    expect(w.get('[role=dialog]').attributes('aria-label')).toMatch(/^Image 2 of 6: /);
    expect(gw.asked).not.toContain('ImageById');
    w.unmount();
  });

  it('says "Image not found" for a missing id, with a way back that takes focus', async () => {
    await at('#/gallery/gone');
    const gw = gateway(6);
    const w = mountGallery(gw);
    await flushPromises();
    await flushPromises();
    expect(w.find('[role=dialog]').exists()).toBe(false);
    const banner = w.get('[data-testid=image-not-found]');
    expect(banner.attributes('role')).toBe('alert');
    expect(banner.text()).toContain('Image not found');
    const back = banner.get('button');
    expect(document.activeElement).toBe(back.element);
    await back.trigger('click');
    await flushPromises();
    expect(location.hash).toBe('#/gallery');
    expect(w.find('[data-testid=image-not-found]').exists()).toBe(false);
    expect(document.activeElement).toBe(w.get('h1').element);
    w.unmount();
  });
});

describe('GalleryView: where focus goes', () => {
  it('deleting from a card moves focus to the card that takes its place', async () => {
    const gw = gateway(3);
    const w = mountGallery(gw);
    await flushPromises();
    const del = w.findAll<HTMLButtonElement>('.card__delete')[1]!;
    del.element.focus();
    await del.trigger('click');
    await flushPromises();
    expect(w.findAll('.card')).toHaveLength(2);
    expect(document.activeElement?.getAttribute('href')).toBe('#/gallery/img-3');
    // The last card: focus goes to the one before it.
    const last = w.findAll<HTMLButtonElement>('.card__delete')[1]!;
    last.element.focus();
    await last.trigger('click');
    await flushPromises();
    expect(document.activeElement?.getAttribute('href')).toBe('#/gallery/img-1');
    w.unmount();
  });

  it('"Try again" for the next page keeps focus in the list, then on the button if it fails again', async () => {
    const gw = gateway(6, {
      GalleryPage: (vars) => (vars['after'] ? 'network' : undefined),
    });
    const w = mountGallery(gw);
    await flushPromises();
    await w.get('.gallery__more button').trigger('click');
    await flushPromises();
    const again = w.get<HTMLButtonElement>('.gallery__more .banner--error button');
    again.element.focus();
    await again.trigger('click');
    await flushPromises();
    await flushPromises();
    expect(w.find('.gallery__more .banner--error').exists()).toBe(true);
    expect(document.activeElement).toBe(w.get('.gallery__more .banner--error button').element);
    w.unmount();
  });

  it('"Try again" after the gallery failed keeps focus in the page (heading, or the button again)', async () => {
    let fail = true;
    const gw = gateway(3, {
      GalleryPage: () => (fail ? 'network' : undefined),
    });
    const w = mountGallery(gw);
    await flushPromises();
    const again = w.get<HTMLButtonElement>('.banner--error button');
    expect(again.text()).toBe('Try again');
    again.element.focus();
    await again.trigger('click');
    await flushPromises();
    await flushPromises();
    // Failed again: focus is back on the button of the banner shown again.
    expect(document.activeElement?.textContent?.trim()).toBe('Try again');
    // Then it loads: focus is on the view's heading, not on the page's body.
    fail = false;
    await w.get('.banner--error button').trigger('click');
    await flushPromises();
    await flushPromises();
    expect(w.findAll('.card')).toHaveLength(3);
    expect(document.activeElement).toBe(w.get('h1').element);
    w.unmount();
  });
});

/** What each SmartImage inside `selector` was given: its URL, srcset, stream link and preset. */
function pictures(w: ReturnType<typeof mountGallery>, selector: string) {
  return w
    .findAllComponents(SmartImage)
    .filter((c) => c.element.closest(selector) !== null)
    .map((c) => {
      const image = c.props('image') as SmartImageSource;
      return {
        url: image.signedUrl.url,
        srcset: image.signedUrl.srcset,
        proxyUrl: image.proxyUrl,
        preset: c.props('preset') as string | undefined,
      };
    });
}

describe('GalleryView: the presets the gateway has (IMAGE_PRESETS, IMAGE_TRANSFORMS)', () => {
  it('asks for them once, before the first page, and shows `thumb` and `medium` when it has them', async () => {
    await at('#/gallery/img-2');
    const gw = gateway(3);
    const w = mountGallery(gw);
    await flushPromises();
    await flushPromises();
    expect(gw.asked.filter((op) => op === 'ImagePresets')).toHaveLength(1);
    expect(gw.asked.indexOf('ImagePresets')).toBeLessThan(gw.asked.indexOf('GalleryPage'));
    expect(gw.calls.find((c) => c.op === 'GalleryPage')!.vars).toMatchObject({ thumb: true });
    expect(pictures(w, '[data-testid=gallery-grid]')[0]).toEqual({
      url: 'http://bucket.test/img-1.webp',
      srcset: 'http://bucket.test/img-1.webp 320w',
      proxyUrl: 'http://gateway.test/proxy/img-1?p=thumb',
      preset: 'thumb',
    });
    expect(gw.calls.find((c) => c.op === 'ImageDetail')!.vars).toMatchObject({ medium: true });
    expect(pictures(w, '[role=dialog]')).toEqual([
      {
        url: 'http://bucket.test/m.webp',
        srcset: 'http://bucket.test/m.webp 800w',
        proxyUrl: 'http://gateway.test/proxy/m',
        preset: 'medium',
      },
    ]);
    w.unmount();
  });

  // IMAGE_PRESETS of other names, and IMAGE_TRANSFORMS=off (none at all): asking for `thumb` or
  // `medium` there failed the whole page ("Couldn't load the gallery: Unknown preset").
  it.each([
    ['of other names', ['hero']],
    ['(IMAGE_TRANSFORMS=off)', []],
  ])('without thumb or medium %s: the originals everywhere, no srcset, no preset asked', async (_, names) => {
    // An image beyond the first page: ImageById brings it, with the same choice.
    await at('#/gallery/img-5');
    const gw = gateway(6, {}, names);
    const w = mountGallery(gw);
    await flushPromises();
    await flushPromises();
    expect(w.find('.banner--error').exists()).toBe(false);
    expect(w.findAll('.card')).toHaveLength(3);
    for (const op of ['GalleryPage', 'ImageById']) {
      expect(gw.calls.find((c) => c.op === op)!.vars, op).toMatchObject({ thumb: false });
    }
    expect(gw.calls.find((c) => c.op === 'ImageDetail')!.vars).toMatchObject({ medium: false });
    expect(pictures(w, '[data-testid=gallery-grid]')).toEqual(
      [1, 2, 3].map((n) => ({
        url: `http://bucket.test/img-${n}.png`,
        srcset: null,
        proxyUrl: `http://gateway.test/proxy/img-${n}?m=stream`,
        preset: undefined,
      })),
    );
    expect(pictures(w, '[role=dialog]')).toEqual([
      {
        url: 'http://bucket.test/img-5.png',
        srcset: null,
        proxyUrl: 'http://gateway.test/proxy/img-5?m=stream',
        preset: undefined,
      },
    ]);
    w.unmount();
  });

  it('with thumb but no medium: thumbnails in the grid, the original in the detail view', async () => {
    await at('#/gallery/img-1');
    const gw = gateway(3, {}, ['thumb', 'hero']);
    const w = mountGallery(gw);
    await flushPromises();
    await flushPromises();
    expect(pictures(w, '[data-testid=gallery-grid]').map((p) => p.preset)).toEqual([
      'thumb',
      'thumb',
      'thumb',
    ]);
    expect(pictures(w, '[role=dialog]')).toEqual([
      {
        url: 'http://bucket.test/img-1.png',
        srcset: null,
        proxyUrl: 'http://gateway.test/proxy/img-1?m=stream',
        preset: undefined,
      },
    ]);
    w.unmount();
  });

  it('when the presets cannot be asked, says so; "Try again" asks again and the page follows', async () => {
    let down = true;
    const gw = gateway(3, { ImagePresets: () => (down ? 'network' : undefined) });
    const w = mountGallery(gw);
    await flushPromises();
    expect(w.get('.banner--error').text()).toContain('Couldn’t load the gallery: Failed to fetch');
    expect(gw.asked).not.toContain('GalleryPage');
    down = false;
    await w.get('.banner--error button').trigger('click');
    await flushPromises();
    await flushPromises();
    expect(gw.asked.filter((op) => op === 'ImagePresets')).toHaveLength(2);
    expect(w.findAll('.card')).toHaveLength(3);
    expect(w.find('.banner--error').exists()).toBe(false);
    w.unmount();
  });

  it('shows the skeleton while the presets are on their way (not an empty grid)', async () => {
    let answer = () => {};
    const gw = gateway(3);
    const slow: typeof fetch = async (url, init) => {
      await new Promise<void>((resolve) => {
        answer = resolve;
      });
      return gw.fetchImpl(url, init);
    };
    const w = mount(GalleryView, {
      attachTo: document.body,
      global: {
        provide: {
          [DefaultApolloClient]: createApolloClient('/graphql', slow),
          [SMART_IMAGE_DEPS as symbol]: quietImages,
        },
      },
    });
    await flushPromises();
    expect(w.find('.card--skeleton').exists()).toBe(true);
    expect(w.find('.empty').exists()).toBe(false);
    answer();
    await flushPromises();
    answer();
    await flushPromises();
    await flushPromises();
    expect(w.findAll('.card')).toHaveLength(3);
    w.unmount();
  });
});

describe('GalleryView: the total count (a count of all the viewer’s images)', () => {
  /** A gateway that pages for real (3 a page, by `after`), answering `totalCount` only when asked. */
  function paging(count: number) {
    let ids = Array.from({ length: count }, (_, i) => i + 1);
    return gateway(count, {
      GalleryPage: (vars) => {
        const from = vars['after'] ? Number(String(vars['after']).slice('img-'.length)) : 0;
        const rest = ids.filter((n) => n > from);
        const edges = rest.slice(0, 3).map((n) => ({
          __typename: 'ImageEdge',
          cursor: `img-${n}`,
          node: image(n, vars['thumb'] !== false),
        }));
        return {
          data: {
            images: {
              __typename: 'ImageConnection',
              ...(vars['withTotal'] === true ? { totalCount: ids.length } : {}),
              pageInfo: {
                __typename: 'PageInfo',
                hasNextPage: rest.length > 3,
                endCursor: edges.at(-1)?.cursor ?? null,
              },
              edges,
            },
          },
        };
      },
      DeleteImage: (vars) => {
        ids = ids.filter((n) => `img-${n}` !== vars['id']);
        return { data: { deleteImage: true } };
      },
    });
  }

  it('is asked with the first page only; later pages keep it, and a delete counts down from it', async () => {
    const gw = paging(7);
    const w = mountGallery(gw);
    await flushPromises();
    const subtitle = () => w.get('.view__subtitle').text();
    expect(subtitle()).toMatch(/^7 images/);
    await w.get('.gallery__more button').trigger('click');
    await flushPromises();
    await w.get('.gallery__more button').trigger('click');
    await flushPromises();
    expect(w.findAll('.card')).toHaveLength(7);
    const pages = gw.calls.filter((c) => c.op === 'GalleryPage');
    expect(pages.map((c) => [c.vars['after'] ?? null, c.vars['withTotal']])).toEqual([
      [null, true],
      ['img-3', false],
      ['img-6', false],
    ]);
    // The first page's count survives the pages that came without one.
    expect(subtitle()).toMatch(/^7 images/);
    expect(w.get('.gallery__end').text()).toBe('That’s all 7.');
    expect(w.findAll('.card')[6]!.attributes('aria-setsize')).toBe('7');
    await w.findAll('.card__delete')[4]!.trigger('click');
    await flushPromises();
    expect(w.findAll('.card')).toHaveLength(6);
    expect(subtitle()).toMatch(/^6 images/);
    expect(w.get('.gallery__end').text()).toBe('That’s all 6.');
    w.unmount();
  });
});

describe('GalleryView: back online', () => {
  const secondPage = () => ({
    data: {
      images: {
        __typename: 'ImageConnection',
        pageInfo: { __typename: 'PageInfo', hasNextPage: false, endCursor: 'img-6' },
        edges: [4, 5, 6].map((n) => ({ __typename: 'ImageEdge', cursor: `img-${n}`, node: image(n) })),
      },
    },
  });

  it('a next page that failed (offline) is asked again when the connection comes back', async () => {
    const near = stubObserver();
    let offline = true;
    const gw = gateway(6, {
      GalleryPage: (vars) => (vars['after'] ? (offline ? 'network' : secondPage()) : undefined),
    });
    const w = mountGallery(gw);
    await flushPromises();
    near(true); // scrolled to the end, offline: the page fails
    await flushPromises();
    await flushPromises();
    expect(w.find('.gallery__more .banner--error').exists()).toBe(true);
    const asked = () => gw.calls.filter((c) => c.op === 'GalleryPage' && c.vars['after']).length;
    expect(asked()).toBe(1);

    offline = false;
    window.dispatchEvent(new Event('online'));
    await flushPromises();
    await flushPromises();
    expect(asked()).toBe(2);
    expect(w.find('.gallery__more .banner--error').exists()).toBe(false);
    expect(w.findAll('.card')).toHaveLength(6);
    w.unmount();
  });

  it('away from the end of the list, the error goes and scrolling there asks again', async () => {
    const near = stubObserver();
    let offline = true;
    const gw = gateway(6, {
      GalleryPage: (vars) => (vars['after'] ? (offline ? 'network' : secondPage()) : undefined),
    });
    const w = mountGallery(gw);
    await flushPromises();
    near(true);
    await flushPromises();
    await flushPromises();
    near(false);
    offline = false;
    window.dispatchEvent(new Event('online'));
    await flushPromises();
    const asked = () => gw.calls.filter((c) => c.op === 'GalleryPage' && c.vars['after']).length;
    expect(asked()).toBe(1);
    expect(w.find('.gallery__more .banner--error').exists()).toBe(false);
    expect(w.get('.gallery__more button').text()).toBe('Load more');
    near(true);
    await flushPromises();
    await flushPromises();
    expect(asked()).toBe(2);
    expect(w.findAll('.card')).toHaveLength(6);
    w.unmount();
  });

  it('a first page that failed is asked again when the connection comes back', async () => {
    let offline = true;
    const gw = gateway(3, { GalleryPage: () => (offline ? 'network' : undefined) });
    const w = mountGallery(gw);
    await flushPromises();
    expect(w.find('.banner--error').text()).toContain('Couldn’t load the gallery');
    offline = false;
    window.dispatchEvent(new Event('online'));
    await flushPromises();
    await flushPromises();
    expect(w.find('.banner--error').exists()).toBe(false);
    expect(w.findAll('.card')).toHaveLength(3);
    w.unmount();
  });
});

describe('GalleryView: the next page as the end of the list comes near', () => {
  /**
   * Each card pushes the end of the list `cardPx` down (happy-dom lays nothing out), `scroll.y`
   * moves it up; the screen is happy-dom's 768 px, and "near" 400 px below it.
   */
  function layOut(cardPx = 1000) {
    const scroll = { y: 0 };
    vi.spyOn(HTMLElement.prototype, 'getBoundingClientRect').mockImplementation(function (this: HTMLElement) {
      if (!this.classList.contains('gallery__more')) return new DOMRect();
      const top = document.querySelectorAll('li.card').length * cardPx - scroll.y;
      return new DOMRect(0, top, 300, 40);
    });
    return scroll;
  }
  /** Three pages of 3 (img-1 … img-9). */
  const pages = (vars: Record<string, unknown>): Answer | undefined => {
    const after = vars['after'];
    if (!after) return undefined; // the first page: the fixture's (3, and there are more)
    const from = after === 'c' ? 4 : 7;
    return {
      data: {
        images: {
          __typename: 'ImageConnection',
          pageInfo: { __typename: 'PageInfo', hasNextPage: from === 4, endCursor: `img-${from + 2}` },
          edges: [from, from + 1, from + 2].map((n) => ({
            __typename: 'ImageEdge',
            cursor: `img-${n}`,
            node: image(n),
          })),
        },
      },
    };
  };
  const later = (gw: ReturnType<typeof gateway>) =>
    gw.calls.filter((c) => c.op === 'GalleryPage' && c.vars['after']).map((c) => c.vars['after']);

  /** Opened, then scrolled near the end: the second page came (6 cards; the end 3,500 px down). */
  async function scrolledToSecondPage() {
    const near = stubObserver();
    const scroll = layOut();
    const gw = gateway(9, { GalleryPage: pages });
    const w = mountGallery(gw);
    await flushPromises();
    near(false);
    await flushPromises();
    scroll.y = 2500; // the end 500 px below the top of the screen
    near(true);
    await flushPromises();
    await flushPromises();
    expect(w.findAll('.card')).toHaveLength(6);
    return { near, scroll, gw, w };
  }

  it('on open, the empty list’s "near" asks no second page once the first has pushed the end away', async () => {
    const near = stubObserver();
    layOut();
    const gw = gateway(9, { GalleryPage: pages });
    const w = mountGallery(gw);
    near(true); // the observer's first word: the empty list, its end on screen
    await flushPromises();
    await flushPromises();
    expect(w.findAll('.card')).toHaveLength(3); // the end is now 3,000 px down
    expect(later(gw)).toEqual([]);
    near(false); // what the observer says once it has seen the new layout
    await flushPromises();
    expect(later(gw)).toEqual([]);
    w.unmount();
  });

  it('scrolling near the end asks the next page, once; a page that pushes the end away asks no more', async () => {
    const { near, scroll, gw, w } = await scrolledToSecondPage();
    // The observer has not spoken since (the end is 3,500 px down now): its "near" is stale.
    expect(later(gw)).toEqual(['c']);
    near(false);
    await flushPromises();
    scroll.y = 5500;
    near(true);
    await flushPromises();
    await flushPromises();
    expect(later(gw)).toEqual(['c', 'img-6']);
    expect(w.findAll('.card')).toHaveLength(9);
    expect(w.find('.gallery__end').exists()).toBe(true);
    w.unmount();
  });

  it('the end brought near again before the observer saw it far: its fresh word after the page asks the next one', async () => {
    const { near, scroll, gw, w } = await scrolledToSecondPage();
    expect(later(gw)).toEqual(['c']);
    // The page came and the user scrolled on at once: the end is near again, and the observer,
    // which last said "near", saw no change of side. The sentinel was observed afresh after the
    // page, so its next word (an observer's first report of a target) comes, repeating "near".
    const observed = near.observed();
    expect(observed).toBeGreaterThan(1);
    scroll.y = 5500;
    near(true);
    await flushPromises();
    await flushPromises();
    expect(later(gw)).toEqual(['c', 'img-6']);
    expect(w.findAll('.card')).toHaveLength(9);
    expect(near.observed()).toBeGreaterThan(observed);
    w.unmount();
  });

  it('a short page that leaves the end near asks for the next one at once', async () => {
    const near = stubObserver();
    layOut(10); // small cards on a tall screen: the end stays in range whatever comes
    const gw = gateway(9, { GalleryPage: pages });
    const w = mountGallery(gw);
    near(true);
    await flushPromises();
    await flushPromises();
    await flushPromises();
    await flushPromises();
    expect(later(gw)).toEqual(['c', 'img-6']);
    expect(w.findAll('.card')).toHaveLength(9);
    w.unmount();
  });
});
