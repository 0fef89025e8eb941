import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createProxyTokens } from '../../src/auth/proxy-token.js';
import { FakeClock, systemClock } from '../../src/clock.js';
import { RECENT_ROW_MS, RecentRows } from '../../src/db/recent-rows.js';
import { apiNodeEnv, testRedisUrl } from '../support/env.js';
import { GatewayProcess } from '../support/gateway-process.js';
import { type Harness, startHarness } from '../support/harness.js';
import { proxyLinks } from '../support/proxy.js';
import { seed } from '../support/seed.js';

const OLD = { kid: 'k0', secret: 'the-old-proxy-secret-0123' };
const NEW = { kid: 'k1', secret: 'the-new-proxy-secret-4567' };
const env = (secrets: { kid: string; secret: string }[]) => ({
  PROXY_TOKEN_SECRET: secrets.map((s) => `${s.kid}:${s.secret}`).join(','),
});

const status = async (url: string, init: RequestInit = {}) => {
  const res = await fetch(url, { redirect: 'manual', ...init });
  await res.arrayBuffer();
  return res.status;
};

describe('/proxy/:id credentials', () => {
  let h: Harness;
  let ids: string[];
  const signer = (secrets = [OLD], clock = systemClock, ttlSeconds = 3600) =>
    createProxyTokens({ secrets, ttlSeconds, clock });

  const statements: string[] = [];

  beforeAll(async () => {
    h = await startHarness({
      driver: 'cos',
      redis: 'memory',
      env: env([OLD]),
      onQuery: (sql) => statements.push(sql),
    });
    ids = await seed(h, 'alice', 3);
  });
  afterAll(async () => {
    await h?.close();
  });

  it('a valid link redirects in both HEAD and GET', async () => {
    const { redirect, stream } = await proxyLinks(h, ids[0]!);
    expect(await status(redirect)).toBe(302);
    expect(await status(redirect, { method: 'HEAD' })).toBe(302);
    expect(await status(stream)).toBe(200);
  });

  it('no credential is 401', async () => {
    const res = await fetch(`${h.url}/proxy/${ids[0]}`, { redirect: 'manual' });
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toBe('Bearer');
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('UNAUTHENTICATED');
    expect(await status(`${h.url}/proxy/${ids[0]}?t=&mode=stream`)).toBe(401);
  });

  it('a tampered token is 403', async () => {
    const { redirect } = await proxyLinks(h, ids[0]!);
    const t = new URL(redirect).searchParams.get('t')!;
    const mac = t.slice(t.lastIndexOf('.') + 1);
    const flip = (c: string) => (c === 'A' ? 'B' : 'A');
    const variants = [
      `${t.slice(0, -1)}${flip(t.at(-1)!)}`,
      t.replace(mac, `${flip(mac[0]!)}${mac.slice(1)}`),
      t.replace(/^k0\./, 'k9.'),
      `${t}x`,
      t.slice(0, 10),
      'garbage',
    ];
    for (const v of variants) {
      expect(await status(`${h.url}/proxy/${ids[0]}?t=${encodeURIComponent(v)}`), v).toBe(403);
    }
  });

  it('a forged token is refused before any I/O: 403 and not one SQL statement', async () => {
    // An id that was never looked at (so no row is remembered), with a MAC of the right shape
    // made with a key the gateway does not have: the old check looked the row up first.
    const [fresh] = await seed(h, 'alice', 1);
    const forged = signer([{ kid: 'k0', secret: 'not-the-gateways-secret-0' }]).sign(fresh!, 'redirect');
    const unknown = '00000000-0000-4000-8000-00000000beef';
    const forgedUnknown = signer([{ kid: 'k0', secret: 'not-the-gateways-secret-0' }]).sign(
      unknown,
      'redirect',
    );
    statements.length = 0;
    // An existing and a missing image answer the same: no existence oracle.
    expect(await status(`${h.url}/proxy/${fresh}?t=${forged}`)).toBe(403);
    expect(await status(`${h.url}/proxy/${unknown}?t=${forgedUnknown}`)).toBe(403);
    expect(await status(`${h.url}/proxy/${fresh}?t=${forged}&mode=stream`)).toBe(403);
    expect(statements).toEqual([]);
  });

  it('an expired token is 403', async () => {
    const past = new FakeClock(Date.now() - 2 * 3600_000);
    const t = signer([OLD], past, 3600).sign(ids[0]!, 'redirect');
    expect(await status(`${h.url}/proxy/${ids[0]}?t=${t}`)).toBe(403);
    const live = signer([OLD], systemClock, 3600).sign(ids[0]!, 'redirect');
    expect(await status(`${h.url}/proxy/${ids[0]}?t=${live}`)).toBe(302);
  });

  it("another image's token is 403, and so is a link whose mode was changed", async () => {
    const { redirect } = await proxyLinks(h, ids[1]!);
    const t = new URL(redirect).searchParams.get('t')!;
    expect(await status(`${h.url}/proxy/${ids[0]}?t=${t}`)).toBe(403);
    expect(await status(`${h.url}/proxy/${ids[0]}?t=${t}&mode=stream`)).toBe(403);
    // A redirect link does not open the bytes: the mode is part of what the token grants.
    const redirectOnly = signer().sign(ids[0]!, 'redirect');
    expect(await status(`${h.url}/proxy/${ids[0]}?t=${redirectOnly}`)).toBe(302);
    expect(await status(`${h.url}/proxy/${ids[0]}?t=${redirectOnly}&mode=stream`)).toBe(403);
  });

  it('deleting the image revokes its links: 404', async () => {
    const { redirect, stream } = await proxyLinks(h, ids[2]!);
    expect(await status(redirect)).toBe(302);
    expect(await h.container.images.delete({ id: 'alice', isAdmin: false }, ids[2]!)).toBe(true);
    expect(await status(redirect)).toBe(404);
    expect(await status(stream)).toBe(404);
    expect(await status(redirect, { method: 'HEAD' })).toBe(404);
  });

  it('RecentRows: a row deleted elsewhere is looked up again after exactly RECENT_ROW_MS (fake clock)', async () => {
    const clock = new FakeClock();
    const rows = new RecentRows(h.container.imagesRepo, clock);
    const [id] = await seed(h, 'alice', 1);
    expect((await rows.find(id!))?.id).toBe(id);
    // Another node deletes: this one still knows the row for a few seconds, then asks again.
    expect(await h.container.imagesRepo.softDelete('alice', id!, new Date())).not.toBeNull();
    clock.advance(RECENT_ROW_MS - 1);
    expect((await rows.find(id!))?.id).toBe(id);
    clock.advance(1);
    expect(await rows.find(id!)).toBeUndefined();
  });

  it('a burst of hits on images not looked up yet looks each image up once', async () => {
    // 40 images, 5 hits each, all sent at once: before hits shared lookups, every hit that came
    // while its image's row was being looked up sent a statement of its own.
    const fresh = await seed(h, 'alice', 40);
    const links = await Promise.all(fresh.map(async (id) => (await proxyLinks(h, id)).redirect));
    statements.length = 0;
    const answers = await Promise.all(links.flatMap((link) => Array.from({ length: 5 }, () => status(link))));
    expect(answers.every((s) => s === 302)).toBe(true);
    const lookups = statements.filter((sql) => /from "images" where "id" in \(/.test(sql));
    const idsLookedUp = lookups.reduce((n, sql) => n + (sql.match(/\$\d+/g) ?? []).length, 0);
    // One parameter per id (nothing else in the statement is one): each image once. How many
    // statements carry them depends on how the hits spread over turns (33 here; 95 ids without
    // shared lookups); that the misses of one turn share a statement is shown below.
    expect(idsLookedUp).toBe(40);
    // Remembered now: the same burst again sends no statement.
    statements.length = 0;
    await Promise.all(links.map((link) => status(link)));
    expect(statements.filter((sql) => /from "images" where "id" in/.test(sql))).toEqual([]);
  });

  it('the misses of one turn are one statement, on the real repository', async () => {
    const fresh = await seed(h, 'alice', 7);
    const rows = new RecentRows(h.container.imagesRepo, new FakeClock());
    statements.length = 0;
    const found = await Promise.all(
      [...fresh, '00000000-0000-4000-8000-00000000f00d'].map((id) => rows.find(id)),
    );
    expect(found.map((r) => r?.id)).toEqual([...fresh, undefined]);
    const lookups = statements.filter((sql) => /from "images" where "id" in \(/.test(sql));
    expect(lookups).toHaveLength(1);
  });

  it('an unknown image is 404', async () => {
    const id = '00000000-0000-4000-8000-000000000000';
    expect(await status(`${h.url}/proxy/${id}?t=${signer().sign(id, 'redirect')}`)).toBe(404);
  });

  it('malformed ids and modes are 400, other methods 405, and nothing a client sends is a 500', async () => {
    const t = signer().sign(ids[0]!, 'redirect');
    for (const path of [
      '/proxy/',
      '/proxy/123',
      `/proxy/${ids[0]}/x`,
      '/proxy/%E0%A4%A',
      '/proxy/..%2F..%2Fetc',
    ]) {
      expect(await status(`${h.url}${path}?t=${t}`), path).toBe(400);
    }
    expect(await status(`${h.url}/proxy/${ids[0]}?t=${t}&mode=zip`)).toBe(400);
    for (const method of ['POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH']) {
      expect(await status(`${h.url}/proxy/${ids[0]}?t=${t}`, { method }), method).toBe(405);
    }
    const weird: [string, RequestInit][] = [
      [`/proxy/${ids[0]}?t=${'a'.repeat(10_000)}`, {}],
      [`/proxy/${ids[0]}?t=%F0%9F%92%A9`, {}],
      [`/proxy/${ids[0]}?t=${t}&t=other`, {}],
      [`/proxy/${ids[0]}?t=${t}&mode=stream`, { headers: { range: 'bytes=-0' } }],
      [`/proxy/${ids[0]}?t=${t}&mode=stream`, { headers: { range: 'bytes=99999999999999999999-' } }],
      [`/proxy/${ids[0]}?t=${t}&mode=stream`, { headers: { 'if-none-match': '\u00ff"' } }],
      [`/proxy/${ids[0]}?t=${t}&mode=stream`, { headers: { 'if-modified-since': 'yesterday' } }],
      [`/proxy/${ids[0]}`, { headers: { authorization: 'Bearer' } }],
      [`/proxy/${ids[0]}`, { headers: { authorization: 'Basic dXNlcjpwYXNz' } }],
      [`/proxy/${ids[0]}`, { headers: { authorization: `Bearer ${'x'.repeat(5000)}` } }],
    ];
    for (const [path, init] of weird) {
      const s = await status(`${h.url}${path}`, init);
      expect(s, path).toBeLessThan(500);
    }
  });
});

describe('/proxy/:id key rotation', () => {
  let during: Harness;
  let after: Harness;

  beforeAll(async () => {
    during = await startHarness({ driver: 'cos', redis: 'memory', env: env([NEW, OLD]) });
    after = await startHarness({ driver: 'cos', redis: 'memory', env: env([NEW]) });
  });
  afterAll(async () => {
    await during?.close();
    await after?.close();
  });

  it('the previous key id still verifies while configured, and not once removed', async () => {
    const before = createProxyTokens({ secrets: [OLD], ttlSeconds: 3600, clock: systemClock });
    for (const h of [during, after]) {
      const [id] = await seed(h, 'alice', 1);
      const oldToken = before.sign(id!, 'redirect');
      const { redirect } = await proxyLinks(h, id!);
      // The new key signs what proxyUrl hands out now.
      expect(new URL(redirect).searchParams.get('t')!.startsWith('k1.')).toBe(true);
      expect(await status(redirect)).toBe(302);
      expect(await status(`${h.url}/proxy/${id}?t=${oldToken}`)).toBe(h === during ? 302 : 403);
    }
  });
});

/** docs/operations.md: a delete is seen "within 5 s on the others". */
const DOCUMENTED_BOUND_MS = 5000;

// Two real nodes on one PostgreSQL database, one Redis (same key prefix) and one bucket: this
// process's app (node A) and the real entry point as a child process (node B). A link is honoured
// by B, the image is deleted through A's API, and B must stop honouring the link within the
// documented bound: it remembers a row for a few seconds after looking it up, never longer.
describe('/proxy/:id: a delete made by another node', () => {
  let a: Harness;
  let b: GatewayProcess;

  beforeAll(async () => {
    // Both nodes get the same test secrets (support/env.ts authEnv), so each honours the other's links.
    a = await startHarness({ driver: 'cos', redis: testRedisUrl() });
    b = await GatewayProcess.start({
      ...apiNodeEnv(a.fixture!, a.config.databaseUrl!),
      REDIS_URL: testRedisUrl(),
      REDIS_PREFIX: a.config.redisPrefix,
    });
  });
  afterAll(async () => {
    await b?.kill();
    await a?.close();
  });

  it('the other node stops honouring the link within the documented 5 s', async () => {
    const [id] = await seed(a, 'alice', 1);
    const links = await proxyLinks(a, id!);
    const onB = (link: string) => link.replace(a.url, b.url);

    // B honours A's link, and from now on remembers the row (looked up between these two instants).
    const lookedUpBefore = Date.now();
    const honoured = await fetch(onB(links.redirect), { redirect: 'manual' });
    const lookedUpBy = Date.now();
    expect(honoured.status).toBe(302);
    expect((await fetch(honoured.headers.get('location')!)).status).toBe(200);

    const del = await a.gql<{ deleteImage: boolean }>('mutation($id: ID!) { deleteImage(id: $id) }', { id });
    expect(del.errors).toBeUndefined();
    expect(del.data!.deleteImage).toBe(true);
    // The deleting node refuses at once.
    expect(await status(links.redirect)).toBe(404);
    expect(await status(links.stream)).toBe(404);

    // Meanwhile B may still redirect from memory, but only to an object that is gone; once it
    // answers 404 it keeps answering 404.
    const seen: number[] = [];
    while (Date.now() < lookedUpBy + DOCUMENTED_BOUND_MS) {
      const r = await fetch(onB(links.redirect), { redirect: 'manual' });
      await r.arrayBuffer();
      seen.push(r.status);
      if (r.status === 302) expect((await fetch(r.headers.get('location')!)).status).toBe(404);
      else expect(r.status).toBe(404);
      await new Promise((res) => setTimeout(res, 250));
    }
    expect(seen.length).toBeGreaterThan(0);
    // Monotone: some 302s (302 < 404), then only 404s.
    expect(seen).toEqual([...seen].sort((x, y) => x - y));

    // Past the bound (counted from the latest moment B could have looked the row up): every
    // request B receives now must ask the database, which says the image is gone.
    const wait = lookedUpBy + DOCUMENTED_BOUND_MS - Date.now();
    if (wait > 0) await new Promise((res) => setTimeout(res, wait));
    expect(await status(onB(links.redirect))).toBe(404);
    expect(await status(onB(links.redirect), { method: 'HEAD' })).toBe(404);
    expect(await status(onB(links.stream))).toBe(404);
    // (How long B kept answering 302, for the record; the bound is what is asserted.)
    console.log(
      `[proxy] delete on another node: ${seen.filter((s) => s === 302).length} of ${seen.length} requests in the first ${DOCUMENTED_BOUND_MS} ms still redirected (to an object already gone); row looked up ${lookedUpBy - lookedUpBefore} ms`,
    );
  });
});
