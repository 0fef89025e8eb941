import { ApolloClient, ApolloLink, HttpLink, InMemoryCache, split } from '@apollo/client/core';
import { getMainDefinition } from '@apollo/client/utilities';
import type { UrlRefreshTransport } from '../composables/useUrlRefresh';
import {
  type GalleryPageQuery,
  ImageUrlsDocument,
  RefreshSignedUrlsDocument,
  SignedUrlRefreshedDocument,
} from '../gql/graphql';
import { authHeaders } from './auth';
import { SseLink } from './sse-link';

type Connection = GalleryPageQuery['images'];

export function createApolloClient(uri = '/graphql') {
  const auth = new ApolloLink((operation, forward) => {
    operation.setContext(({ headers = {} }: { headers?: Record<string, string> }) => ({
      headers: { ...headers, ...authHeaders() },
    }));
    return forward(operation);
  });
  const isSubscription = ({ query }: { query: Parameters<typeof getMainDefinition>[0] }) => {
    const def = getMainDefinition(query);
    return def.kind === 'OperationDefinition' && def.operation === 'subscription';
  };
  const link = split(
    isSubscription,
    new SseLink({ uri, headers: authHeaders }),
    ApolloLink.from([auth, new HttpLink({ uri })]),
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

/** useUrlRefresh's network edge over Apollo: the subscription, the refetch, the forced re-sign. */
export function urlTransport(client: Client): UrlRefreshTransport {
  return {
    subscribe(ids, handlers) {
      const sub = client.subscribe({ query: SignedUrlRefreshedDocument, variables: { ids } }).subscribe({
        next: (result) => {
          const event = result.data?.signedUrlRefreshed;
          if (event) handlers.next(event);
          else if (result.errors?.length) handlers.error(result.errors[0]);
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
      return data?.refreshSignedUrls ?? [];
    },
  };
}
