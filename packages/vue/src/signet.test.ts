import { ApolloClient, gql, HttpLink, InMemoryCache } from '@apollo/client/core';
import { flushPromises, mount } from '@vue/test-utils';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { defineComponent, h } from 'vue';
import { signetImageFragment } from './fragment';
import { SignetImageFragmentDoc } from './gql/graphql';
import SmartImage from './SmartImage.vue';
import { createSignet, provideSignet, type SignetOptions } from './signet';
import { useUrlRefresh } from './useUrlRefresh';

const URI = 'http://gw.test/graphql';
const later = (minutes: number) => new Date(Date.now() + minutes * 60_000).toISOString();
const signed = (url: string, expiresAt: string) => ({ __typename: 'SignedUrl', url, expiresAt });
/** Every field of a SignedUrl, as the gateway answers the package's documents (re-signed 5 min early). */
const signedFull = (url: string, expiresAt: string) => ({
  ...signed(url, expiresAt),
  refreshAt: new Date(Date.parse(expiresAt) - 5 * 60_000).toISOString(),
  cached: false,
});

/** A host app's own query: its fields (refreshAt too), and the package's fragment spread in. */
const PHOTOS = gql`
  query Photos {
    images(first: 1) {
      edges {
        node {
          key
          ...SignetImage
          signedUrl {
            refreshAt
          }
        }
      }
    }
  }
  ${signetImageFragment}
`;

/** Another query asking fewer SignedUrl fields than the app's own (the fragment's two). */
const IMAGE_URLS = gql`
  query ImageUrls {
    imagesByIds(ids: ["a"]) {
      id
      signedUrl {
        url
        expiresAt
      }
    }
  }
`;

const node = (url: string, expiresAt: string) => ({
  __typename: 'Image',
  id: 'a',
  key: 'k/a.png',
  width: 4,
  height: 3,
  placeholder: null,
  signedUrl: signedFull(url, expiresAt),
  proxyUrl: 'http://gw.test/proxy/a?t=x',
});
const photos = (url: string, expiresAt: string) => ({
  data: {
    images: {
      __typename: 'ImageConnection',
      edges: [{ __typename: 'ImageEdge', node: node(url, expiresAt) }],
    },
  },
});

/**
 * The gateway: the page as JSON, and the live stream as one event for image `a`, then the end
 * of the stream. Every request body is recorded.
 */
function gateway(pushed: { url: string; expiresAt: string }) {
  const bodies: { operationName: string; query: string; variables: unknown }[] = [];
  const fetch = vi.fn(async (_url: RequestInfo | URL, init?: RequestInit) => {
    const body = JSON.parse(String(init?.body));
    bodies.push(body);
    if (body.operationName === 'SignedUrlRefreshed') {
      // What the package's subscription asks: every field of the SignedUrl.
      const event = { imageId: 'a', signedUrl: signedFull(pushed.url, pushed.expiresAt), srcset: null };
      return new Response(
        `event: next\ndata: ${JSON.stringify({ data: { signedUrlRefreshed: event } })}\n\nevent: complete\ndata:\n\n`,
        { headers: { 'content-type': 'text/event-stream' } },
      );
    }
    return new Response(JSON.stringify(photos('https://bucket.test/a-1', later(10))), {
      headers: { 'content-type': 'application/json' },
    });
  });
  return { fetch: fetch as unknown as typeof globalThis.fetch, bodies };
}

/** Everything is on screen at once; the stream opens without waiting for the set to settle. */
function options(fetch: typeof globalThis.fetch, client: ApolloClient<unknown>): SignetOptions {
  return {
    client,
    uri: URI,
    fetch,
    observe: (_el, onChange) => {
      onChange(true);
      return () => {};
    },
    stream: { settleMs: 0, reconnectDelayMs: () => 60_000 },
  };
}

const Gallery = defineComponent({
  props: { image: { type: Object, required: true } },
  setup(props) {
    const live = useUrlRefresh();
    return () =>
      h('div', { 'data-live': live.state.value }, [h(SmartImage, { image: props.image as never, alt: 'a' })]);
  },
});

