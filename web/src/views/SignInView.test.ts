import { DefaultApolloClient } from '@vue/apollo-composable';
import { flushPromises, mount } from '@vue/test-utils';
import { afterEach, describe, expect, it } from 'vitest';
import { createApolloClient } from '../lib/apollo';
import { authHeaders, clearToken, getToken, setToken } from '../lib/auth';
import SignInView from './SignInView.vue';

const GOOD = 'header.alice.signature';
const OTHER = 'header.bob.signature';

/**
 * The gateway's answers to the `viewer` query, through the real Apollo links: a known token is
 * its user, anything else is refused the way yoga refuses it (401, UNAUTHENTICATED). Records the
 * authorization header of every request.
 */
function gateway() {
  const seen: (string | null)[] = [];
  const users: Record<string, string> = { [GOOD]: 'alice', [OTHER]: 'bob' };
  const fetchImpl = async (_url: RequestInfo | URL, init?: RequestInit) => {
    const auth = new Headers(init?.headers).get('authorization');
    seen.push(auth);
    const user = auth ? users[auth.replace(/^Bearer /, '')] : undefined;
    if (!user) {
      return new Response(
        JSON.stringify({
          errors: [
            { message: 'The bearer token is invalid or expired', extensions: { code: 'UNAUTHENTICATED' } },
          ],
        }),
        { status: 401, headers: { 'content-type': 'application/json' } },
      );
    }
    return new Response(
      JSON.stringify({ data: { viewer: { __typename: 'Viewer', id: user, isAdmin: false } } }),
      {
        headers: { 'content-type': 'application/json' },
      },
    );
  };
  return { client: createApolloClient('/graphql', fetchImpl as typeof fetch), seen };
}

function mountView(client: ReturnType<typeof createApolloClient>, props: Record<string, unknown> = {}) {
  return mount(SignInView, { props, global: { provide: { [DefaultApolloClient]: client } } });
}

afterEach(() => {
  clearToken();
});

describe('SignInView', () => {
  it('keeps a token the gateway accepts (validated with viewer) and says who signed in', async () => {
    const gw = gateway();
    const w = mountView(gw.client);
    await w.get('[data-testid=token-input]').setValue(`Bearer ${GOOD}\n`);
    await w.get('form').trigger('submit');
    await flushPromises();
    expect(gw.seen).toEqual([`Bearer ${GOOD}`]);
    expect(getToken()).toBe(GOOD);
    expect(authHeaders()).toEqual({ authorization: `Bearer ${GOOD}` });
    expect(w.emitted('signedIn')).toEqual([[{ __typename: 'Viewer', id: 'alice', isAdmin: false }]]);
    expect(w.find('[role=alert]').exists()).toBe(false);
    // The answer stays out of the cache: the app's own viewer query must not see it before the
    // token is stored (its pages would then query without it).
    expect(JSON.stringify(gw.client.cache.extract())).not.toContain('alice');
  });

  it('refuses a token the gateway refuses, with its message, and keeps the one it had', async () => {
    setToken(OTHER);
    const gw = gateway();
    const w = mountView(gw.client);
    await w.get('[data-testid=token-input]').setValue('not.a.token');
    await w.get('form').trigger('submit');
    await flushPromises();
    // The token tried is the one sent, not the stored one.
    expect(gw.seen).toEqual(['Bearer not.a.token']);
    const alert = w.get('[role=alert]');
    expect(alert.text()).toBe('The gateway refused this token: The bearer token is invalid or expired');
    expect(w.get('textarea').attributes('aria-invalid')).toBe('true');
    expect(getToken()).toBe(OTHER);
    expect(w.emitted('signedIn')).toBeUndefined();
  });

  it('a refused token puts focus back in the field, which the error describes', async () => {
    const gw = gateway();
    const w = mount(SignInView, {
      attachTo: document.body,
      global: { provide: { [DefaultApolloClient]: gw.client } },
    });
    const button = w.get<HTMLButtonElement>('button[type=submit]');
    button.element.focus();
    await w.get('[data-testid=token-input]').setValue('not.a.token');
    await w.get('form').trigger('submit');
    await flushPromises();
    // The button was disabled while the token was checked: focus had fallen to the page's body.
    expect(document.activeElement).toBe(w.get('textarea').element);
    expect(w.get('textarea').attributes('aria-describedby')).toBe('sign-in-error');
    await w.get('[data-testid=token-input]').setValue('');
    await w.get('form').trigger('submit');
    await flushPromises();
    expect(document.activeElement).toBe(w.get('textarea').element);
    w.unmount();
  });

  it('an empty field asks for a token without calling the gateway', async () => {
    const gw = gateway();
    const w = mountView(gw.client);
    await w.get('form').trigger('submit');
    await flushPromises();
    expect(gw.seen).toEqual([]);
    expect(w.get('[role=alert]').text()).toBe('Paste a token first.');
  });

  it('tells a developer how to get a token that shows the demo photos and the Stats view', () => {
    const hint = mountView(gateway().client).get('[data-testid=dev-token-hint]');
    // The flags `signet token` has (server/src/cli/main.ts): the demo photos are `demo`'s, Stats is for admins.
    expect(hint.get('.sign-in__command').text()).toBe('npm run signet -- token --sub demo --admin');
    expect(hint.text()).toContain('for the user demo, who owns the demo photos');
    expect(hint.text()).toContain('--admin also opens the Stats view');
  });

  it('says so when the stored token stopped being accepted', () => {
    const w = mountView(gateway().client, { reason: 'expired' });
    expect(w.text()).toContain('Your token is no longer accepted');
  });

  it('sign-out clears the stored token', () => {
    setToken(GOOD);
    clearToken();
    expect(getToken()).toBeNull();
    expect(authHeaders()).toEqual({});
  });
});
