import { createRemoteJWKSet, errors, type JWTPayload, type JWTVerifyGetKey, jwtVerify } from 'jose';
import type { Config } from '../config.js';
import { unauthenticated } from '../errors/index.js';
import { BoundedMap } from '../lib/bounded-map.js';

/**
 * How far ahead of this node's clock a token's `nbf` may be (docs/operations.md, "Clocks"): a
 * token issued by a server a few seconds ahead is otherwise refused for those seconds. Expiry
 * keeps no leeway.
 */
const NBF_LEEWAY_MS = 60_000;

export interface Viewer {
  id: string;
  isAdmin: boolean;
  /**
   * Absent for a user (an admin when `isAdmin`). `service`: a JWT with `role: "service"`, a trusted
   * backend or federation gateway that did its own checks (reads every image by id, owns only
   * what it uploads). `anonymous`: no credential at all, only with PUBLIC_READ_ANONYMOUS=true
   * (reads public images by id, nothing else). What each may do: docs/architecture.md, "Who sees
   * what".
   */
  role?: 'service' | 'anonymous';
  /** When the credential stops being valid (epoch ms); long-lived streams end then. */
  expiresAt?: number;
}

export const DEMO_VIEWER: Viewer = { id: 'demo', isAdmin: true };

/** A request without any credential, when PUBLIC_READ_ANONYMOUS=true. Its id owns nothing. */
export const ANONYMOUS_VIEWER: Viewer = { id: '', isAdmin: false, role: 'anonymous' };

const BEARER_REQUIRED = 'A bearer token is required (Authorization: Bearer <jwt>)';

/**
 * A credential is judged before anything runs: a refused one refuses the whole request, so a
 * GraphQL response carries the table's 401 and `www-authenticate` (there is no `data`, and the
 * GraphQL-over-HTTP spec wants a 4xx then), as a REST route's does.
 */
const REQUEST_LEVEL = { requestLevel: true } as const;

/**
 * Everything but reading public images by id needs a signed-in viewer: the anonymous one is
 * refused as if it had sent no token (which it did not).
 */
export function requireSignedIn(viewer: Viewer, opts: { requestLevel?: boolean } = {}): void {
  if (viewer.role === 'anonymous') throw unauthenticated(BEARER_REQUIRED, opts);
}

export type Authenticate = (authorization: string | null | undefined) => Promise<Viewer>;

/** Viewer ids become part of object keys and Redis keys: keep them printable and bounded. */
export const VIEWER_ID = /^[A-Za-z0-9._@:|-]{1,128}$/;
/** VIEWER_ID in words, for messages that refuse an id (`signet token --sub`, `signet import --owner`). */
export const VIEWER_ID_RULE = '1-128 of [A-Za-z0-9._@:|-]';

/** The characters of a JWT (base64url segments and dots; a few more that some issuers pad with). */
const JWT_CHARS = /^[A-Za-z0-9._~+/=-]+$/;
const NOT_A_JWT = 'The bearer token is not a signed JWT (three base64url parts separated by dots)';

/** A signed JWT's shape: its characters, and three parts (header, payload, signature). */
function isJwtShaped(token: string): boolean {
  if (!JWT_CHARS.test(token)) return false;
  let dots = 0;
  for (let i = 0; i < token.length; i++) if (token.charCodeAt(i) === 46) dots++;
  return dots === 2;
}

/**
 * The credential of an `Authorization: Bearer <credential>` header, or undefined for another
 * scheme or none. The scheme is case-insensitive (RFC 9110 §11.1): `bearer x` is what some
 * clients and scrapers send. Split by hand, not by a regular expression: the header is the
 * client's, up to the header size limit. Viewer tokens and `/metrics` (http/health.ts) both use it.
 */
export function bearerCredential(header: string | null | undefined): string | undefined {
  if (!header) return undefined;
  const h = header.trim();
  let end = 0;
  while (end < h.length && h.charCodeAt(end) !== 32 && h.charCodeAt(end) !== 9) end++;
  if (end !== 6 || h.slice(0, 6).toLowerCase() !== 'bearer') return undefined;
  const credential = h.slice(end).trimStart();
  return credential === '' ? undefined : credential;
}

