import { ApolloClient, ApolloLink, HttpLink, InMemoryCache, split } from '@apollo/client/core';
import { getMainDefinition } from '@apollo/client/utilities';
import type { FreshUrl, UrlRefreshTransport } from '../composables/useUrlRefresh';
import {
  type GalleryPageQuery,
  ImageUrlsDocument,
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

/**
 * Stores a URL as the image's `signedUrl` in the cache (the plain field the gallery reads, not a
 * variant's or another minTtl's), so whatever renders the image next — a re-mounted view, a
 * refetched page read from the cache — starts from the newest URL. With `onlyIfLater`, a URL that
 * expires no later than the cached one is dropped (an event arriving late). Images the cache
 * does not hold are left alone.
 */
export function rememberUrl(client: Client, imageId: string, url: FreshUrl, onlyIfLater: boolean): void {
  const id = client.cache.identify({ __typename: 'Image', id: imageId });
  if (!id) return;
  client.cache.modify({
    id,
    fields: {
      signedUrl(existing, { storeFieldName, readField }) {
        if (storeFieldName !== 'signedUrl') return existing;
        const held = existing ? readField<string>('expiresAt', existing) : undefined;
        if (onlyIfLater && held && Date.parse(held) >= Date.parse(url.expiresAt)) return existing;
        // Only the two fields this URL carries: a query wanting more (refreshAt, cached) then
        // misses the cache and asks the gateway, instead of reading the old URL's values.
        return { __typename: 'SignedUrl', url: url.url, expiresAt: url.expiresAt };
      },
    },
  });
}

/**
 * useUrlRefresh's network edge over Apollo: the subscription, the refetch, the forced re-sign.
 * Pushed and re-signed URLs are written into the cache too (a refetch is by itself).
 */
export function urlTransport(client: Client): UrlRefreshTransport {
  return {
    subscribe(ids, handlers) {
      const sub = client.subscribe({ query: SignedUrlRefreshedDocument, variables: { ids } }).subscribe({
        next: (result) => {
          const event = result.data?.signedUrlRefreshed;
          if (event) {
            rememberUrl(client, event.imageId, event.signedUrl, true);
            handlers.next(event);
          } else if (result.errors?.length) handlers.error(result.errors[0]);
        },
        error: handlers.error,
        complete: handlers.complete,
      });
      return () => sub.unsubscribe();
    },
    async fetchUrls(ids) {
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
      // Asked for after a load error: the answer works now, whatever the cache held before.
      urls.forEach((url, i) => {
        if (url && ids[i] !== undefined) rememberUrl(client, ids[i], url, false);
      });
      return urls;
    },
  };
}
