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

describe('authenticator: a token issued by a server whose clock runs ahead', () => {
  const withNbf = (nbfInSeconds: number, expInSeconds: number, secret = SECRET) => {
    const now = Math.floor(Date.now() / 1000);
    return new SignJWT({})
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('carol')
      .setNotBefore(now + nbfInSeconds)
      .setExpirationTime(now + expInSeconds)
      .sign(new TextEncoder().encode(secret));
  };

  it('takes an nbf up to a minute ahead of this clock; refuses one further ahead, a forged one, and an expired one', async () => {
    const authenticate = createAuthenticator(auth);
    // nbf = iat on an issuer 2 s and 50 s ahead: refused for those seconds before.
    expect(await authenticate(`Bearer ${await withNbf(2, 600)}`)).toMatchObject({ id: 'carol' });
    expect(await authenticate(`Bearer ${await withNbf(50, 600)}`)).toMatchObject({ id: 'carol' });
    const refused = { code: 'UNAUTHENTICATED' };
    await expect(authenticate(`Bearer ${await withNbf(90, 600)}`)).rejects.toMatchObject(refused);
    const forged = await withNbf(2, 600, 'another-secret-another-secret-0000');
    await expect(authenticate(`Bearer ${forged}`)).rejects.toMatchObject(refused);
    // Expiry keeps no leeway: a token whose nbf is ahead and whose exp has passed is refused.
    await expect(authenticate(`Bearer ${await withNbf(2, -1)}`)).rejects.toMatchObject(refused);
  });
});