/** Verified tokens remembered per node: enough for every client a node serves at once. */
const VERIFIED_TOKENS = 10_000;
/**
 * How long a verified token is taken without checking it again (never past its `exp`). Bounds
 * how long a key withdrawn from the JWKS still lets its tokens in on a node that saw them.
 */
const VERIFIED_FOR_MS = 60_000;

/**
 * Bearer JWT -> viewer. The algorithms are pinned per key kind (HS256 for a shared secret, the
 * asymmetric ones for JWKS), so `alg: none` and HS/RS confusion are refused by construction.
 */
export function createAuthenticator(auth: Config['auth']): Authenticate {
  if (auth.disabled) return async () => DEMO_VIEWER;
  const anonymous = auth.publicReadAnonymous;
  let key: Uint8Array | JWTVerifyGetKey;
  let algorithms: string[];
  if (auth.jwtSecret) {
    key = new TextEncoder().encode(auth.jwtSecret);
    algorithms = ['HS256'];
  } else {
    key = createRemoteJWKSet(new URL(auth.jwksUrl!), { timeoutDuration: 3000, cooldownDuration: 30_000 });
    algorithms = ['RS256', 'PS256', 'ES256', 'EdDSA'];
  }
  // A client sends the same token with every request until it expires. Verifying it (an HMAC or
  // an RSA check, base64 and JSON) was ~8% of a warm page's CPU; the token's string includes its
  // signature, so the same string verified once is the same answer until `exp` (nbf, iss and aud
  // were checked then and do not change). Only verified tokens are kept, bounded in number.
  const verified = new BoundedMap<string, { viewer: Viewer; until: number }>(VERIFIED_TOKENS);
  return async (authorization) => {
    // Only a request with no Authorization header at all is anonymous: a bad token is refused,
    // never quietly downgraded to anonymous reads.
    if (anonymous && (authorization === null || authorization === undefined)) return ANONYMOUS_VIEWER;
    const token = bearerCredential(authorization);
    if (token === undefined) throw unauthenticated(BEARER_REQUIRED, REQUEST_LEVEL);
    const known = verified.get(token);
    if (known) {
      if (Date.now() < known.until) return known.viewer;
      verified.delete(token);
    }
    // Only a token that was verified is remembered, so the shape is checked on a miss only. Said
    // apart from a missing token: a client that sent something (a pasted session id, a token cut
    // short, two tokens) learns what is wrong with it, and nothing about our keys.
    if (!isJwtShaped(token)) throw unauthenticated(NOT_A_JWT, REQUEST_LEVEL);
    const viewer = await verify(token);
    verified.set(token, { viewer, until: Math.min(viewer.expiresAt!, Date.now() + VERIFIED_FOR_MS) });
    return viewer;
  };

  async function verify(token: string): Promise<Viewer> {
    let payload: JWTPayload;
    const options = {
      algorithms,
      ...(auth.issuer ? { issuer: auth.issuer } : {}),
      ...(auth.audience ? { audience: auth.audience } : {}),
      requiredClaims: ['sub', 'exp'],
    };
    try {
      try {
        ({ payload } = await jwtVerify(token, key as Uint8Array, options));
      } catch (err) {
        // A token whose `nbf` is a moment ahead of this node's clock (issued by a server whose
        // clock runs ahead: `nbf = iat` is common) is taken: checked again as of NBF_LEEWAY_MS
        // later, then its expiry against this node's own time, strictly as before.
        if (!(err instanceof errors.JWTClaimValidationFailed && err.claim === 'nbf')) throw err;
        ({ payload } = await jwtVerify(token, key as Uint8Array, {
          ...options,
          currentDate: new Date(Date.now() + NBF_LEEWAY_MS),
        }));
        if (typeof payload.exp !== 'number' || payload.exp * 1000 <= Date.now()) throw err;
      }
    } catch {
      // One message for every reason: a client learns nothing about which check failed.
      throw unauthenticated('The bearer token is invalid or expired', REQUEST_LEVEL);
    }
    const sub = payload.sub;
    if (typeof sub !== 'string' || !VIEWER_ID.test(sub))
      throw unauthenticated('The token subject is not a valid user id', REQUEST_LEVEL);
    const role = payload['role'];
    return {
      id: sub,
      isAdmin: role === 'admin',
      ...(role === 'service' ? { role: 'service' as const } : {}),
      expiresAt: (payload.exp as number) * 1000,
    };
  }
}
