import { type ApolloClient, type ApolloLink, execute } from '@apollo/client/core/index.js';
import {
  ImageUrlsDocument,
  ImageVariantUrlsDocument,
  RefreshSignedUrlsDocument,
  SignedUrlRefreshedDocument,
  type SignedUrlRefreshedSubscription,
} from './gql/graphql';
import { mergeSignedUrl } from './signed-url';
import type { FreshUrl, UrlRefreshTransport } from './useUrlRefresh';

/** Any Apollo Client: the package only reads and writes `Image` entries of its cache. */
// biome-ignore lint/suspicious/noExplicitAny: the host app's cache shape is its own
export type Client = ApolloClient<any>;

/** Apollo's name for a field stored with these arguments (how `signedUrl(preset: "thumb")` is kept). */
const storeName = (field: string, preset: string | undefined) =>
  preset === undefined ? field : `${field}(${JSON.stringify({ preset })})`;

/** The SignedUrl fields a FreshUrl carries, as the cache stores them (srcset is a field of its own). */
const storedUrl = (url: FreshUrl) => ({
  __typename: 'SignedUrl',
  url: url.url,
  expiresAt: url.expiresAt,
  ...(url.refreshAt !== undefined ? { refreshAt: url.refreshAt } : {}),
  ...(url.cached !== undefined ? { cached: url.cached } : {}),
});

/**
 * Stores a URL as the image's `signedUrl` in the cache — the plain field, or with `preset` the
 * field the gallery asks as `signedUrl(preset: ...)` and, when the URL carries one, that
 * preset's `srcset` — so whatever renders the image next (a re-mounted view, a refetched page
 * read from the cache) starts from the newest URL. Not another minTtl's. With `onlyIfLater`, a
 * URL that expires no later than the cached one is dropped (an event arriving late), unless it is
 * the cached URL itself (its fields are then merged in). Images the cache does not hold are left
 * alone.
 *
 * Every SignedUrl field the URL carries is written (the package's documents ask all four: `url
 * expiresAt refreshAt cached`), so a host query asking any of them is still answered from the
 * cache. Merged as the cache's type policy merges (`mergeSignedUrl`): the same URL keeps the
 * fields it had, another URL keeps none of the old one's.
 */
export function rememberUrl(
  client: Client,
  imageId: string,
  url: FreshUrl,
  onlyIfLater: boolean,
  preset?: string,
): void {
  const id = client.cache.identify({ __typename: 'Image', id: imageId });
  if (!id) return;
  const urlField = storeName('signedUrl', preset);
  let written = false;
  client.cache.modify({
    id,
    fields: {
      signedUrl(existing, { storeFieldName, readField }) {
        if (storeFieldName !== urlField) return existing;
        const incoming = storedUrl(url);
        // cache.modify does not run merge functions: the same merge, by hand.
        const sameUrl = existing !== undefined && readField<string>('url', existing) === url.url;
        const held = existing ? readField<string>('expiresAt', existing) : undefined;
        if (!sameUrl && onlyIfLater && held && Date.parse(held) >= Date.parse(url.expiresAt)) return existing;
        written = true;
        return mergeSignedUrl(existing, incoming);
      },
    },
  });
  if (!written || preset === undefined || !url.srcset) return;
  const srcsetField = storeName('srcset', preset);
  client.cache.modify({
    id,
    fields: {
      srcset: (existing, { storeFieldName }) => (storeFieldName === srcsetField ? url.srcset : existing),
    },
  });
}

/**
 * useUrlRefresh's network edge over Apollo: the subscription, the refetch, the forced re-sign —
 * of the originals, or with `preset` of that variant (its URL with its srcset). Pushed and
 * re-signed URLs are written into the cache too (a refetch is by itself). The subscription runs
 * through `stream` (an SseLink to the gateway), not the host's link chain, so an app whose client
 * only knows HTTP needs no change to it; the document is spelled as the client's cache would
 * (with `__typename`), the same text a persisted-operations allow-list holds.
 */
export function urlTransport(client: Client, stream: ApolloLink, preset?: string): UrlRefreshTransport {
  const variantUrls = async (ids: string[], fetchPolicy: 'network-only' | 'cache-first') => {
    const { data } = await client.query({
      query: ImageVariantUrlsDocument,
      variables: { ids, preset: preset as string },
      fetchPolicy,
    });
    return data.imagesByIds.map((row) =>
      row ? { id: row.id, signedUrl: { ...row.signedUrl, srcset: row.srcset } } : null,
    );
  };
  return {
    subscribe(ids, handlers) {
      const variables = preset === undefined ? { ids } : { ids, preset };
      const query = client.cache.transformDocument(SignedUrlRefreshedDocument);
      // Events that arrive together (one SSE chunk: a refresh wave re-signs many images at once)
      // are written to the cache in one batch, so each query watching those images (a gallery's
      // list of thousands) is told once, not once per image; then handed on, in order. Whatever
      // comes next (an error, the end, an unsubscribe) hands the waiting events on first.
      let pending: { imageId: string; signedUrl: FreshUrl }[] = [];
      const flush = () => {
        const events = pending;
        if (events.length === 0) return;
        pending = [];
        client.cache.batch({
          update: () => {
            for (const e of events) rememberUrl(client, e.imageId, e.signedUrl, true, preset);
          },
        });
        for (const e of events) handlers.next(e);
      };
      const sub = execute(stream, {
        query,
        variables,
        context: { onStreamOpen: () => handlers.open?.() },
      }).subscribe({
        next: (result) => {
          const event = (result.data as SignedUrlRefreshedSubscription | null | undefined)
            ?.signedUrlRefreshed;
          if (event) {
            const url: FreshUrl = { ...event.signedUrl, srcset: event.srcset ?? null };
            if (pending.length === 0) queueMicrotask(flush);
            pending.push({ imageId: event.imageId, signedUrl: url });
          } else if (result.errors?.length) {
            flush();
            handlers.error(result.errors[0]);
          }
        },
        error: (err) => {
          flush();
          handlers.error(err);
        },
        complete: () => {
          flush();
          handlers.complete();
        },
      });
      return () => {
        flush();
        sub.unsubscribe();
      };
    },
    async fetchUrls(ids) {
      if (preset !== undefined) return variantUrls(ids, 'network-only');
      const { data } = await client.query({
        query: ImageUrlsDocument,
        variables: { ids },
        fetchPolicy: 'network-only',
      });
      return data.imagesByIds;
    },
    async refreshUrls(ids) {
      const { data } = await client.mutate({ mutation: RefreshSignedUrlsDocument, variables: { ids } });
      const urls = data?.refreshSignedUrls ?? [];
      if (preset !== undefined) {
        // refreshSignedUrls re-signs the image's step (its variants step with it) but answers the
        // originals' URLs: read the variant's from the gateway, for the ids it re-signed.
        const rows = await variantUrls(ids, 'network-only');
        return ids.map((imageId, i) => {
          const row = rows[i];
          if (!urls[i] || !row) return null;
          rememberUrl(client, imageId, row.signedUrl, false, preset);
          return row.signedUrl;
        });
      }
      // Asked for after a load error: the answer works now, whatever the cache held before.
      urls.forEach((url, i) => {
        if (url && ids[i] !== undefined) rememberUrl(client, ids[i], url, false);
      });
      return urls;
    },
  };
}
