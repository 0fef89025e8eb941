import { ApolloClient, ApolloLink, HttpLink, InMemoryCache, split } from '@apollo/client/core';
import { getMainDefinition } from '@apollo/client/utilities';
import type { FreshUrl, UrlRefreshTransport } from '../composables/useUrlRefresh';
import {
  type GalleryPageQuery,
  ImageUrlsDocument,
  ImageVariantUrlsDocument,
  RefreshSignedUrlsDocument,
  SignedUrlRefreshedDocument,
} from '../gql/graphql';
import { authHeaders } from './auth';
import { SseLink } from './sse-link';

type Connection = GalleryPageQuery['images'];

/** `fetchImpl` replaces the network for tests; the app uses the browser's fetch. */
export function createApolloClient(uri = '/graphql', fetchImpl?: typeof fetch) {
  const auth = new ApolloLink((operation, forward) => {
    // An operation's own authorization (the sign-in view trying a token) wins over the stored one.
    operation.setContext(({ headers = {} }: { headers?: Record<string, string> }) => ({
      headers: { ...authHeaders(), ...headers },
    }));
    return forward(operation);
  });
  const isSubscription = ({ query }: { query: Parameters<typeof getMainDefinition>[0] }) => {
    const def = getMainDefinition(query);
    return def.kind === 'OperationDefinition' && def.operation === 'subscription';
  };
  const link = split(
    isSubscription,
    new SseLink({ uri, headers: authHeaders, ...(fetchImpl ? { fetch: fetchImpl } : {}) }),
    ApolloLink.from([auth, new HttpLink({ uri, ...(fetchImpl ? { fetch: fetchImpl } : {}) })]),
  );

  const cache = new InMemoryCache({
    typePolicies: {
      Query: {
        fields: {
          // One list for the gallery: a page with `after` appends, a first page replaces.
          images: {
            keyArgs: false,
            merge(existing: Connection | undefined, incoming: Connection, { args }) {
              if (!existing || !args?.['after']) return incoming;
              return { ...incoming, edges: [...existing.edges, ...incoming.edges] };
            },
          },
        },
      },
      // A SignedUrl has no id: a newer one simply replaces the old.
      Image: { fields: { signedUrl: { merge: (_existing: unknown, incoming: unknown) => incoming } } },
    },
  });

  return new ApolloClient({ link, cache });
}

export type Client = ReturnType<typeof createApolloClient>;

/** Apollo's name for a field stored with these arguments (how `signedUrl(preset: "thumb")` is kept). */
const storeName = (field: string, preset: string | undefined) =>
  preset === undefined ? field : `${field}(${JSON.stringify({ preset })})`;

/**
 * Stores a URL as the image's `signedUrl` in the cache — the plain field, or with `preset` the
 * field the gallery asks as `signedUrl(preset: ...)` and, when the URL carries one, that
 * preset's `srcset` — so whatever renders the image next (a re-mounted view, a refetched page
 * read from the cache) starts from the newest URL. Not another minTtl's. With `onlyIfLater`, a
 * URL that expires no later than the cached one is dropped (an event arriving late). Images the
 * cache does not hold are left alone.
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
        const held = existing ? readField<string>('expiresAt', existing) : undefined;
        if (onlyIfLater && held && Date.parse(held) >= Date.parse(url.expiresAt)) return existing;
        written = true;
        // Only the two fields this URL carries: a query wanting more (refreshAt, cached) then
        // misses the cache and asks the gateway, instead of reading the old URL's values.
        return { __typename: 'SignedUrl', url: url.url, expiresAt: url.expiresAt };
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
 * re-signed URLs are written into the cache too (a refetch is by itself).
 */
export function urlTransport(client: Client, preset?: string): UrlRefreshTransport {
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
      const sub = client.subscribe({ query: SignedUrlRefreshedDocument, variables }).subscribe({
        next: (result) => {
          const event = result.data?.signedUrlRefreshed;
          if (event) {
            const url: FreshUrl = { ...event.signedUrl, srcset: event.srcset ?? null };
            rememberUrl(client, event.imageId, url, true, preset);
            handlers.next({ imageId: event.imageId, signedUrl: url });
          } else if (result.errors?.length) handlers.error(result.errors[0]);
        },
        error: handlers.error,
        complete: handlers.complete,
      });
      return () => sub.unsubscribe();
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
