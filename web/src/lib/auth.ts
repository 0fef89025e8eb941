/**
 * The bearer token, if the gateway has auth on. The app has no login screen of its own: a host
 * page (or a developer) stores a token under this key. Without one, a dev gateway acts as `demo`.
 */
const TOKEN_KEY = 'signet.token';

export function authHeaders(): Record<string, string> {
  let token: string | null = null;
  try {
    token = globalThis.localStorage?.getItem(TOKEN_KEY) ?? null;
  } catch {
    // storage disabled (privacy mode): no token
  }
  return token ? { authorization: `Bearer ${token}` } : {};
}
