import { ApolloClient, gql, HttpLink, InMemoryCache, type TypedDocumentNode } from '@apollo/client/core';
import { describe, expect, it, vi } from 'vitest';
import { createSignet } from './signet';
import { SseLink } from './sse-link';
import { rememberUrl, urlTransport } from './transport';
import type { FreshUrl, UrlEvent } from './useUrlRefresh';

interface PageNode {
  id: string;
  signedUrl: FreshUrl;
  thumb: FreshUrl;
  thumbSrcset: string;
}

/** A host app's own page query: the originals' URL and the thumb preset's, under its own aliases. */
const GalleryPageDocument: TypedDocumentNode<{ images: { edges: { node: PageNode }[] } }, { first: number }> =
  gql`
  query GalleryPage($first: Int!) {
    images(first: $first) {
      edges {
        node {
          id
          signedUrl {
            url
            expiresAt
          }
          thumb: signedUrl(preset: "thumb") {
            url
            expiresAt
          }
          thumbSrcset: srcset(preset: "thumb")
        }
      }
    }
  }
`;

const URI = 'http://gw.test/graphql';

/**
 * A host app's plain HTTP client with Signet wired in (which teaches its cache how a SignedUrl
 * replaces another), and the transport of the originals or of a preset over the SSE link.
 */
function hostClient(fetch: typeof globalThis.fetch) {
  const client = new ApolloClient({ link: new HttpLink({ uri: URI, fetch }), cache: new InMemoryCache() });
  createSignet({ client, uri: URI, fetch });
  const stream = new SseLink({ uri: URI, fetch });
  return { client, transport: (preset?: string) => urlTransport(client, stream, preset) };
}
type Client = ReturnType<typeof hostClient>['client'];

const T = (minutes: number) => new Date(Date.UTC(2030, 0, 1, 12, minutes)).toISOString();
/** A SignedUrl as the gateway answers the package's documents: every field (re-signed 5 min early). */
const signed = (url: string, expiresAt: string) => ({
  __typename: 'SignedUrl',
  url,
  expiresAt,
  refreshAt: new Date(Date.parse(expiresAt) - 5 * 60_000).toISOString(),
  cached: false,
});

const node = (id: string, url: string, expiresAt: string) => ({
  __typename: 'Image',
  id,
  key: `k/${id}.png`,
  contentType: 'image/png',
  byteSize: 100,
  width: 4,
  height: 3,
  createdAt: T(0),
  placeholder: null,
  visibility: 'PRIVATE',
  signedUrl: signed(url, expiresAt),
  thumb: signed(`${url}-thumb`, expiresAt),
  thumbSrcset: `${url}-thumb 320w, ${url}-thumb2x 640w`,
  thumbProxyUrl: `http://gw.test/proxy/${id}?preset=thumb`,
});

const page = {
  data: {
    images: {
      __typename: 'ImageConnection',
      totalCount: 2,
      pageInfo: { __typename: 'PageInfo', hasNextPage: false, endCursor: 'b' },
      edges: [
        { __typename: 'ImageEdge', cursor: 'a', node: node('a', 'https://bucket.test/a-1', T(20)) },
        { __typename: 'ImageEdge', cursor: 'b', node: node('b', 'https://bucket.test/b-1', T(20)) },
      ],
    },
  },
};

/** A text/event-stream carrying these events, then the end of the stream. */
function sse(events: (UrlEvent & { srcset?: string | null })[]): Response {
  const text = events
    .map((e) => `event: next\ndata: ${JSON.stringify({ data: { signedUrlRefreshed: e } })}\n\n`)
    .join('');
  return new Response(`${text}event: complete\ndata:\n\n`, {
    headers: { 'content-type': 'text/event-stream' },
  });
}

/** As the gateway sends it: `srcset` is null without a preset. */
const event = (imageId: string, url: string, expiresAt: string): UrlEvent & { srcset: string | null } => ({
  imageId,
  signedUrl: signed(url, expiresAt),
  srcset: null,
});

/**
 * The gateway, answered from fixed JSON through the real Apollo links: the page, one stream of
 * events, and a refreshSignedUrls answer. Every request is recorded.
 */
function gateway(
  events: (UrlEvent & { srcset?: string | null })[],
  refreshed: unknown[],
  variantRows: unknown[] = [],
) {
  const ops: string[] = [];
  const variables: unknown[] = [];
  const fetch = vi.fn(async (_url: RequestInfo | URL, init?: RequestInit) => {
    const body = JSON.parse(String(init?.body)) as { operationName: string; variables: unknown };
    ops.push(body.operationName);
    variables.push(body.variables);
    if (body.operationName === 'SignedUrlRefreshed') return sse(events);
    const answer =
      body.operationName === 'GalleryPage'
        ? page
        : body.operationName === 'ImageVariantUrls'
          ? { data: { imagesByIds: variantRows } }
          : { data: { refreshSignedUrls: refreshed } };
    return new Response(JSON.stringify(answer), { headers: { 'content-type': 'application/json' } });
  });
  return { fetch: fetch as unknown as typeof globalThis.fetch, ops, variables };
}

