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
/** As the app's own query asks for it: one field more than the package's documents. */
const signedFull = (url: string, expiresAt: string) => ({ ...signed(url, expiresAt), refreshAt: expiresAt });

/** A host app's own query: its fields, and the package's fragment spread in. */
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

/** What the package's ImageUrls refetch asks for. */
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
      const event = { imageId: 'a', signedUrl: signed(pushed.url, pushed.expiresAt), srcset: null };
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
    const { data } = await client.query({ query: PHOTOS });
    const signet = createSignet(options(g.fetch, client));
    // The package's refetch of current URLs (ImageUrls) writes a SignedUrl with fewer fields than
    // the app's own query asked for (refreshAt): it replaces the cached one without a "cache data
    // may be lost" warning, since the plugin told the cache how a SignedUrl merges.
    const first = data.images.edges[0].node.signedUrl;
    client.writeQuery({
      query: IMAGE_URLS,
      data: {
        imagesByIds: [{ __typename: 'Image', id: 'a', signedUrl: signed(first.url, first.expiresAt) }],
      },
    });
    expect(warn).not.toHaveBeenCalled();
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
    // Only the two fields the URL carries: the app's query, which also wants refreshAt, now misses
    // the cache and asks the gateway, rather than read the old URL's refreshAt beside the new URL.
    expect(client.readQuery({ query: PHOTOS })).toBeNull();
    // The picture on screen keeps its src (the pushed URL is for its next load).
    await flushPromises();
    expect(wrapper.get('img').attributes('src')).toBe('https://bucket.test/a-1');
    signet.dispose();
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
