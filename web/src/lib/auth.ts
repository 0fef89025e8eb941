/**
 * The bearer token, if the gateway has auth on. The sign-in view (views/SignInView.vue) stores
 * it here after the gateway accepted it; a host page may store one under the same key. Without
 * one, a dev gateway acts as `demo`.
 */
const TOKEN_KEY = 'signet.token';

export function getToken(): string | null {
  try {
    return globalThis.localStorage?.getItem(TOKEN_KEY) ?? null;
  } catch {
    return null; // storage disabled (privacy mode): no token
  }
}

export function setToken(token: string): void {
  globalThis.localStorage?.setItem(TOKEN_KEY, token);
}

export function clearToken(): void {
  try {
    globalThis.localStorage?.removeItem(TOKEN_KEY);
  } catch {
    // nothing stored, nothing to clear
  }
}

/**
 * Calls `listener` with the token stored now whenever another tab of this origin stores or removes
 * it (the browser tells other tabs only, never the one that wrote). Returns the unsubscribe.
 */
export function onTokenChangedElsewhere(listener: (token: string | null) => void): () => void {
  const handler = (event: StorageEvent) => {
    // key null: the other tab cleared all of its storage.
    if (event.key === TOKEN_KEY || event.key === null) listener(getToken());
  };
  globalThis.addEventListener?.('storage', handler);
  return () => globalThis.removeEventListener?.('storage', handler);
}

/** The authorization header for `token` (the stored one unless given), or none without one. */
export function authHeaders(token: string | null = getToken()): Record<string, string> {
  return token ? { authorization: `Bearer ${token}` } : {};
}

interface ErrorLike {
  graphQLErrors?: readonly { extensions?: Record<string, unknown> }[];
  networkError?: { statusCode?: number; result?: unknown } | null;
}

/**
 * Whether an Apollo error means "no valid credential": the gateway's UNAUTHENTICATED, as a
 * GraphQL error or as a 401 answer (yoga refuses the whole request before any resolver runs).
 */
export function isUnauthenticated(error: unknown): boolean {
  if (!error || typeof error !== 'object') return false;
  const e = error as ErrorLike;
  if (e.graphQLErrors?.some((g) => g.extensions?.['code'] === 'UNAUTHENTICATED')) return true;
  const net = e.networkError;
  if (net?.statusCode === 401) return true;
  const result = net?.result as { errors?: { extensions?: { code?: string } }[] } | undefined;
  return result?.errors?.some((g) => g.extensions?.code === 'UNAUTHENTICATED') ?? false;
}

/** The message the gateway gave for an error, for showing to the person signing in. */
export function gatewayMessage(error: unknown): string {
  const e = error as ErrorLike & { message?: string };
  const fromResult = (e.networkError?.result as { errors?: { message?: string }[] } | undefined)?.errors?.[0]
    ?.message;
  return (
    fromResult ??
    (e.graphQLErrors?.[0] as { message?: string } | undefined)?.message ??
    e.message ??
    'Unknown error'
  );
}
