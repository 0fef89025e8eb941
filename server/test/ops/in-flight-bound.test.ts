import { type ClientRequest, request } from 'node:http';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Harness, startHarness } from '../support/harness.js';

const PAGE = JSON.stringify({ query: '{ images(first: 5) { edges { node { id } } } }' });

// MAX_REQUESTS_IN_FLIGHT (docs/operations.md, "Overload"): past the bound a GraphQL operation is
// refused at once, 503 with Retry-After in GraphQL's shape, instead of queueing behind the work
// the node already has. Counted from a read body until yoga has the response: a body trickled in,
// an event stream and a probe hold no slot, and the node serves again once its operations are done.
describe('the in-flight bound', () => {
  let h: Harness;
  let token: string;

  beforeAll(async () => {
    // An api node runs no background jobs: none of them takes a lock on images beside the test's.
    h = await startHarness({
      driver: 'local',
      redis: 'memory',
      env: { MAX_REQUESTS_IN_FLIGHT: '2', SIGNET_ROLE: 'api' },
    });
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
  /** An operation that needs no database: answered at once when admitted. */
  const viewer = () =>
    fetch(`${h.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ query: '{ viewer { id } }' }),
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

  it('holds no slot for a body still on its way: two trickling in, a page is served', async () => {
    const slow = [slowPage(), slowPage()];
    const r = await page();
    expect(r.status).toBe(200);
    await r.arrayBuffer();
    for (const p of slow) p.finish();
    for (const a of await Promise.all(slow.map((p) => p.answered))) expect(a.status).toBe(200);
  });

  it('refuses a third operation at once while two wait on the database, and serves again once they are done', async () => {
    const shedBefore = await shed();
    const lock = new pg.Client({ connectionString: h.config.databaseUrl });
    await lock.connect();
    await lock.query('begin');
    await lock.query('lock table images in access exclusive mode');
    let held: Promise<Response>[] = [];
    try {
      held = [page(), page()];
      // Until both are admitted: an operation sent now is refused.
      let third: Response | undefined;
      for (let i = 0; i < 100 && third?.status !== 503; i++) {
        if (third) await third.arrayBuffer();
        await new Promise((r) => setTimeout(r, 20));
        third = await viewer();
      }
      expect(third!.status).toBe(503);
      expect(third!.headers.get('retry-after')).toBe('5');
      expect(third!.headers.get('cache-control')).toBe('private, no-store');
      const body = (await third!.json()) as {
        errors: { message: string; extensions: { code: string; retryAfter: number } }[];
      };
      expect(body.errors).toHaveLength(1);
      expect(body.errors[0]).toMatchObject({
        message: 'This node is busy; retry shortly',
        extensions: { code: 'SERVICE_UNAVAILABLE', retryAfter: 5 },
      });
      expect(await shed()).toBeGreaterThan(shedBefore);
      // Readiness is not a GraphQL operation: the busy node stays ready.
      expect((await fetch(`${h.url}/readyz`)).status).toBe(200);
    } finally {
      await lock.query('rollback');
      await lock.end();
    }
    for (const r of await Promise.all(held)) {
      expect(r.status).toBe(200);
      expect(((await r.json()) as { errors?: unknown }).errors).toBeUndefined();
    }
    const after = await viewer();
    expect(after.status).toBe(200);
    await after.arrayBuffer();
  });
});
