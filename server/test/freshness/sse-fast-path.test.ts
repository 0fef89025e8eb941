import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SignedUrlEvent } from '../../src/events/event-bus.js';
import { testRedisUrl } from '../support/env.js';
import { type Harness, startHarness } from '../support/harness.js';
import { seed } from '../support/seed.js';
import { postSseBody, postSubscription, readSse } from '../support/sse.js';

// The SSE fast path (server/src/http/sse-subscriptions.ts): a subscription body yoga has opened
// once is opened again without yoga. These tests hold it to yoga's answers, byte for byte.

const SUB =
  'subscription($ids: [ID!]!) { signedUrlRefreshed(ids: $ids) { imageId signedUrl { url expiresAt } } }';

const BASE = Date.UTC(2030, 0, 1);
const event = (imageId: string, n: number): SignedUrlEvent => ({
  imageId,
  signedUrl: {
    url: `https://bucket.test/${imageId}?n=${n}`,
    expiresAt: BASE + n * 1000,
    refreshAt: BASE + n * 1000 - 900_000,
    cached: false,
  },
});

async function opened(h: Harness): Promise<{ fast: number; yoga: number }> {
  const values = (await h.container.metrics.sseOpened.get()).values;
  const of = (path: string) => values.find((v) => v.labels.path === path)?.value ?? 0;
  return { fast: of('fast'), yoga: of('yoga') };
}

async function held(h: Harness): Promise<number> {
  return (await h.container.metrics.sseSubscribers.get()).values[0]?.value ?? 0;
}

