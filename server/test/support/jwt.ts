import { SignJWT } from 'jose';
import { TEST_JWT_SECRET } from './env.js';

/**
 * A bearer JWT as an identity provider would issue it: HS256, `sub`, `iat`, and `exp` (`claims.exp`
 * as unix seconds or a jose time span such as '6h'; one hour by default). The secret is the tests'
 * AUTH_JWT_SECRET unless another is given (a forgery, or the bench's own).
 */
export function signToken(
  sub: string,
  claims: Record<string, unknown> = {},
  secret: string = TEST_JWT_SECRET,
): Promise<string> {
  const exp = typeof claims.exp === 'number' || typeof claims.exp === 'string' ? claims.exp : '1h';
  return new SignJWT({ ...claims })
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(sub)
    .setIssuedAt()
    .setExpirationTime(exp)
    .sign(new TextEncoder().encode(secret));
}
