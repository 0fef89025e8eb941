/** A `SignedUrl` as a cache holds it: `url`, `expiresAt`, and whichever other fields were asked. */
type StoredSignedUrl = Record<string, unknown>;

const isObject = (v: unknown): v is StoredSignedUrl => typeof v === 'object' && v !== null;

/**
 * How a `SignedUrl` replaces the one a cache field holds (it has no id, so the cache cannot tell
 * by itself). The same URL: one object with the fields of both, the incoming one's winning — so a
 * query that asked fewer fields (`url expiresAt`) does not take `refreshAt` or `cached` away from
 * a query that asked them, which would then miss the cache and ask the gateway again. Another URL
 * (a newer step, a forced re-sign): the incoming fields only, since every field of a SignedUrl
 * belongs to its URL — the old URL's `refreshAt` beside the new `url` would be a lie; a field the
 * incoming URL lacks is then missing, and a query that needs it asks the gateway.
 */
export function mergeSignedUrl(existing: unknown, incoming: unknown): unknown {
  if (!isObject(existing) || !isObject(incoming)) return incoming;
  if (existing.url === undefined || existing.url !== incoming.url) return incoming;
  return { ...existing, ...incoming };
}

/**
 * The type policies `createSignet` adds to the host's `InMemoryCache`: how `Image.signedUrl` (with
 * or without arguments) merges. For a cache `createSignet` cannot reach (one without
 * `policies.addTypePolicies`), give them to it yourself: `new InMemoryCache({ typePolicies: signetTypePolicies })`.
 */
export const signetTypePolicies = {
  Image: { fields: { signedUrl: { merge: mergeSignedUrl } } },
} as const;
