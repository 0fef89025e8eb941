import { SignJWT } from 'jose';
import { VIEWER_ID, VIEWER_ID_RULE } from '../auth/viewer.js';
import type { Config } from '../config.js';
import { CliError } from './cli-error.js';

export interface TokenOptions {
  sub: string;
  admin?: boolean;
  service?: boolean;
  /** Seconds until it expires (default one hour). */
  ttlSeconds?: number;
}

/**
 * `signet token`: an HS256 JWT the gateway accepts, for trying things with auth on. Signed with
 * AUTH_JWT_SECRET (and carrying AUTH_ISSUER / AUTH_AUDIENCE when those are set, since the gateway
 * then checks them). With a JWKS only the identity provider can issue tokens, so this refuses.
 */
export async function issueToken(auth: Config['auth'], o: TokenOptions, now = Date.now()): Promise<string> {
  if (!auth.jwtSecret) {
    throw new CliError(
      auth.jwksUrl
        ? 'signet token signs with AUTH_JWT_SECRET; with AUTH_JWKS_URL, tokens come from your identity provider'
        : 'AUTH_JWT_SECRET is not set: auth is off (every request is the admin "demo"), so no token is needed. Set AUTH_JWT_SECRET (32+ characters) to turn auth on.',
      78,
    );
  }
  // The gateway's own subject rule (auth/viewer.ts): refused here rather than at use.
  if (!VIEWER_ID.test(o.sub)) throw new CliError(`--sub must be ${VIEWER_ID_RULE}, got "${o.sub}"`, 2);
  if (o.admin && o.service) throw new CliError('--admin and --service are two different roles: pick one', 2);
  const ttl = o.ttlSeconds ?? 3600;
  if (!Number.isInteger(ttl) || ttl < 1)
    throw new CliError(`--ttl must be a whole number of seconds, got ${ttl}`, 2);
  const iat = Math.floor(now / 1000);
  const role = o.admin ? 'admin' : o.service ? 'service' : undefined;
  let jwt = new SignJWT(role ? { role } : {})
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(o.sub)
    .setIssuedAt(iat)
    .setExpirationTime(iat + ttl);
  if (auth.issuer) jwt = jwt.setIssuer(auth.issuer);
  if (auth.audience) jwt = jwt.setAudience(auth.audience);
  return jwt.sign(new TextEncoder().encode(auth.jwtSecret));
}
