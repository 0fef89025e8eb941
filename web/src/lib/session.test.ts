import { gql } from '@apollo/client/core';
import { describe, expect, it } from 'vitest';
import { createApolloClient } from './apollo';
import { createSession } from './session';

const VIEWER = gql`
  query Viewer {
    viewer {
      id
      isAdmin
    }
  }
`;

/** A gateway that refuses every token, as it does one that expired: 401 with UNAUTHENTICATED. */
const refusing = (async () =>
  new Response(
    JSON.stringify({
      errors: [
        { message: 'The bearer token is invalid or expired', extensions: { code: 'UNAUTHENTICATED' } },
      ],
    }),
    { status: 401, headers: { 'content-type': 'application/json' } },
  )) as typeof fetch;

describe('session', () => {
  it('ends when a request with the stored token is refused, and only then', async () => {
    let stored = true;
    const session = createSession(() => stored);
    const client = createApolloClient('/graphql', refusing, session.tokenRefused);

    // A token the operation brings itself (the sign-in view trying one) ends nothing.
    await expect(
      client.query({
        query: VIEWER,
        fetchPolicy: 'no-cache',
        context: { headers: { authorization: 'Bearer x' } },
      }),
    ).rejects.toThrow();
    expect(session.ended.value).toBe(false);

    await expect(client.query({ query: VIEWER, fetchPolicy: 'no-cache' })).rejects.toThrow();
    expect(session.ended.value).toBe(true);
    session.resumed();
    expect(session.ended.value).toBe(false);

    // With no token stored there was no session: the sign-in view is the app's start, not an end.
    stored = false;
    await expect(client.query({ query: VIEWER, fetchPolicy: 'no-cache' })).rejects.toThrow();
    expect(session.ended.value).toBe(false);
  });

  it('a refusal of another kind ends nothing', async () => {
    const session = createSession(() => true);
    const forbidden = (async () =>
      new Response(
        JSON.stringify({ errors: [{ message: 'Admins only', extensions: { code: 'FORBIDDEN' } }] }),
        {
          status: 200,
          headers: { 'content-type': 'application/json' },
        },
      )) as typeof fetch;
    const client = createApolloClient('/graphql', forbidden, session.tokenRefused);
    await expect(client.query({ query: VIEWER, fetchPolicy: 'no-cache' })).rejects.toThrow();
    expect(session.ended.value).toBe(false);
  });
});
