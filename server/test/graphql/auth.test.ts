import { exportJWK, exportSPKI, generateKeyPair, type JWK, SignJWT, UnsecuredJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { countingServer } from '../support/counting-server.js';
import { TEST_JWT_SECRET, testRedisUrl } from '../support/env.js';
import { type Harness, startHarness } from '../support/harness.js';
import { signToken } from '../support/jwt.js';
import { gqlAuthorized, gqlRaw } from '../support/raw-graphql.js';

// Ordinary tokens come from signToken; tokens with missing or unusual claims, other algorithms or
// keys in the header are built with jose here, because they are what these tests are about.
const secret = new TextEncoder().encode(TEST_JWT_SECRET);
const jwt = (claims: Record<string, unknown> = {}) =>
  new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setIssuedAt();

describe('authentication: a bearer JWT signed with AUTH_JWT_SECRET', () => {
  let h: Harness;

  beforeAll(async () => {
    h = await startHarness({ driver: 'local', redis: testRedisUrl(), env: { URL_TTL_SECONDS: '3600' } });
  });
  afterAll(async () => {
    await h?.close();
  });

  const VIEWER = '{ viewer { id isAdmin } }';

  async function expectUnauthenticated(authorization: string | undefined, label: string, message?: string) {
    const res = await gqlAuthorized(h, VIEWER, {}, authorization);
    // Refused before anything runs: no data, and the table's 401 with its challenge, as a REST
    // route's (the GraphQL-over-HTTP spec wants a 4xx for a response without data).
    expect(res.body!, label).not.toHaveProperty('data');
    expect(res.codes, label).toEqual(['UNAUTHENTICATED']);
    expect(res.status, label).toBe(401);
    expect(res.headers.get('www-authenticate'), label).toBe('Bearer');
    if (message !== undefined) expect(res.body!.errors![0]!.message, label).toBe(message);
  }

  it('missing or malformed credentials, each told what is wrong', async () => {
    const required = 'A bearer token is required (Authorization: Bearer <jwt>)';
    const notJwt = 'The bearer token is not a signed JWT (three base64url parts separated by dots)';
    const invalid = 'The bearer token is invalid or expired';
    await expectUnauthenticated(undefined, 'missing', required);
    await expectUnauthenticated('Bearer', 'empty bearer', required);
    await expectUnauthenticated(
      `Basic ${Buffer.from('alice:pw').toString('base64')}`,
      'basic auth',
      required,
    );
    await expectUnauthenticated('Bearer not a jwt', 'words pasted', notJwt);
    await expectUnauthenticated('Bearer not-a-jwt', 'one part', notJwt);
    await expectUnauthenticated('Bearer a.b', 'two parts', notJwt);
    await expectUnauthenticated('Bearer a.b.c.d.e', 'five parts (an encrypted JWT)', notJwt);
    await expectUnauthenticated(`Bearer ${'x'.repeat(8_000)}`, 'long garbage', notJwt);
    await expectUnauthenticated('Bearer a.b.c', 'three garbage parts', invalid);
  });

  it('wrong signature, expired, alg none, RS256, missing claims, bad subject', async () => {
    const other = 'another-secret-another-secret-0123456789';
    const { privateKey } = await generateKeyPair('RS256');
    const now = Math.floor(Date.now() / 1000);
    const cases: [string, string][] = [
      ['wrong signature', await signToken('alice', {}, other)],
      ['expired', await signToken('alice', { exp: now - 120 })],
      [
        'alg none',
        new UnsecuredJWT({ role: 'admin' })
          .setSubject('alice')
          .setIssuedAt()
          .setExpirationTime('1h')
          .encode(),
      ],
      [
        'RS256',
        await new SignJWT({})
          .setProtectedHeader({ alg: 'RS256' })
          .setSubject('alice')
          .setExpirationTime('1h')
          .sign(privateKey),
      ],
      ['no exp', await jwt().setSubject('alice').sign(secret)],
      ['no sub', await jwt().setExpirationTime('1h').sign(secret)],
      ['bad sub', await signToken('a b/../c')],
      [
        'not yet valid',
        await jwt()
          .setSubject('alice')
          .setNotBefore(now + 3600)
          .setExpirationTime('2h')
          .sign(secret),
      ],
    ];
    // A valid token with its signature swapped for another token's.
    const good = await h.token('alice');
    const forged = await signToken('alice', { role: 'admin' }, other);
    cases.push(['spliced', `${forged.split('.').slice(0, 2).join('.')}.${good.split('.')[2]}`]);
    for (const [label, token] of cases) await expectUnauthenticated(`Bearer ${token}`, label);
  });

  it('a valid token: sub is the viewer; role admin makes an admin', async () => {
    const user = await gqlAuthorized(h, VIEWER, {}, `Bearer ${await h.token('alice')}`);
    expect(user.body).toEqual({ data: { viewer: { id: 'alice', isAdmin: false } } });
    const admin = await gqlAuthorized(h, VIEWER, {}, `Bearer ${await h.token('root', { role: 'admin' })}`);
    expect(admin.body).toEqual({ data: { viewer: { id: 'root', isAdmin: true } } });
    const notAdmin = await gqlAuthorized(h, VIEWER, {}, `Bearer ${await h.token('eve', { role: 'Admin ' })}`);
    expect(notAdmin.body).toEqual({ data: { viewer: { id: 'eve', isAdmin: false } } });
  });
});

describe('authentication with AUTH_ISSUER and AUTH_AUDIENCE', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({
      driver: 'local',
      redis: 'memory',
      env: { AUTH_ISSUER: 'https://issuer.test/', AUTH_AUDIENCE: 'signet' },
    });
  });
  afterAll(async () => {
    await h?.close();
  });

  const VIEWER = '{ viewer { id } }';
  const token = (iss: string | undefined, aud: string | string[] | undefined) => {
    const t = jwt().setSubject('alice').setExpirationTime('1h');
    if (iss) t.setIssuer(iss);
    if (aud) t.setAudience(aud);
    return t.sign(secret);
  };

  it('accepts the right issuer and audience', async () => {
    const res = await gqlAuthorized(h, VIEWER, {}, `Bearer ${await token('https://issuer.test/', 'signet')}`);
    expect(res.body).toEqual({ data: { viewer: { id: 'alice' } } });
    const multi = await gqlAuthorized(
      h,
      VIEWER,
      {},
      `Bearer ${await token('https://issuer.test/', ['other', 'signet'])}`,
    );
    expect(multi.body).toEqual({ data: { viewer: { id: 'alice' } } });
  });

  it('refuses a wrong or missing issuer or audience', async () => {
    const cases: [string, string | undefined, string | undefined][] = [
      ['wrong issuer', 'https://evil.test/', 'signet'],
      ['missing issuer', undefined, 'signet'],
      ['wrong audience', 'https://issuer.test/', 'other'],
      ['missing audience', 'https://issuer.test/', undefined],
    ];
    for (const [label, iss, aud] of cases) {
      const res = await gqlAuthorized(h, VIEWER, {}, `Bearer ${await token(iss, aud)}`);
      expect(res.codes, label).toEqual(['UNAUTHENTICATED']);
    }
  });
});

