import { ApolloClient, ApolloLink, HttpLink, InMemoryCache } from '@apollo/client/core';
import { onError } from '@apollo/client/link/error';
import type { GalleryPageQuery } from '../gql/graphql';
import { authHeaders, getToken, isUnauthenticated } from './auth';

type Connection = GalleryPageQuery['images'];

/**
 * The app's Apollo Client: HTTP with the stored token. The live-URL stream is @signet/vue's (its
 * own SSE link, wired in main.ts), which also tells this cache how a newer SignedUrl replaces
 * an older one. `fetchImpl` replaces the network for tests; the app uses the browser's fetch.
 * `onUnauthenticated` hears every answer that refused the stored token (lib/session.ts).
 */
export function createApolloClient(
  uri = '/graphql',
  fetchImpl?: typeof fetch,
  onUnauthenticated: (sentToken: string | null) => void = () => {},
) {
  const auth = new ApolloLink((operation, forward) => {
    // An operation's own authorization (the sign-in view trying a token) wins over the stored one.
    operation.setContext(({ headers = {} }: { headers?: Record<string, string> }) => {
      const sentToken = getToken();
      return {
        ownToken: headers['authorization'] !== undefined,
        sentToken,
        headers: { ...authHeaders(sentToken), ...headers },
      };
    });
    return forward(operation);
  });
  const refused = onError((error) => {
    // Only the stored token ends a session; a token an operation brings (one being tried) does not.
    const { ownToken, sentToken } = error.operation.getContext() as {
      ownToken?: boolean;
      sentToken?: string | null;
    };
    if (!ownToken && isUnauthenticated(error)) onUnauthenticated(sentToken ?? null);
  });
  const link = ApolloLink.from([
    auth,
    refused,
    new HttpLink({ uri, ...(fetchImpl ? { fetch: fetchImpl } : {}) }),
  ]);

  const cache = new InMemoryCache({
    typePolicies: {
      Query: {
        fields: {
          // One list for the gallery: a page with `after` appends, a first page replaces. Only
          // the first page asks `totalCount` (a count of all the viewer's images): a later page
          // comes without it and the list keeps the first page's (which upload and delete adjust).
          images: {
            keyArgs: false,
            merge(existing: Connection | undefined, incoming: Connection, { args }) {
              if (!existing || !args?.['after']) return incoming;
              const totalCount = incoming.totalCount ?? existing.totalCount;
              return {
                ...incoming,
                edges: [...existing.edges, ...incoming.edges],
                ...(totalCount !== undefined ? { totalCount } : {}),
              };
            },
          },
        },
      },
    },
  });

  return new ApolloClient({ link, cache });
}

export type Client = ReturnType<typeof createApolloClient>;