describe('createSignet and provideSignet', () => {
  const warn = vi.spyOn(console, 'warn');
  afterEach(() => warn.mockClear());

  it('as a plugin: SmartImage shows the app’s node, and a pushed URL lands in the app’s own cache', async () => {
    const pushed = { url: 'https://bucket.test/a-2', expiresAt: later(20) };
    const g = gateway(pushed);
    const client = new ApolloClient({
      link: new HttpLink({ uri: URI, fetch: g.fetch }),
      cache: new InMemoryCache(),
    });
    const signet = createSignet(options(g.fetch, client));
    // The app's page, watched as useQuery watches it (cache-first: a cache miss goes to the gateway).
    const pages: { url: string; refreshAt: string }[] = [];
    const watched = client.watchQuery({ query: PHOTOS }).subscribe(({ data: page }) => {
      const url = page?.images.edges[0].node.signedUrl;
      if (url) pages.push({ url: url.url, refreshAt: url.refreshAt });
    });
    await vi.waitFor(() => expect(pages).toHaveLength(1));
    const { data } = await client.query({ query: PHOTOS });
    // A query asking fewer fields (url, expiresAt) writes the same URL: it merges into the cached
    // SignedUrl without a "cache data may be lost" warning, and the app's refreshAt stays.
    const first = data.images.edges[0].node.signedUrl;
    client.writeQuery({
      query: IMAGE_URLS,
      data: {
        imagesByIds: [{ __typename: 'Image', id: 'a', signedUrl: signed(first.url, first.expiresAt) }],
      },
    });
    expect(warn).not.toHaveBeenCalled();
    expect(client.readQuery({ query: PHOTOS })?.images.edges[0].node.signedUrl).toEqual(first);
    const wrapper = mount(Gallery, {
      props: { image: data.images.edges[0].node },
      global: { plugins: [signet] },
    });
    await flushPromises();
    expect(wrapper.get('img').attributes('src')).toBe('https://bucket.test/a-1');

    await vi.waitFor(() => expect(g.bodies.map((b) => b.operationName)).toContain('SignedUrlRefreshed'));
    const stream = g.bodies.find((b) => b.operationName === 'SignedUrlRefreshed')!;
    expect(stream.variables).toEqual({ ids: ['a'] });
    // Spelled as the client's cache spells documents: the text a persisted-operations list holds.
    expect(stream.query).toContain('__typename');

    // The event went into the app's cache entry for the image (and its own query sees it)...
    await vi.waitFor(() =>
      expect(client.readFragment({ id: 'Image:a', fragment: SignetImageFragmentDoc })?.signedUrl.url).toBe(
        pushed.url,
      ),
    );
    // The event carried every field of the new URL, refreshAt too: the app's query, which asks
    // for it, is answered from the cache with the new URL's values — no page refetch per push.
    const { refreshAt } = signedFull(pushed.url, pushed.expiresAt);
    const now = { ...signed(pushed.url, pushed.expiresAt), refreshAt };
    expect(client.readQuery({ query: PHOTOS })?.images.edges[0].node.signedUrl).toEqual(now);
    await vi.waitFor(() => expect(pages.at(-1)).toEqual({ url: now.url, refreshAt: now.refreshAt }));
    await flushPromises();
    expect(g.bodies.filter((b) => b.operationName === 'Photos')).toHaveLength(1);
    watched.unsubscribe();
    // The picture on screen keeps its src (the pushed URL is for its next load).
    await flushPromises();
    expect(wrapper.get('img').attributes('src')).toBe('https://bucket.test/a-1');
    signet.dispose();
  });

  it('teaches the merge to an InMemoryCache of another copy of Apollo Client (told by its shape)', async () => {
    // An InMemoryCache whose class is not the one this package imports (a second copy of
    // @apollo/client): `instanceof` is false, its policies work all the same.
    const cache = new InMemoryCache();
    const otherCopy = Object.create(Object.getPrototypeOf(InMemoryCache.prototype));
    Object.defineProperties(otherCopy, Object.getOwnPropertyDescriptors(InMemoryCache.prototype));
    Object.setPrototypeOf(cache, otherCopy);
    expect(cache instanceof InMemoryCache).toBe(false);
    const g = gateway({ url: 'https://bucket.test/a-2', expiresAt: later(20) });
    const client = new ApolloClient({ link: new HttpLink({ uri: URI, fetch: g.fetch }), cache });
    createSignet(options(g.fetch, client));
    await client.query({ query: PHOTOS });
    client.writeQuery({
      query: IMAGE_URLS,
      data: {
        imagesByIds: [
          { __typename: 'Image', id: 'a', signedUrl: signed('https://bucket.test/a-3', later(30)) },
        ],
      },
    });
    // No "cache data may be lost" warning: the policy is installed, and took the newer URL whole.
    expect(warn).not.toHaveBeenCalled();
    expect(client.readFragment({ id: 'Image:a', fragment: SignetImageFragmentDoc })?.signedUrl.url).toBe(
      'https://bucket.test/a-3',
    );
  });

  it('says so when the client’s cache cannot take the merge policy', () => {
    const client = new ApolloClient({ link: new HttpLink({ uri: URI }), cache: new InMemoryCache() });
    Object.defineProperty(client, 'cache', { value: { ...client.cache, policies: undefined } });
    warn.mockImplementationOnce(() => {});
    createSignet({ client, uri: URI });
    expect(warn).toHaveBeenCalledWith(expect.stringMatching(/@signet\/vue.*signetTypePolicies/));
  });

  it('provideSignet wires a subtree from its root component’s setup', async () => {
    const g = gateway({ url: 'https://bucket.test/a-2', expiresAt: later(20) });
    const client = new ApolloClient({
      link: new HttpLink({ uri: URI, fetch: g.fetch }),
      cache: new InMemoryCache(),
    });
    const { data } = await client.query({ query: PHOTOS });
    let made: ReturnType<typeof provideSignet> | undefined;
    const Root = defineComponent({
      setup() {
        made = provideSignet(options(g.fetch, client));
        return () => h(Gallery, { image: data.images.edges[0].node });
      },
    });
    const wrapper = mount(Root);
    expect(wrapper.get('.smart-image').attributes('data-image-id')).toBe('a');
    // The live stream useUrlRefresh() answers (the originals') opened for the image on screen.
    await vi.waitFor(() =>
      expect(g.bodies.find((b) => b.operationName === 'SignedUrlRefreshed')?.variables).toEqual({
        ids: ['a'],
      }),
    );
    expect(wrapper.get('[data-live]').attributes('data-live')).not.toBe('idle');
    expect(made!.urls()).toBe(made!.urls(undefined));
    made!.dispose();
  });

  it('SmartImage without Signet says how to wire it', () => {
    expect(() =>
      mount(SmartImage, { props: { image: node('https://bucket.test/a-1', later(10)), alt: 'a' } }),
    ).toThrow(/createSignet/);
  });
});