function cachedUrls(client: Client) {
  const data = client.readQuery({ query: GalleryPageDocument, variables: { first: 24 } });
  return Object.fromEntries(
    (data?.images.edges ?? []).map((e) => [e.node.id, [e.node.signedUrl.url, e.node.signedUrl.expiresAt]]),
  );
}

describe("urlTransport and the host app's Apollo cache", () => {
  it('writes pushed URLs into the cached images, so the next render starts from the newest', async () => {
    const g = gateway(
      [
        event('a', 'https://bucket.test/a-2', T(30)),
        event('a', 'https://bucket.test/a-late', T(25)), // older than what the cache now holds
        event('ghost', 'https://bucket.test/ghost', T(30)), // an image the cache does not hold
      ],
      [],
    );
    const { client, transport } = hostClient(g.fetch);
    await client.query({ query: GalleryPageDocument, variables: { first: 24 } });
    const seen = vi.fn();
    const updates: Record<string, string[]>[] = [];
    client.watchQuery({ query: GalleryPageDocument, variables: { first: 24 } }).subscribe((r) => {
      updates.push(Object.fromEntries(r.data.images.edges.map((e) => [e.node.id, [e.node.signedUrl.url]])));
    });

    const done = new Promise<void>((resolve) => {
      transport().subscribe(['a', 'ghost'], { next: seen, error: resolve, complete: resolve });
    });
    await done;
    expect(seen).toHaveBeenCalledTimes(3); // every event still reaches useUrlRefresh
    expect(cachedUrls(client)).toEqual({
      a: ['https://bucket.test/a-2', T(30)],
      b: ['https://bucket.test/b-1', T(20)],
    });
    expect(client.cache.identify({ __typename: 'Image', id: 'ghost' })).toBe('Image:ghost');
    expect(client.cache.extract()['Image:ghost']).toBeUndefined(); // no entry made up for it
    // A watcher of the page (the gallery, and through it SmartImage's props) saw the new URL.
    await vi.waitFor(() => expect(updates.at(-1)?.['a']).toEqual(['https://bucket.test/a-2']));
    expect(g.ops).toEqual(['GalleryPage', 'SignedUrlRefreshed']); // no refetch was needed
  });

  it('writes the events of one stream chunk in one batch: a watcher of the page is told once', async () => {
    // A refresh wave: the gateway re-signs many images at once and sends their events together.
    const g = gateway(
      [event('a', 'https://bucket.test/a-2', T(30)), event('b', 'https://bucket.test/b-2', T(30))],
      [],
    );
    const { client, transport } = hostClient(g.fetch);
    await client.query({ query: GalleryPageDocument, variables: { first: 24 } });
    // What the cache tells each watching query (a gallery of thousands re-reads its whole list).
    const told: Record<string, string>[] = [];
    client.cache.watch({
      query: GalleryPageDocument,
      variables: { first: 24 },
      optimistic: true,
      callback: (diff) => {
        const data = diff.result as { images: { edges: { node: PageNode }[] } };
        told.push(Object.fromEntries(data.images.edges.map((e) => [e.node.id, e.node.signedUrl.url])));
      },
    });
    const seen: string[] = [];
    await new Promise<void>((resolve) => {
      transport().subscribe(['a', 'b'], {
        next: (e) => {
          // Handed on after the cache holds the URL (as before): a re-render reads the new one.
          seen.push(`${e.imageId} ${cachedUrls(client)[e.imageId]?.[0]}`);
        },
        error: resolve,
        complete: resolve,
      });
    });
    expect(told).toEqual([{ a: 'https://bucket.test/a-2', b: 'https://bucket.test/b-2' }]);
    expect(seen).toEqual(['a https://bucket.test/a-2', 'b https://bucket.test/b-2']);
  });

  it('writes a re-signed URL (after a load error) into the cache whatever its expiry', async () => {
    const g = gateway([], [signed('https://bucket.test/b-resigned', T(15)), null]);
    const { client, transport } = hostClient(g.fetch);
    await client.query({ query: GalleryPageDocument, variables: { first: 24 } });

    const answer = await transport().refreshUrls(['b', 'a']);
    expect(answer.map((u) => u?.url ?? null)).toEqual(['https://bucket.test/b-resigned', null]);
    // The old URL expired later but failed to load; the re-signed one is the one that works.
    expect(cachedUrls(client)).toEqual({
      a: ['https://bucket.test/a-1', T(20)],
      b: ['https://bucket.test/b-resigned', T(15)],
    });
  });

  function cachedThumbs(client: Client) {
    const data = client.readQuery({ query: GalleryPageDocument, variables: { first: 24 } });
    return Object.fromEntries(
      (data?.images.edges ?? []).map((e) => [
        e.node.id,
        [e.node.thumb.url, e.node.thumbSrcset, e.node.signedUrl.url],
      ]),
    );
  }

  it('with a preset, subscribes for that variant and writes its URL and srcset, not the original', async () => {
    const g = gateway(
      [
        {
          ...event('a', 'https://bucket.test/a-thumb-2', T(30)),
          srcset: 'https://bucket.test/a-thumb-2 320w, https://bucket.test/a-thumb2x-2 640w',
        },
        // Late: expires before what the cache holds, so neither its URL nor its srcset is kept.
        { ...event('b', 'https://bucket.test/b-thumb-late', T(10)), srcset: 'https://bucket.test/late 320w' },
      ],
      [],
    );
    const { client, transport } = hostClient(g.fetch);
    await client.query({ query: GalleryPageDocument, variables: { first: 24 } });
    const seen = vi.fn();
    await new Promise<void>((resolve) => {
      transport('thumb').subscribe(['a', 'b'], { next: seen, error: resolve, complete: resolve });
    });
    expect(g.variables[1]).toEqual({ ids: ['a', 'b'], preset: 'thumb' });
    expect(seen.mock.calls[0]?.[0]).toEqual({
      imageId: 'a',
      signedUrl: {
        __typename: 'SignedUrl',
        url: 'https://bucket.test/a-thumb-2',
        expiresAt: T(30),
        refreshAt: T(25),
        cached: false,
        srcset: 'https://bucket.test/a-thumb-2 320w, https://bucket.test/a-thumb2x-2 640w',
      },
    });
    expect(cachedThumbs(client)).toEqual({
      a: [
        'https://bucket.test/a-thumb-2',
        'https://bucket.test/a-thumb-2 320w, https://bucket.test/a-thumb2x-2 640w',
        'https://bucket.test/a-1', // the original's URL is another field, left alone
      ],
      b: [
        'https://bucket.test/b-1-thumb',
        'https://bucket.test/b-1-thumb 320w, https://bucket.test/b-1-thumb2x 640w',
        'https://bucket.test/b-1',
      ],
    });
  });

  it('with a preset, a forced re-sign answers the variant’s URLs (with srcset) and caches them', async () => {
    const row = (id: string, url: string) => ({
      __typename: 'Image',
      id,
      signedUrl: signed(url, T(15)),
      srcset: `${url} 320w, ${url}-2x 640w`,
    });
    const g = gateway(
      [],
      [signed('https://bucket.test/a-original-resigned', T(15)), null],
      [row('a', 'https://bucket.test/a-thumb-resigned'), row('b', 'https://bucket.test/b-thumb-same')],
    );
    const { client, transport } = hostClient(g.fetch);
    await client.query({ query: GalleryPageDocument, variables: { first: 24 } });
    const answer = await transport('thumb').refreshUrls(['a', 'b']);
    expect(g.ops).toEqual(['GalleryPage', 'RefreshSignedUrls', 'ImageVariantUrls']);
    expect(g.variables[2]).toEqual({ ids: ['a', 'b'], preset: 'thumb' });
    expect(answer.map((u) => [u?.url, u?.srcset])).toEqual([
      [
        'https://bucket.test/a-thumb-resigned',
        'https://bucket.test/a-thumb-resigned 320w, https://bucket.test/a-thumb-resigned-2x 640w',
      ],
      [undefined, undefined], // not re-signed (not visible to the viewer): no URL
    ]);
    expect(cachedThumbs(client)['a']?.slice(0, 2)).toEqual([
      'https://bucket.test/a-thumb-resigned',
      'https://bucket.test/a-thumb-resigned 320w, https://bucket.test/a-thumb-resigned-2x 640w',
    ]);
  });
  it('rememberUrl: the same URL keeps the fields it had; another URL keeps none of the old one’s', async () => {
    const g = gateway([], []);
    const { client } = hostClient(g.fetch);
    await client.query({ query: GalleryPageDocument, variables: { first: 24 } });
    const urlOf = () => client.cache.extract()['Image:a']?.['signedUrl'];
    client.cache.modify({
      id: 'Image:a',
      fields: { signedUrl: () => signed('https://bucket.test/a-1', T(20)) },
    });

    // The same URL without refreshAt and cached (a caller's own FreshUrl): what was held stays.
    rememberUrl(client, 'a', { url: 'https://bucket.test/a-1', expiresAt: T(20) }, true);
    expect(urlOf()).toEqual(signed('https://bucket.test/a-1', T(20)));

    // A newer URL with every field: all of them are the new URL's.
    rememberUrl(client, 'a', signed('https://bucket.test/a-2', T(30)), true);
    expect(urlOf()).toEqual(signed('https://bucket.test/a-2', T(30)));

    // A newer URL without refreshAt: the old URL's refreshAt is not kept beside it (nor cached).
    rememberUrl(client, 'a', { url: 'https://bucket.test/a-3', expiresAt: T(40) }, true);
    expect(urlOf()).toEqual({ __typename: 'SignedUrl', url: 'https://bucket.test/a-3', expiresAt: T(40) });
  });
});
