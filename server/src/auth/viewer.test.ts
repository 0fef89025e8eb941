import { SignJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import { createAuthenticator } from './viewer.js';

const SECRET = 'viewer-test-secret-0123456789abcdef';
const auth = {
  jwtSecret: SECRET,
  jwksUrl: undefined,
  issuer: undefined,
  audience: undefined,
  disabled: false,
  publicReadAnonymous: false,
};

function token(sub: string, expSeconds: number, secret = SECRET): Promise<string> {
  return new SignJWT({})
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(sub)
    .setExpirationTime(Math.floor(Date.now() / 1000) + expSeconds)
    .sign(new TextEncoder().encode(secret));
}

describe('authenticator: verified tokens remembered until they expire', () => {
  it('answers the same viewer for the same token, and refuses it once it has expired', async () => {
    const authenticate = createAuthenticator(auth);
    // Two seconds: exp is in whole seconds, so one could be a millisecond away once signed.
    const t = await token('alice', 2);
    const first = await authenticate(`Bearer ${t}`);
    expect(first).toMatchObject({ id: 'alice', isAdmin: false });
    expect(await authenticate(`Bearer ${t}`)).toBe(first); // remembered: the same object
    // exp is in whole seconds: wait past it.
    await new Promise((r) => setTimeout(r, first.expiresAt! - Date.now() + 20));
    await expect(authenticate(`Bearer ${t}`)).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });
  });

  it('never remembers a token that failed: a forged or altered one is refused every time', async () => {
    const authenticate = createAuthenticator(auth);
    const good = await token('bob', 600);
    await authenticate(`Bearer ${good}`);
    const forged = await token('bob', 600, 'another-secret-another-secret-0000');
    const altered = `${good.slice(0, -2)}${good.endsWith('AA') ? 'BB' : 'AA'}`;
    for (let i = 0; i < 2; i++) {
      await expect(authenticate(`Bearer ${forged}`)).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });
      await expect(authenticate(`Bearer ${altered}`)).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });
    }
  });
});
