import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, exportSPKI, generateKeyPair, type JWK, SignJWT, UnsecuredJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { makePng } from './fixtures/images.js';
import { testRedisUrl } from './support/env.js';
import {
  COS_SECRET_ID,
  COS_SECRET_KEY,
  type Harness,
  startHarness,
  TEST_JWT_SECRET,
} from './support/harness.js';
import { rawRequest } from './support/hostile.js';
import { answer, gqlRaw, type RawGql } from './support/raw-graphql.js';
import { seed } from './support/seed.js';
import { uploadFile } from './support/upload.js';

const PROXY_SECRET = 'proxy-secret-under-review-0123456789';
const LOCAL_SECRET = 'local-signing-secret-under-review-0123';
const PNG = makePng(6, 4, [255, 94, 58], [0, 122, 255]);

/** A server that counts every request it gets (the place an SSRF or a `jku` would reach). */
async function countingServer(handler?: (path: string) => { status: number; body: string }) {
  const hits: string[] = [];
  const server: Server = createServer((req, res) => {
    hits.push(req.url ?? '');
    const r = handler?.(req.url ?? '') ?? { status: 404, body: 'nothing here' };
    res.writeHead(r.status, { 'content-type': 'application/json' }).end(r.body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    hostPort: `127.0.0.1:${port}`,
    hits,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

interface Seen {
  status: number;
  headers: string;
  body: string;
}

/**
 * Runs a representative workload and collects every answer, every credential and signature that
 * went by, so the test can look for them where they must not be.
 */
async function workload(h: Harness, driver: 'cos' | 'local') {
  const seen: Seen[] = [];
  const jwts: string[] = [];
  const tokens: string[] = [];
  const signatures: string[] = [];
  const keep = async (res: Response | RawGql): Promise<RawGql> => {
    const r = res instanceof Response ? await answer(res) : res;
    seen.push({ status: r.status, headers: JSON.stringify([...r.headers]), body: r.text });
    return r;
  };
  const sigOf = (url: string) => {
    const u = new URL(url);
    const s = u.searchParams.get('q-signature') ?? u.searchParams.get('sig');
    if (s) signatures.push(s);
  };

  const alice = await h.token('alice');
  const admin = await h.token('root', { role: 'admin' });
  jwts.push(alice, admin);
  const ids = await seed(h, 'alice', 5);

  const page = await keep(
    await gqlRaw(
      h,
      {
        query:
          '{ images(first: 10) { edges { node { id key signedUrl { url } proxyUrl s: proxyUrl(mode: STREAM) } } } }',
      },
      { token: alice },
    ),
  );
  const nodes = (
    page.body!.data!.images as {
      edges: { node: { id: string; signedUrl: { url: string }; proxyUrl: string; s: string } }[];
    }
  ).edges.map((e) => e.node);
  for (const n of nodes) {
    sigOf(n.signedUrl.url);
    tokens.push(new URL(n.proxyUrl).searchParams.get('t')!);
  }
  await keep(
    await gqlRaw(
      h,
      {
        query: 'query($ids: [ID!]!) { imagesByIds(ids: $ids) { id urlStatus { cached } } }',
        variables: { ids },
      },
      { token: alice },
    ),
  );
  const refreshed = await keep(
    await gqlRaw(
      h,
      {
        query: 'mutation($ids: [ID!]!) { refreshSignedUrls(ids: $ids) { url } }',
        variables: { ids: ids.slice(0, 2) },
      },
      { token: alice },
    ),
  );
  for (const u of refreshed.body!.data!.refreshSignedUrls as { url: string }[]) sigOf(u.url);
  await keep(await gqlRaw(h, { query: '{ urlStats { requests workers { id } } }' }, { token: admin }));

  // Uploads: accepted, refused for its bytes, and as nobody.
  const up = await uploadFile(h, PNG, { name: '../../x.png', token: alice });
  seen.push({ status: up.status, headers: '', body: JSON.stringify(up) });
  sigOf(up.data!.uploadImage.signedUrl.url);
  tokens.push(new URL(up.data!.uploadImage.proxyUrl).searchParams.get('t')!);
  for (const [bytes, token] of [
    [Buffer.from('%PDF-1.7 not an image'), alice],
    [PNG, null],
  ] as const) {
    const r = await uploadFile(h, bytes, { token });
    seen.push({ status: r.status, headers: '', body: JSON.stringify(r) });
  }

  // The proxy: redirect (its Location is a signed URL), stream, HEAD, and refusals.
  for (const n of nodes.slice(0, 3)) {
    const redirect = await fetch(n.proxyUrl, { redirect: 'manual' });
    expect(redirect.status).toBe(302);
    sigOf(redirect.headers.get('location')!);
    await redirect.arrayBuffer();
    await keep(await fetch(n.s));
    await keep(await fetch(n.s, { method: 'HEAD' }));
  }
  const t0 = tokens[0]!;
  await keep(await fetch(`${h.url}/proxy/${nodes[1]!.id}?t=${t0}`)); // another image's token
  await keep(await fetch(`${h.url}/proxy/${nodes[0]!.id}?t=${t0.slice(0, -2)}xx`)); // tampered
  await keep(await fetch(`${h.url}/proxy/${nodes[0]!.id}?t=${alice}`)); // a JWT where a link token goes
  await keep(
    await fetch(`${h.url}/proxy/${nodes[0]!.id}`, { headers: { authorization: `Bearer ${alice}x` } }),
  );
  await keep(
    await fetch(`${h.url}/proxy/${nodes[0]!.id}?mode=stream&t=${t0}`, {
      headers: { range: 'bytes=999999-' },
    }),
  );

  // Bad credentials on GraphQL.
  const forged = await new SignJWT({ role: 'admin' })
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject('alice')
    .setExpirationTime('1h')
    .sign(new TextEncoder().encode('not-the-secret-not-the-secret-0123456789'));
  const none = new UnsecuredJWT({}).setSubject('alice').setExpirationTime('1h').encode();
  const expired = await h.token('alice', { exp: Math.floor(Date.now() / 1000) - 60 });
  jwts.push(forged, none, expired);
  for (const bad of [forged, none, expired, `${alice}x`]) {
    await keep(await gqlRaw(h, { query: '{ viewer { id } }' }, { token: bad }));
  }

  // An unexpected error (masked), and the origin failing under the proxy (502).
  const spy = vi
    .spyOn(h.container.imagesRepo, 'listPage')
    .mockRejectedValueOnce(new Error('boom: something broke'));
  await keep(await gqlRaw(h, { query: '{ images { totalCount } }' }, { token: alice }));
  spy.mockRestore();
  if (driver === 'cos') {
    h.fixture!.failNext(1, 500);
    await keep(await fetch(nodes[4]!.s));
    h.fixture!.failNext(1, 403);
    await keep(await fetch(nodes[4]!.s));
    h.fixture!.failNext(1, 503);
    const failedPut = await uploadFile(h, PNG, { token: alice });
    seen.push({ status: failedPut.status, headers: '', body: JSON.stringify(failedPut) });
  } else {
    // The local bucket: a good URL, a tampered one, an expired-looking one.
    const url = new URL(nodes[0]!.signedUrl.url);
    await keep(await fetch(url));
    const tampered = new URL(url);
    tampered.searchParams.set('sig', `${url.searchParams.get('sig')!.slice(0, -2)}AA`);
    await keep(await fetch(tampered));
    const moved = new URL(url);
    moved.searchParams.set('e', String(Number(url.searchParams.get('e')) + 3600));
    await keep(await fetch(moved));
  }
  return { seen, jwts, tokens, signatures };
}

/**
 * `secrets` may appear nowhere; `identifiers` (the COS SecretId, which every presigned URL carries
 * as q-ak by design) not in logs and not in error answers.
 */
function expectNoLeaks(
  h: Harness,
  w: Awaited<ReturnType<typeof workload>>,
  secrets: string[],
  identifiers: string[] = [],
): { logLines: number; responses: number } {
  const logs = h.logs.join('\n');
  const credentials = [
    ...identifiers,

    ...w.jwts,
    ...w.jwts.map((j) => j.split('.')[2]!).filter(Boolean),
    ...w.tokens,
    ...w.signatures,
  ];
  expect(w.signatures.length).toBeGreaterThan(5);
  expect(w.tokens.length).toBeGreaterThan(5);
  for (const s of [...secrets, ...credentials]) {
    expect(logs.includes(s), `the logs contain ${s.slice(0, 12)}…`).toBe(false);
  }
  // No signed URL or capability link in any form either (a log line carries paths only).
  expect(logs).not.toMatch(/q-signature=|[?&]sig=|[?&]t=[A-Za-z0-9]/);
  for (const r of w.seen) {
    const all = `${r.headers}\n${r.body}`;
    // The secrets never, in any answer.
    for (const s of secrets)
      expect(all.includes(s), `an answer contains a secret: ${all.slice(0, 200)}`).toBe(false);
    // Error answers carry no credential or signature (success answers carry signed URLs by design).
    if (r.status >= 400 || r.body.includes('"errors"')) {
      for (const c of credentials)
        expect(
          all.includes(c),
          `error answer ${r.status} carries ${c.slice(0, 12)}…: ${all.slice(0, 300)}`,
        ).toBe(false);
      expect(all).not.toMatch(/stack|node_modules|\.ts:\d/);
    }
  }
  return { logLines: h.logs.length, responses: w.seen.length };
}

describe('security review: no secret or signature in logs or error answers', () => {
  it('cos driver (q-signatures), LOG_LEVEL=debug', async () => {
    const h = await startHarness({
      driver: 'cos',
      redis: testRedisUrl(),
      env: { LOG_LEVEL: 'debug', PROXY_TOKEN_SECRET: PROXY_SECRET },
    });
    try {
      const w = await workload(h, 'cos');
      const n = expectNoLeaks(h, w, [COS_SECRET_KEY, TEST_JWT_SECRET, PROXY_SECRET], [COS_SECRET_ID]);
      // The capture is real: the workload was logged, request by request.
      expect(n.logLines).toBeGreaterThan(40);
      expect(h.logs.some((l) => l.includes('"route":"proxy"'))).toBe(true);
      expect(h.logs.some((l) => l.includes('proxy: origin failed'))).toBe(true);
      expect(h.logs.some((l) => l.includes('unexpected error'))).toBe(true);
      console.log(`[security] cos: ${n.responses} answers and ${n.logLines} log lines checked`);
    } finally {
      await h.close();
    }
  });

  it('local driver (sig=), LOG_LEVEL=debug', async () => {
    const h = await startHarness({
      driver: 'local',
      redis: testRedisUrl(),
      env: { LOG_LEVEL: 'debug', PROXY_TOKEN_SECRET: PROXY_SECRET, LOCAL_SIGNING_SECRET: LOCAL_SECRET },
    });
    try {
      const w = await workload(h, 'local');
      const n = expectNoLeaks(h, w, [TEST_JWT_SECRET, PROXY_SECRET, LOCAL_SECRET]);
      expect(h.logs.some((l) => l.includes('"route":"local_bucket"'))).toBe(true);
      console.log(`[security] local: ${n.responses} answers and ${n.logLines} log lines checked`);
    } finally {
      await h.close();
    }
  });
});

describe('security review: the JWT algorithm is pinned (JWKS configured)', () => {
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

describe('security review: SSRF and object keys', () => {
  let h: Harness;
  let attacker: Awaited<ReturnType<typeof countingServer>>;
  let ids: string[];
  let link: { id: string; redirect: string; stream: string };

  beforeAll(async () => {
    attacker = await countingServer();
    h = await startHarness({ driver: 'cos', redis: testRedisUrl() });
    ids = await seed(h, 'alice', 3);
    const r = await gqlRaw(h, {
      query: 'query($id: ID!) { image(id: $id) { id redirect: proxyUrl stream: proxyUrl(mode: STREAM) } }',
      variables: { id: ids[0] },
    });
    link = r.body!.data!.image as typeof link;
  });
  afterAll(async () => {
    await h?.close();
    await attacker?.close();
  });

  it('nothing a client sends makes the proxy fetch anything but the bucket’s own objects', async () => {
    const a = attacker.url;
    const host = attacker.hostPort;
    const stream = new URL(link.stream);
    const redirect = new URL(link.redirect);
    const t = stream.searchParams.get('t')!;
    const paths = [
      `/proxy/${encodeURIComponent(`${a}/x`)}?t=${t}`,
      `/proxy/${encodeURIComponent(`//${host}/x`)}?t=${t}&mode=stream`,
      `/proxy/@${host}/x?t=${t}`,
      `/proxy/http:%2F%2F${host}%2Fx?t=${t}&mode=stream`,
      `/proxy/${ids[0]}?t=${encodeURIComponent(`${a}/token`)}&mode=stream`,
      `/proxy/${ids[0]}?t=${t}&mode=stream&url=${encodeURIComponent(a)}&key=..%2F..%2Fother&bucket=evil&host=${host}&domain=${host}`,
      `/proxy/${ids[0]}?t=${t}&url=${encodeURIComponent(a)}`,
      `/proxy/${ids[0]}/..%2F..%2F${encodeURIComponent(a)}?t=${t}&mode=stream`,
    ];
    const headers: Record<string, string>[] = [
      { host },
      { 'x-forwarded-host': host, 'x-forwarded-proto': 'http', forwarded: `host=${host};proto=http` },
      { 'x-original-url': `${a}/x`, 'x-rewrite-url': `${a}/x`, referer: `${a}/` },
      { range: `bytes=0-1, ${a}` },
      { 'x-cos-copy-source': `${host}/x`, 'x-cos-security-token': 'evil' },
    ];
    const statuses: number[] = [];
    const locations: string[] = [];
    for (const path of paths) {
      for (const hd of [{}, ...headers]) {
        const r = await rawRequest(h.url, { path, headers: hd });
        statuses.push(r.status);
        if (r.headers.location) locations.push(String(r.headers.location));
      }
    }
    // The genuine link, with every hostile header: served from the bucket, or redirected to it.
    for (const hd of headers) {
      for (const u of [stream, redirect]) {
        const r = await rawRequest(h.url, { path: `${u.pathname}${u.search}`, headers: hd });
        statuses.push(r.status);
        if (r.headers.location) locations.push(String(r.headers.location));
      }
    }
    // GraphQL: URLs and paths where ids go.
    for (const id of [`${a}/x`, `//${host}`, '../../etc/passwd', `${ids[0]}@${host}`]) {
      const r = await gqlRaw(h, {
        query: 'query($id: ID!) { image(id: $id) { signedUrl { url } } }',
        variables: { id },
      });
      expect(r.codes).toEqual(['BAD_USER_INPUT']);
      const m = await gqlRaw(h, {
        query: 'mutation($ids: [ID!]!) { refreshSignedUrls(ids: $ids) { url } preloadSignedUrls(ids: $ids) }',
        variables: { ids: [id] },
      });
      expect(m.codes).toContain('BAD_USER_INPUT');
    }
    expect(statuses.every((s) => s < 500)).toBe(true);
    expect(attacker.hits).toEqual([]);
    for (const l of locations) expect(l.startsWith(`${h.fixture!.url}/`), l).toBe(true);
    // And the bucket itself was only ever asked for keys that are in the database.
    const known = new Set(
      (await h.db.kysely.selectFrom('images').select('object_key').execute()).map((r) => r.object_key),
    );
    for (const entry of h.fixture!.requests.log) expect(known.has(entry.key), entry.key).toBe(true);
  });

  it('object keys are built by the server: names, variables and viewer ids cannot steer them', async () => {
    const before = new Set(h.fixture!.objects.keys());
    const attempts: [string, Parameters<typeof uploadFile>[2]][] = [
      ['name ../../', { name: '../../etc/passwd' }],
      ['name with another owner', { name: 'u/bob/evil.png' }],
      ['name a URL', { name: `${attacker.url}/x.png` }],
      ['name with NUL', { name: 'a\u0000b.png' }],
    ];
    const keys: string[] = [];
    for (const [label, opts] of attempts) {
      const r = await uploadFile(h, PNG, opts);
      expect(r.errors, label).toBeUndefined();
      keys.push(r.data!.uploadImage.key);
    }
    // Viewer ids become one escaped path segment, whatever they contain.
    for (const sub of ['..', 'a:b|c@d', '.']) {
      const r = await uploadFile(h, PNG, { token: await h.token(sub) });
      expect(r.errors, sub).toBeUndefined();
      const key = r.data!.uploadImage.key;
      expect(key.split('/')).toHaveLength(3);
      expect(['.', '..']).not.toContain(key.split('/')[1]);
      keys.push(key);
    }
    // A key smuggled into the operations' variables is ignored.
    const form = new FormData();
    form.append(
      'operations',
      JSON.stringify({
        query: 'mutation($file: File!) { uploadImage(file: $file) { key } }',
        variables: { file: null, key: 'u/bob/evil.png', objectKey: '../x' },
      }),
    );
    form.append('map', JSON.stringify({ 0: ['variables.file'] }));
    form.append('0', new Blob([new Uint8Array(PNG)], { type: 'image/png' }), 'x.png');
    const smuggled = await answer(
      await fetch(`${h.url}/graphql`, {
        method: 'POST',
        headers: { 'x-graphql-yoga-csrf': '1', authorization: `Bearer ${await h.token('alice')}` },
        body: form,
      }),
    );
    keys.push((smuggled.body!.data!.uploadImage as { key: string }).key);

    for (const key of keys)
      expect(key, key).toMatch(
        /^u\/[^/]+\/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.png$/,
      );
    const added = [...h.fixture!.objects.keys()].filter((k) => !before.has(k));
    expect(added.sort()).toEqual([...keys].sort());
    for (const k of added) expect(k).not.toMatch(/bob|evil|etc|passwd|http|\.\.\//);
  });
});
