import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Harness, startHarness } from '../support/harness.js';
import { errorLogsSince, rawRequest } from '../support/hostile.js';

const QUERY = '{ viewer { id isAdmin } }';
const get = `/graphql?query=${encodeURIComponent(QUERY)}`;
/** The code of an error answer: GraphQL's `errors[0].extensions.code`, or a REST route's `error.code`. */
const codeOf = (body: Buffer) => {
  const j = JSON.parse(body.toString()) as {
    errors?: { extensions?: { code?: string } }[];
    error?: { code?: string };
  };
  return j.errors?.[0]?.extensions?.code ?? j.error?.code;
};

/** Every way a Host reaches the GraphQL routes: a GET, a POST, and the SSE fast path. */
const requests = (host: string, token?: string) => {
  // The CSRF header yoga asks of a GET: a 403 below is the Host check's, not yoga's.
  const auth: Record<string, string> = {
    'x-graphql-yoga-csrf': '1',
    ...(token ? { authorization: `Bearer ${token}` } : {}),
  };
  return [
    { path: get, headers: { host, ...auth } },
    {
      method: 'POST',
      path: '/graphql',
      headers: { host, 'content-type': 'application/json', ...auth },
      body: JSON.stringify({ query: QUERY }),
    },
    {
      method: 'POST',
      path: '/graphql',
      headers: { host, 'content-type': 'application/json', accept: 'text/event-stream', ...auth },
      body: JSON.stringify({ query: 'subscription { signedUrlRefreshed(ids: []) { imageId } }' }),
    },
  ];
};

// yoga builds each request's URL from Host: on an invalid one its server adapter answered 500
// with the error's stack as the body, past the error table and in production too.
describe('a malformed Host header', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ driver: 'local', redis: 'memory', env: { NODE_ENV: 'production' } });
  });
  afterAll(async () => {
    await h?.close();
  });

  it.each(['a b', 'x:99999', '[::1', 'a/b', 'a?b', 'user@host', 'a\\b'])(
    '%s: 400 BAD_USER_INPUT, no stack, nothing logged as an error',
    async (host) => {
      const token = await h.token('alice');
      const from = h.logs.length;
      for (const r of [...requests(host, token), { path: '/healthz', headers: { host } }]) {
        const res = await rawRequest(h.url, r);
        const text = res.body.toString();
        expect(res.status, `${r.method ?? 'GET'} ${r.path}: ${text.slice(0, 200)}`).toBe(400);
        expect(text).not.toMatch(/\bat |node_modules|TypeError/);
        expect(codeOf(res.body)).toBe('BAD_USER_INPUT');
      }
      expect(errorLogsSince(h, from)).toEqual([]);
    },
  );

  it('any well-formed host is served while auth is on (a token decides)', async () => {
    const token = await h.token('alice');
    for (const host of ['gateway.example', 'gateway.example:8443', '10.0.0.7:4000', '[2001:db8::1]:4000']) {
      const res = await rawRequest(h.url, requests(host, token)[0]!);
      expect(res.status, `${host} ${res.body.toString().slice(0, 300)}`).toBe(200);
      expect(JSON.parse(res.body.toString()).data.viewer.id).toBe('alice');
    }
  });
});

// Auth off: every caller is the admin `demo`, and the gateway listens on 127.0.0.1. DNS rebinding
// gets past that address: a page whose name is re-pointed to 127.0.0.1 is same-origin with the
// gateway in the developer's browser, and its requests name its own host.
describe('auth off: only this machine’s names are served', () => {
  let h: Harness;
  let port: string;
  beforeAll(async () => {
    h = await startHarness({ driver: 'local', redis: 'memory', env: { AUTH_JWT_SECRET: '' } });
    port = new URL(h.url).port;
  });
  afterAll(async () => {
    await h?.close();
  });

  it('refuses a request for another host with 403, on every route, and leaks nothing', async () => {
    expect(h.config.auth.disabled).toBe(true);
    for (const host of [`attacker.example:${port}`, 'attacker.example', `192.168.1.20:${port}`]) {
      for (const r of [
        ...requests(host),
        { path: '/healthz', headers: { host } },
        { path: '/', headers: { host } },
      ]) {
        const res = await rawRequest(h.url, r);
        expect(res.status, `${host} ${r.method ?? 'GET'} ${r.path}`).toBe(403);
        expect(res.body.toString()).toContain('Auth is off');
        expect(res.body.toString()).not.toContain('"demo"');
      }
    }
  });

  it('serves localhost, 127.0.0.1, [::1] and PUBLIC_URL’s host, any port', async () => {
    for (const host of [
      `localhost:${port}`,
      'LOCALHOST',
      `localhost.:${port}`,
      `127.0.0.1:${port}`,
      `[::1]:${port}`,
      '127.0.0.1:5173',
    ]) {
      for (const r of requests(host).slice(0, 2)) {
        const res = await rawRequest(h.url, r);
        expect(res.status, `${host} ${r.method ?? 'GET'} ${res.body.toString().slice(0, 300)}`).toBe(200);
        expect(JSON.parse(res.body.toString()).data.viewer).toEqual({ id: 'demo', isAdmin: true });
      }
    }
  });
});
