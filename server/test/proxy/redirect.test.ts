import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeClock } from '../../src/clock.js';
import { WindowGrid } from '../../src/urls/window-grid.js';
import { testRedisUrl } from '../support/env.js';
import { type Harness, startHarness } from '../support/harness.js';
import { counterValue, proxyLinks, waitFor } from '../support/proxy.js';
import { seed } from '../support/seed.js';

function maxAgeOf(res: Response): number {
  const m = /^private, max-age=(\d+)$/.exec(res.headers.get('cache-control') ?? '');
  if (!m) throw new Error(`unexpected cache-control: ${res.headers.get('cache-control')}`);
  return Number(m[1]);
}

// Redirect mode against the real things: PostgreSQL, Redis, the COS SDK and the fixture, with a
// fake clock shared by the gateway and the fixture so "an hour later" takes no time.
describe('/proxy/:id redirect mode', () => {
  const clock = new FakeClock(Date.now());
  let h: Harness;
  let ids: string[];

  beforeAll(async () => {
    h = await startHarness({ driver: 'cos', redis: testRedisUrl(), clock });
    ids = await seed(h, 'alice', 3);
    await seed(h, 'bob', 1);
  });
  afterAll(async () => {
    await h?.close();
  });

  const signatures = () => counterValue(h.container.metrics.signatures);

  it('Image.proxyUrl is a stable capability link on PUBLIC_URL', async () => {
    const a = await proxyLinks(h, ids[0]!);
    expect(a.redirect).toMatch(new RegExp(`^${h.url}/proxy/${ids[0]}\\?t=[A-Za-z0-9_.-]+$`));
    // The stream link carries a token of its own: the mode is part of what a token grants.
    expect(a.stream).toMatch(new RegExp(`^${h.url}/proxy/${ids[0]}\\?t=[A-Za-z0-9_.-]+&mode=stream$`));
    expect(new URL(a.stream).searchParams.get('t')).not.toBe(new URL(a.redirect).searchParams.get('t'));
    const b = await proxyLinks(h, ids[0]!);
    expect(b.redirect).toBe(a.redirect);
  });

  it('answers 302 to a URL that fetches the object, cached no longer than the URL lives', async () => {
    const { redirect } = await proxyLinks(h, ids[0]!);
    const res = await fetch(redirect, { redirect: 'manual' });
    expect(res.status).toBe(302);
    expect(res.headers.get('referrer-policy')).toBe('no-referrer');
    const location = res.headers.get('location')!;
    const expires = Number(new URL(location).searchParams.get('q-sign-time')!.split(';')[1]) * 1000;
    const maxAge = maxAgeOf(res);
    const remaining = (expires - clock.now()) / 1000;
    expect(maxAge).toBeGreaterThan(0);
    expect(maxAge).toBeLessThanOrEqual(remaining - 60);

    const obj = await fetch(location);
    expect(obj.status).toBe(200);
    const body = Buffer.from(await obj.arrayBuffer());
    const key = new URL(location).pathname.slice(1);
    expect(body.equals(h.fixture!.objects.get(decodeURIComponent(key))!.body)).toBe(true);
  });

  it('repeated hits take the cache path and sign nothing', async () => {
    const { redirect } = await proxyLinks(h, ids[1]!);
    const first = await fetch(redirect, { redirect: 'manual' });
    expect(first.status).toBe(302);
    const signed = await signatures();
    const locations = new Set<string>();
    for (let i = 0; i < 10; i++) {
      const r = await fetch(redirect, { redirect: 'manual' });
      expect(r.status).toBe(302);
      locations.add(r.headers.get('location')!);
    }
    expect(await signatures()).toBe(signed);
    expect(locations).toEqual(new Set([first.headers.get('location')]));
  });

  it("points at the step's URL until the step ends, max-age inside its life; then at the next step's", async () => {
    // From the middle of the image's step: a first hit in its last seconds would rightly get a
    // max-age of less than REFRESH_AHEAD (the wall clock decided that, ~1 run in 200).
    const grid = new WindowGrid(h.config);
    const nowS = Math.floor(clock.now() / 1000);
    let middle = grid.stepStart(ids[2]!, nowS) + grid.stepSeconds / 2;
    if (middle < nowS) middle += grid.stepSeconds; // forward only
    clock.set(middle * 1000);
    const { redirect } = await proxyLinks(h, ids[2]!);
    const first = await fetch(redirect, { redirect: 'manual' });
    const fullAge = maxAgeOf(first);
    expect(fullAge).toBeGreaterThan(h.config.refreshAheadSeconds);
    const signed = await signatures();
    const expiresOf = (res: Response) =>
      Number(new URL(res.headers.get('location')!).searchParams.get('q-sign-time')!.split(';')[1]) * 1000;
    // The step ends REFRESH_AHEAD before its URL expires.
    const stepEnd = expiresOf(first) - h.config.refreshAheadSeconds * 1000;

    // A second before the step ends: the same URL, with a max-age inside what it has left.
    clock.set(stepEnd - 1000);
    const near = await fetch(redirect, { redirect: 'manual' });
    expect(near.headers.get('location')).toBe(first.headers.get('location'));
    expect(maxAgeOf(near)).toBeLessThanOrEqual(h.config.refreshAheadSeconds + 1 - 60);
    expect(maxAgeOf(near)).toBeLessThan(fullAge);
    expect(await signatures()).toBe(signed);
    // The cached redirect dies before the URL does: following it at the end of max-age works.
    clock.advance(maxAgeOf(near) * 1000);
    expect((await fetch(near.headers.get('location')!)).status).toBe(200);

    // The next step: its URL, signed once, with a max-age longer than a step's lead again.
    const renewed = await fetch(redirect, { redirect: 'manual' });
    expect(renewed.headers.get('location')).not.toBe(first.headers.get('location'));
    expect(expiresOf(renewed)).toBe(
      expiresOf(first) + (h.config.urlTtlSeconds - h.config.refreshAheadSeconds) * 1000,
    );
    expect(maxAgeOf(renewed)).toBeGreaterThan(h.config.refreshAheadSeconds);
    expect(await signatures()).toBe(signed + 1);
    expect((await fetch(renewed.headers.get('location')!)).status).toBe(200);
  });

  it('HEAD answers like GET, without a body', async () => {
    const { redirect } = await proxyLinks(h, ids[0]!);
    const get = await fetch(redirect, { redirect: 'manual' });
    const head = await fetch(redirect, { method: 'HEAD', redirect: 'manual' });
    expect(head.status).toBe(302);
    expect(head.headers.get('location')).toBe(get.headers.get('location'));
    expect(head.headers.get('cache-control')).toBe(get.headers.get('cache-control'));
    expect((await head.arrayBuffer()).byteLength).toBe(0);
  });

  it('accepts the owner’s bearer token instead of a link; another user sees a missing image', async () => {
    const path = `${h.url}/proxy/${ids[0]}`;
    const own = await fetch(path, {
      redirect: 'manual',
      headers: { authorization: `Bearer ${await h.token('alice')}` },
    });
    expect(own.status).toBe(302);
    expect(own.headers.get('vary')).toBe('Authorization');
    const other = await fetch(path, {
      redirect: 'manual',
      headers: { authorization: `Bearer ${await h.token('bob')}` },
    });
    expect(other.status).toBe(404);
    const bad = await fetch(path, { redirect: 'manual', headers: { authorization: 'Bearer not.a.jwt' } });
    expect(bad.status).toBe(401);
  });

  it('counts responses by mode and status', async () => {
    // This test's own requests, counted from whatever the counters held before. (Redirect mode
    // only: another test here moves the shared fake clock, and the COS SDK signs its origin
    // requests for stream mode with the real one.)
    const expected = [
      ['redirect', '302', 3],
      ['redirect', '404', 1],
      ['redirect', '401', 1],
      ['invalid', '400', 1],
    ] as const;
    const counts = async () => {
      const text = await (await fetch(`${h.url}/metrics`)).text();
      return expected.map(([mode, status]) => {
        const name = `signet_proxy_responses_total{mode="${mode}",status="${status}"} `;
        const line = text.split('\n').find((l) => l.startsWith(name));
        return line === undefined ? 0 : Number(line.slice(name.length));
      });
    };
    const before = await counts();
    const { redirect } = await proxyLinks(h, ids[0]!);
    for (let i = 0; i < 3; i++) expect((await fetch(redirect, { redirect: 'manual' })).status).toBe(302);
    const path = `${h.url}/proxy/${ids[0]}`;
    const bobs = await fetch(path, {
      redirect: 'manual',
      headers: { authorization: `Bearer ${await h.token('bob')}` },
    });
    expect(bobs.status).toBe(404);
    expect((await fetch(path, { redirect: 'manual' })).status).toBe(401);
    expect((await fetch(`${redirect}&mode=zip`, { redirect: 'manual' })).status).toBe(400);
    const want = expected.map(([, , n]) => n);
    const delta = async () => (await counts()).map((n, i) => n - before[i]!);
    // Counted as each response closes: wait for them, then exactly these, nothing more.
    await waitFor(async () => (await delta()).every((d, i) => d >= want[i]!));
    expect(await delta()).toEqual(want);
  });
});
