import { describe, expect, it, vi } from 'vitest';
import type { UrlEvent } from '../composables/useUrlRefresh';
import { GalleryPageDocument } from '../gql/graphql';
import { createApolloClient, urlTransport } from './apollo';

const T = (minutes: number) => new Date(Date.UTC(2030, 0, 1, 12, minutes)).toISOString();
const signed = (url: string, expiresAt: string) => ({ __typename: 'SignedUrl', url, expiresAt });

const node = (id: string, url: string, expiresAt: string) => ({
  __typename: 'Image',
  id,
  key: `k/${id}.png`,
  contentType: 'image/png',
  byteSize: 100,
  width: 4,
  height: 3,
  createdAt: T(0),
  signedUrl: signed(url, expiresAt),
  proxyUrl: `http://gw.test/proxy/${id}`,
  visibility: 'PRIVATE',
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
function sse(events: UrlEvent[]): Response {
  const text = events
    .map((e) => `event: next\ndata: ${JSON.stringify({ data: { signedUrlRefreshed: e } })}\n\n`)
    .join('');
  return new Response(`${text}event: complete\ndata:\n\n`, {
    headers: { 'content-type': 'text/event-stream' },
  });
}

const event = (imageId: string, url: string, expiresAt: string): UrlEvent => ({
  imageId,
  signedUrl: signed(url, expiresAt),
});

/**
 * The gateway, answered from fixed JSON through the real Apollo links: the page, one stream of
 * events, and a refreshSignedUrls answer. Every request is recorded.
 */
function gateway(events: UrlEvent[], refreshed: unknown[]) {
  const ops: string[] = [];
  const fetch = vi.fn(async (_url: RequestInfo | URL, init?: RequestInit) => {
    const body = JSON.parse(String(init?.body)) as { operationName: string };
    ops.push(body.operationName);
    if (body.operationName === 'SignedUrlRefreshed') return sse(events);
    const answer = body.operationName === 'GalleryPage' ? page : { data: { refreshSignedUrls: refreshed } };
    return new Response(JSON.stringify(answer), { headers: { 'content-type': 'application/json' } });
  });
  return { fetch: fetch as unknown as typeof globalThis.fetch, ops };
}

function cachedUrls(client: ReturnType<typeof createApolloClient>) {
  const data = client.readQuery({ query: GalleryPageDocument, variables: { first: 24 } });
  return Object.fromEntries(
    (data?.images.edges ?? []).map((e) => [e.node.id, [e.node.signedUrl.url, e.node.signedUrl.expiresAt]]),
  );
}

describe('urlTransport and the Apollo cache', () => {
  it('writes pushed URLs into the cached images, so the next render starts from the newest', async () => {
    const g = gateway(
      [
        event('a', 'https://bucket.test/a-2', T(30)),
        event('a', 'https://bucket.test/a-late', T(25)), // older than what the cache now holds
        event('ghost', 'https://bucket.test/ghost', T(30)), // an image the cache does not hold
      ],
      [],
    );
    const client = createApolloClient('http://gw.test/graphql', g.fetch);
    await client.query({ query: GalleryPageDocument, variables: { first: 24 } });
    const seen = vi.fn();
    const updates: Record<string, string[]>[] = [];
    client.watchQuery({ query: GalleryPageDocument, variables: { first: 24 } }).subscribe((r) => {
      updates.push(Object.fromEntries(r.data.images.edges.map((e) => [e.node.id, [e.node.signedUrl.url]])));
    });

    const done = new Promise<void>((resolve) => {
      urlTransport(client).subscribe(['a', 'ghost'], { next: seen, error: resolve, complete: resolve });
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

  it('writes a re-signed URL (after a load error) into the cache whatever its expiry', async () => {
    const g = gateway([], [signed('https://bucket.test/b-resigned', T(15)), null]);
    const client = createApolloClient('http://gw.test/graphql', g.fetch);
    await client.query({ query: GalleryPageDocument, variables: { first: 24 } });

    const answer = await urlTransport(client).refreshUrls(['b', 'a']);
    expect(answer.map((u) => u?.url ?? null)).toEqual(['https://bucket.test/b-resigned', null]);
    // The old URL expired later but failed to load; the re-signed one is the one that works.
    expect(cachedUrls(client)).toEqual({
      a: ['https://bucket.test/a-1', T(20)],
      b: ['https://bucket.test/b-resigned', T(15)],
    });
  });
});
