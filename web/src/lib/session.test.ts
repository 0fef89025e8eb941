import { gql } from '@apollo/client/core';
import { afterEach, describe, expect, it } from 'vitest';
import { createApolloClient } from './apollo';
import { clearToken, onTokenChangedElsewhere, setToken } from './auth';
import { createSession } from './session';

const VIEWER = gql`
  query Viewer {
    viewer {
      id
      isAdmin
    }
  }
`;

const answer = (status: number, code: string) =>
  new Response(JSON.stringify({ errors: [{ message: `refused: ${code}`, extensions: { code } }] }), {
    status,
    headers: { 'content-type': 'application/json' },
  });

/** A gateway that refuses every token, as it does one that expired; it records what it was sent. */
function refusing(gate?: Promise<void>) {
  const sent: (string | null)[] = [];
  const transport = (async (_url: string, init: RequestInit) => {
    sent.push(new Headers(init.headers).get('authorization'));
    await gate;
    return answer(401, 'UNAUTHENTICATED');
  }) as unknown as typeof fetch;
  return { sent, transport };
}

afterEach(() => clearToken());

describe('session', () => {
  it('ends when a request sent with the stored token is refused, and not for a token being tried', async () => {
    const session = createSession();
    const { sent, transport } = refusing();
    const client = createApolloClient('/graphql', transport, session.tokenRefused);
    setToken('stored');

    // A token the operation brings itself (the sign-in view trying one) ends nothing.
    const tried = { headers: { authorization: 'Bearer tried' } };
    await expect(client.query({ query: VIEWER, fetchPolicy: 'no-cache', context: tried })).rejects.toThrow();
    expect(session.ended.value).toBe(false);

    await expect(client.query({ query: VIEWER, fetchPolicy: 'no-cache' })).rejects.toThrow();
    expect(sent).toEqual(['Bearer tried', 'Bearer stored']);
    expect(session.ended.value).toBe(true);
    session.resumed();
    expect(session.ended.value).toBe(false);
  });

  it('a late refusal of a token since replaced does not end the session that replaced it', async () => {
    const session = createSession();
    let release!: () => void;
    const { transport } = refusing(new Promise<void>((r) => (release = r)));
    const client = createApolloClient('/graphql', transport, session.tokenRefused);
    setToken('old');
    const late = client.query({ query: VIEWER, fetchPolicy: 'no-cache' });
    setToken('new'); // signed in again while the old token's request was out
    release();
    await expect(late).rejects.toThrow();
    expect(session.ended.value).toBe(false);
  });

  it('with no token stored there was no session to end; a refusal of another kind ends nothing', async () => {
    const session = createSession();
    const anonymous = createApolloClient('/graphql', refusing().transport, session.tokenRefused);
    await expect(anonymous.query({ query: VIEWER, fetchPolicy: 'no-cache' })).rejects.toThrow();
    expect(session.ended.value).toBe(false);

    setToken('stored');
    const forbidden = (async () => answer(200, 'FORBIDDEN')) as unknown as typeof fetch;
    const client = createApolloClient('/graphql', forbidden, session.tokenRefused);
    await expect(client.query({ query: VIEWER, fetchPolicy: 'no-cache' })).rejects.toThrow();
    expect(session.ended.value).toBe(false);
  });
});

describe('onTokenChangedElsewhere', () => {
  it('hears another tab store or remove the token (a storage event), and nothing else', () => {
    const heard: (string | null)[] = [];
    const stop = onTokenChangedElsewhere((token) => heard.push(token));
    setToken('from-the-other-tab');
    window.dispatchEvent(new StorageEvent('storage', { key: 'signet.token' }));
    window.dispatchEvent(new StorageEvent('storage', { key: 'something.else' }));
    clearToken();
    window.dispatchEvent(new StorageEvent('storage', { key: null })); // the other tab cleared all
    stop();
    window.dispatchEvent(new StorageEvent('storage', { key: 'signet.token' }));
    expect(heard).toEqual(['from-the-other-tab', null]);
  });
});
