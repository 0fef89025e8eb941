import { type InjectionKey, inject, type Ref, ref } from 'vue';
import { getToken } from './auth';

/**
 * Whether the gateway stopped accepting the token this page was using (it expired, or was
 * revoked). Any request may be the first to hear it: a query, a mutation, an upload. The app then
 * asks for a token over the page it was on, which stays as it was (an upload list, a scrolled
 * gallery), and carries on with the same viewer once one is accepted.
 */
export interface Session {
  readonly ended: Ref<boolean>;
  /**
   * A request sent with token `sent` was answered UNAUTHENTICATED. It ends the session only when
   * `sent` is the token stored now: without one there was no session, and a late answer to a
   * request sent with a token since replaced (the page's polls while the sign-in view shows) must
   * not end the session that replaced it.
   */
  tokenRefused(sent: string | null): void;
  /** A token was accepted again (or the viewer signed out): the session is no longer ended. */
  resumed(): void;
}

export const SESSION: InjectionKey<Session> = Symbol('signet.session');

export function createSession(stored: () => string | null = getToken): Session {
  const ended = ref(false);
  return {
    ended,
    tokenRefused(sent) {
      if (sent !== null && sent === stored()) ended.value = true;
    },
    resumed() {
      ended.value = false;
    },
  };
}

/** The app's session (main.ts provides it); a component mounted alone gets one of its own. */
export function useSession(): Session {
  return inject(SESSION, () => createSession(), true);
}
