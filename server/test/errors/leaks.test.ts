import { UnsecuredJWT } from 'jose';
import { describe, expect, it, vi } from 'vitest';
import { makePng } from '../fixtures/images.js';
import { COS_SECRET_ID, COS_SECRET_KEY, TEST_JWT_SECRET, testRedisUrl } from '../support/env.js';
import { type Harness, startHarness } from '../support/harness.js';
import { signToken } from '../support/jwt.js';
import { answer, gqlRaw, type RawGql } from '../support/raw-graphql.js';
import { seed } from '../support/seed.js';
import { uploadFile } from '../support/upload.js';

const PROXY_SECRET = 'proxy-secret-under-review-0123456789';
const LOCAL_SECRET = 'local-signing-secret-under-review-0123';
const PNG = makePng(6, 4, [255, 94, 58], [0, 122, 255]);

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
  const forged = await signToken('alice', { role: 'admin' }, 'not-the-secret-not-the-secret-0123456789');
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

describe('no secret or signature in logs or error answers', () => {
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
