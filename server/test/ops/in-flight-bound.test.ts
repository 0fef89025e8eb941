import { type ClientRequest, request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Harness, startHarness } from '../support/harness.js';

const PAGE = JSON.stringify({ query: '{ images(first: 5) { edges { node { id } } } }' });

// MAX_REQUESTS_IN_FLIGHT (docs/operations.md, "Overload"): past the bound a GraphQL request is
// refused at once, 503 with Retry-After in GraphQL's shape, instead of queueing behind the work
// the node already has; probes are not counted, and the node serves again as soon as the requests
// it admitted are done.
describe('the in-flight bound', () => {
  let h: Harness;
  let token: string;

  beforeAll(async () => {
    h = await startHarness({ driver: 'local', redis: 'memory', env: { MAX_REQUESTS_IN_FLIGHT: '2' } });
    token = await h.token('alice');
  }, 60_000);
  afterAll(async () => {
    await h?.close();
  });

  const page = () =>
    fetch(`${h.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: PAGE,
    });
  const shed = async () => (await h.container.metrics.requestsShed.get()).values[0]?.value ?? 0;

  /** A page whose body is still on its way (half sent): in flight until `finish`. */
  function slowPage() {
    const { port } = new URL(h.url);
    let req!: ClientRequest;
    const answered = new Promise<{ status: number; body: string }>((resolve, reject) => {
      req = request(
        {
          host: '127.0.0.1',
          port,
          path: '/graphql',
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            'content-length': Buffer.byteLength(PAGE),
            authorization: `Bearer ${token}`,
          },
        },
        (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => {
            body += c;
          });
          res.on('end', () => resolve({ status: res.statusCode!, body }));
        },
      );
      req.on('error', reject);
    });
    req.write(PAGE.slice(0, 10));
    return { answered, finish: () => req.end(PAGE.slice(10)) };
  }

  it('does not count event streams, even those yoga serves itself (a GET): three open, pages still served', async () => {
    const subscription = encodeURIComponent('subscription { signedUrlRefreshed(ids: []) { imageId } }');
    const ac = new AbortController();
    try {
      const streams = await Promise.all(
        [1, 2, 3].map(() =>
          fetch(`${h.url}/graphql?query=${subscription}`, {
            headers: {
              accept: 'text/event-stream',
              'x-graphql-yoga-csrf': '1',
              authorization: `Bearer ${token}`,
            },
            signal: ac.signal,
          }),
        ),
      );
      for (const s of streams) expect(s.headers.get('content-type')).toMatch(/text\/event-stream/);
      const r = await page();
      expect(r.status).toBe(200);
      await r.arrayBuffer();
    } finally {
      ac.abort();
    }
  });

  it('refuses a third page at once while two are in flight, and serves again once they are done', async () => {
    const shedBefore = await shed();
    const held = [slowPage(), slowPage()];
    // Until both are admitted: a page sent now is refused (the node reads the two first).
    let third: Response | undefined;
    for (let i = 0; i < 100 && third?.status !== 503; i++) {
      if (third) await third.arrayBuffer();
      await new Promise((r) => setTimeout(r, 20));
      third = await page();
    }
    expect(third!.status).toBe(503);
    expect(third!.headers.get('retry-after')).toBe('5');
    expect(third!.headers.get('cache-control')).toBe('private, no-store');
    const body = (await third!.json()) as {
      errors: { message: string; extensions: { code: string; retryAfter: number; requestId: string } }[];
    };
    expect(body.errors).toHaveLength(1);
    expect(body.errors[0]).toMatchObject({
      message: 'This node is busy; retry shortly',
      extensions: { code: 'SERVICE_UNAVAILABLE', retryAfter: 5 },
    });
    expect(body.errors[0]!.extensions.requestId).toBe(third!.headers.get('x-request-id'));
    expect(await shed()).toBeGreaterThan(shedBefore);
    // Readiness is not a GraphQL request: the busy node stays ready.
    expect((await fetch(`${h.url}/readyz`)).status).toBe(200);

    for (const p of held) p.finish();
    for (const r of await Promise.all(held.map((p) => p.answered))) {
      expect(r.status).toBe(200);
      expect((JSON.parse(r.body) as { errors?: unknown }).errors).toBeUndefined();
    }
    const after = await page();
    expect(after.status).toBe(200);
    await after.arrayBuffer();
  });
});