async function waitUntil(check: () => Promise<boolean>, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** What an SSE request was answered, request ids left out (every answer has its own). */
async function answer(res: Response): Promise<{ status: number; type: string | null; body: string }> {
  const body = (await res.text()).replace(/"requestId":"[^"]*"/g, '"requestId":"…"');
  return { status: res.status, type: res.headers.get('content-type'), body };
}

const SSE_HEADERS = ['content-type', 'cache-control', 'connection', 'content-encoding'];

/**
 * A subscription request that yoga's own node adapter serves: `application/json;charset=utf-8`
 * (no space) is JSON to yoga but not a header the fast path takes, so the same body is answered
 * without it.
 */
const viaYoga = (url: string, body: unknown, token?: string) =>
  postSseBody(url, body, { token, contentType: 'application/json;charset=utf-8' });

/** The same request as the fast path takes it. */
const viaFastPath = (url: string, body: unknown, token?: string) => postSseBody(url, body, { token });

/** Reads a stream until `enough` holds over its text, or `ms` passed. */
async function readUntil(res: Response, enough: (text: string) => boolean, ms: number): Promise<string> {
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let text = '';
  const deadline = Date.now() + ms;
  while (!enough(text) && Date.now() < deadline) {
    const timeout = new Promise<undefined>((r) => setTimeout(() => r(undefined), deadline - Date.now()));
    const chunk = await Promise.race([reader.read().then((c) => c.value), timeout]);
    if (chunk) text += decoder.decode(chunk, { stream: true });
  }
  await reader.cancel().catch(() => {});
  return text;
}

describe('SSE fast path: what yoga opened once opens without yoga, answering the same', () => {
  let h: Harness;
  let ids: string[];
  let token: string;

  beforeAll(async () => {
    h = await startHarness({ driver: 'local', redis: testRedisUrl() });
    ids = await seed(h, 'alice', 3);
    token = await h.token('alice');
  });
  afterAll(async () => {
    await h?.close();
  });

  it('the second open of a body takes the fast path, with yoga’s headers and events', async () => {
    const before = await opened(h);
    const first = await postSubscription(h.url, SUB, { ids: [ids[0]] }, token);
    expect(await opened(h)).toEqual({ ...before, yoga: before.yoga + 1 });
    const second = await postSubscription(h.url, SUB, { ids: [ids[0]] }, token);
    expect(await opened(h)).toEqual({ fast: before.fast + 1, yoga: before.yoga + 1 });
    for (const name of SSE_HEADERS) expect(second.headers.get(name), name).toBe(first.headers.get(name));

    const a = readSse(first, 5000);
    const b = readSse(second, 5000);
    await waitUntil(async () => (await held(h)) === 2);
    await h.container.events.publish([event(ids[0]!, 1)]);
    await waitUntil(async () => a.events.length > 0 && b.events.length > 0);
    expect(b.events[0]).toEqual(a.events[0]);
    expect(b.events[0]!.event).toBe('next');
    expect(JSON.parse(b.events[0]!.data)).toEqual({
      data: {
        signedUrlRefreshed: {
          imageId: ids[0],
          signedUrl: { url: event(ids[0]!, 1).signedUrl.url, expiresAt: new Date(BASE + 1000).toISOString() },
        },
      },
    });
    // The client going away ends the subscription on either path.
    a.cancel();
    b.cancel();
    await waitUntil(async () => (await held(h)) === 0);
  });

  it('keeps the connection alive with yoga’s pings', async () => {
    await postSubscription(h.url, SUB, { ids: [ids[1]] }, token).then((r) => r.body?.cancel());
    await waitUntil(async () => (await held(h)) === 0);
    const before = await opened(h);
    const res = await postSubscription(h.url, SUB, { ids: [ids[1]] }, token);
    expect((await opened(h)).fast).toBe(before.fast + 1);
    // NODE_ENV=test: a ping at once, then every 300 ms (as yoga).
    const pings = (t: string) => (t.match(/:\n\n/g) ?? []).length;
    const text = await readUntil(res, (t) => pings(t) >= 3, 3000);
    expect(pings(text)).toBeGreaterThanOrEqual(3);
    await waitUntil(async () => (await held(h)) === 0);
  });

  it('a bad token, bad variables, JSON nested too deep or another body are answered as yoga answers them', async () => {
    // Known to the fast path from here on.
    await postSubscription(h.url, SUB, { ids: [ids[2]] }, token).then((r) => r.body?.cancel());
    let deep: unknown = 1;
    for (let i = 0; i < 100; i++) deep = [deep];
    const before = await opened(h);
    const cases: [string, Record<string, unknown>, string | undefined][] = [
      ['a token that is no JWT', { query: SUB, variables: { ids: [ids[2]] } }, 'not-a-jwt'],
      ['no token', { query: SUB, variables: { ids: [ids[2]] } }, undefined],
      ['a null list', { query: SUB, variables: { ids: null } }, token],
      ['no variables', { query: SUB }, token],
      ['unused variables nested 100 deep', { query: SUB, variables: { ids: [ids[2]], junk: deep } }, token],
      [
        'extensions nested 100 deep',
        { query: SUB, variables: { ids: [ids[2]] }, extensions: { deep } },
        token,
      ],
      ['another operation name', { query: SUB, operationName: 'Other', variables: { ids: [ids[2]] } }, token],
    ];
    for (const [what, body, t] of cases) {
      const fast = await answer(await viaFastPath(h.url, body, t));
      const yoga = await answer(await viaYoga(h.url, body, t));
      expect(fast, what).toEqual(yoga);
      expect(fast.body, what).toMatch(/"errors"/);
    }
    expect((await opened(h)).fast, 'none of them opened on the fast path').toBe(before.fast);
    await waitUntil(async () => (await held(h)) === 0);
  });

  it('an event that fails to resolve carries the same masked errors on both paths', async () => {
    await postSubscription(h.url, SUB, { ids: [ids[0]] }, token).then((r) => r.body?.cancel());
    await waitUntil(async () => (await held(h)) === 0);
    const before = await opened(h);
    const a = readSse(await viaYoga(h.url, { query: SUB, variables: { ids: [ids[0]] } }, token), 5000);
    const b = readSse(await viaFastPath(h.url, { query: SUB, variables: { ids: [ids[0]] } }, token), 5000);
    expect(await opened(h)).toEqual({ fast: before.fast + 1, yoga: before.yoga + 1 });
    await waitUntil(async () => (await held(h)) === 2);
    // An event whose expiry is no date: the DateTime field fails to serialise in both.
    const broken = event(ids[0]!, 2);
    await h.container.events.publish([{ ...broken, signedUrl: { ...broken.signedUrl, expiresAt: 1e20 } }]);
    await waitUntil(async () => a.events.length > 0 && b.events.length > 0);
    expect(b.events[0]).toEqual(a.events[0]);
    const payload = JSON.parse(b.events[0]!.data) as { errors?: { message: string }[] };
    expect(payload.errors?.length, b.events[0]!.data).toBe(1);
    a.cancel();
    b.cancel();
    await waitUntil(async () => (await held(h)) === 0);
  });
});

describe('SSE fast path: shutdown and CORS', () => {
  let h: Harness;
  let ids: string[];
  const APP = 'https://app.example';

  beforeAll(async () => {
    h = await startHarness({ driver: 'local', redis: 'memory', env: { CORS_ORIGINS: APP } });
    ids = await seed(h, 'alice', 2);
  });
  afterAll(async () => {
    await h?.close();
  });

  it('a request with an Origin goes to yoga, which writes the CORS headers; one without takes the fast path', async () => {
    const token = await h.token('alice');
    const withOrigin = () =>
      fetch(`${h.url}/graphql`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          accept: 'text/event-stream',
          authorization: `Bearer ${token}`,
          origin: APP,
        },
        body: JSON.stringify({ query: SUB, variables: { ids: [ids[0]] } }),
      });
    const before = await opened(h);
    for (const res of [await withOrigin(), await withOrigin()]) {
      expect(res.headers.get('access-control-allow-origin')).toBe(APP);
      await res.body?.cancel();
    }
    expect(await opened(h)).toEqual({ ...before, yoga: before.yoga + 2 });
    const plain = await postSubscription(h.url, SUB, { ids: [ids[0]] }, token);
    await plain.body?.cancel();
    const plainAgain = await postSubscription(h.url, SUB, { ids: [ids[0]] }, token);
    await plainAgain.body?.cancel();
    expect((await opened(h)).fast).toBe(before.fast + 1);
  });

  it('draining completes the fast path’s streams cleanly', async () => {
    const token = await h.token('alice');
    await postSubscription(h.url, SUB, { ids: [ids[1]] }, token).then((r) => r.body?.cancel());
    await waitUntil(async () => (await held(h)) === 0);
    const before = await opened(h);
    const res = await postSubscription(h.url, SUB, { ids: [ids[1]] }, token);
    expect((await opened(h)).fast).toBe(before.fast + 1);
    const read = readSse(res, 5000);
    await waitUntil(async () => (await held(h)) === 1);
    h.app.drain();
    const done = await read.done;
    expect(done.ended).toBe(true);
    expect(done.events.at(-1)).toEqual({ event: 'complete', data: '' });
    await waitUntil(async () => (await held(h)) === 0);
  });
});