describe('authentication: the JWT algorithm is pinned (JWKS configured)', () => {
  let h: Harness;
  let jwks: Awaited<ReturnType<typeof countingServer>>;
  let attacker: Awaited<ReturnType<typeof countingServer>>;
  let keys: Awaited<ReturnType<typeof generateKeyPair>>;
  let evil: Awaited<ReturnType<typeof generateKeyPair>>;
  let publicJwk: JWK;
  let evilJwk: JWK;

  beforeAll(async () => {
    keys = await generateKeyPair('RS256', { extractable: true });
    evil = await generateKeyPair('RS256', { extractable: true });
    publicJwk = { ...(await exportJWK(keys.publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' };
    evilJwk = { ...(await exportJWK(evil.publicKey)), kid: 'evil', alg: 'RS256', use: 'sig' };
    jwks = await countingServer((path) =>
      path === '/jwks.json'
        ? { status: 200, body: JSON.stringify({ keys: [publicJwk] }) }
        : { status: 404, body: '{}' },
    );
    attacker = await countingServer(() => ({ status: 200, body: JSON.stringify({ keys: [evilJwk] }) }));
    // AUTH_JWT_SECRET empty = unset: the JWKS alone decides.
    h = await startHarness({
      driver: 'local',
      redis: 'memory',
      env: { AUTH_JWT_SECRET: '', AUTH_JWKS_URL: `${jwks.url}/jwks.json` },
    });
  });
  afterAll(async () => {
    await h?.close();
    await jwks?.close();
    await attacker?.close();
  });

  const viewer = (token: string) => gqlRaw(h, { query: '{ viewer { id isAdmin } }' }, { token });
  const claims = () =>
    new SignJWT({ role: 'admin' }).setSubject('mallory').setIssuedAt().setExpirationTime('1h');

  it('a token signed by the JWKS key is accepted', async () => {
    const good = await new SignJWT({})
      .setProtectedHeader({ alg: 'RS256', kid: 'k1' })
      .setSubject('alice')
      .setExpirationTime('1h')
      .sign(keys.privateKey);
    expect((await viewer(good)).body?.data).toEqual({ viewer: { id: 'alice', isAdmin: false } });
  });

  it('HS256 signed with the public key (PEM, DER-ish JWK text, modulus) is refused: no HS/RS confusion', async () => {
    const pem = await exportSPKI(keys.publicKey);
    const secrets = [
      pem,
      `${pem}\n`,
      JSON.stringify(publicJwk),
      publicJwk.n!,
      Buffer.from(publicJwk.n!, 'base64url').toString('latin1'),
    ];
    for (const secret of secrets) {
      for (const alg of ['HS256', 'HS384', 'HS512']) {
        const forged = await claims()
          .setProtectedHeader({ alg, kid: 'k1' })
          .sign(new TextEncoder().encode(secret));
        const r = await viewer(forged);
        expect(r.codes, `${alg} with ${secret.slice(0, 20)}`).toEqual(['UNAUTHENTICATED']);
      }
    }
  });

  it('alg none, a foreign key under our kid, and keys offered in the header (jwk, jku, x5u) are refused', async () => {
    const forged: [string, string][] = [
      [
        'alg none',
        new UnsecuredJWT({ role: 'admin' }).setSubject('mallory').setExpirationTime('1h').encode(),
      ],
      [
        'foreign key, our kid',
        await claims().setProtectedHeader({ alg: 'RS256', kid: 'k1' }).sign(evil.privateKey),
      ],
      [
        'embedded jwk',
        await claims().setProtectedHeader({ alg: 'RS256', kid: 'evil', jwk: evilJwk }).sign(evil.privateKey),
      ],
      [
        'jku',
        await claims()
          .setProtectedHeader({ alg: 'RS256', kid: 'evil', jku: `${attacker.url}/jwks.json` })
          .sign(evil.privateKey),
      ],
      [
        'x5u',
        await claims()
          .setProtectedHeader({ alg: 'RS256', kid: 'evil', x5u: `${attacker.url}/cert.pem` })
          .sign(evil.privateKey),
      ],
      ['no kid, foreign key', await claims().setProtectedHeader({ alg: 'RS256' }).sign(evil.privateKey)],
    ];
    for (const [label, token] of forged)
      expect((await viewer(token)).codes, label).toEqual(['UNAUTHENTICATED']);
    // The keys come from the configured JWKS only: the attacker's server was never asked.
    expect(attacker.hits).toEqual([]);
    expect(new Set(jwks.hits)).toEqual(new Set(['/jwks.json']));
  });
});
