import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SignedUrlEvent } from '../../src/events/event-bus.js';
import { testRedisUrl } from '../support/env.js';
import { type Harness, startHarness } from '../support/harness.js';
import { seed } from '../support/seed.js';
import { postSubscription, readSse } from '../support/sse.js';

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
    expect(second.headers.get('x-request-id')).toBeTruthy();

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
    const reader = res.body!.getReader();
    let text = '';
    // NODE_ENV=test: a ping at once, then every 300 ms (as yoga).
    const deadline = Date.now() + 2000;
    while ((text.match(/:\n\n/g) ?? []).length < 3 && Date.now() < deadline) {
      const { value } = await reader.read();
      text += new TextDecoder().decode(value);
    }
    expect((text.match(/:\n\n/g) ?? []).length).toBeGreaterThanOrEqual(3);
    await reader.cancel();
    await waitUntil(async () => (await held(h)) === 0);
  });

  it('a bad token, bad variables or an unknown body are answered by yoga, as yoga answers them', async () => {
    // Known to the fast path from here on.
    await postSubscription(h.url, SUB, { ids: [ids[2]] }, token).then((r) => r.body?.cancel());
    const known = SUB;
    // The same operation spelled otherwise: a body the fast path has not seen, so yoga's own.
    const other = `${SUB} `;
    const before = await opened(h);
    const cases: [Record<string, unknown>, string | undefined][] = [
      [{ ids: [ids[2]] }, 'not-a-jwt'],
      [{ ids: null }, token],
      [{ ids: [ids[2]], extra: { deep: [1, 2] } }, undefined],
      [{}, token],
    ];
    for (const [variables, t] of cases) {
      const viaFast = await answer(await postSubscription(h.url, known, variables, t));
      const viaYoga = await answer(await postSubscription(h.url, other, variables, t));
      expect(viaFast, JSON.stringify(variables)).toEqual(viaYoga);
      expect(viaFast.body).toMatch(/"errors"/);
    }
    expect((await opened(h)).fast).toBe(before.fast);
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
