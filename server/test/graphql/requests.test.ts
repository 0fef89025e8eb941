import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Harness, startHarness } from '../support/harness.js';
import { signToken } from '../support/jwt.js';
import { answer, postGraphql } from '../support/raw-graphql.js';

describe('GraphQL over HTTP: request errors, CSRF, CORS (the development defaults)', () => {
  let h: Harness;

  beforeAll(async () => {
    h = await startHarness({ driver: 'local', redis: 'memory' });
  });
  afterAll(async () => {
    await h?.close();
  });

  it('no GraphQL answer may be stored by a shared cache or given to another caller: data, errors, 401s, GET and SSE', async () => {
    const authorization = `Bearer ${await signToken('alice')}`;
    const query = encodeURIComponent('{ viewer { id } }');
    const csrf = { 'x-graphql-yoga-csrf': '1' };
    const answers = {
      'GET with a token': await fetch(`${h.url}/graphql?query=${query}`, {
        headers: { ...csrf, authorization },
      }),
      'GET without a token (401)': await fetch(`${h.url}/graphql?query=${query}`, { headers: csrf }),
      'GET of a broken document (400)': await fetch(`${h.url}/graphql?query=%7B`, {
        headers: { ...csrf, authorization },
      }),
      'POST with a token': await fetch(`${h.url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization },
        body: JSON.stringify({ query: '{ viewer { id } }' }),
      }),
      'GET without the CSRF header (403)': await fetch(`${h.url}/graphql?query=${query}`),
    };
    for (const [what, res] of Object.entries(answers)) {
      expect(res.headers.get('cache-control'), what).toBe('private, no-store');
      expect(res.headers.get('vary'), what).toMatch(/\bAuthorization\b/i);
      await res.arrayBuffer();
    }
    expect(answers['GET with a token'].status).toBe(200);
    expect(answers['GET without a token (401)'].status).toBe(401);
    // A stream is no-cache (yoga's and the SSE fast path's header) and varies by the token too.
    const ac = new AbortController();
    const sse = await fetch(
      `${h.url}/graphql?query=${encodeURIComponent('subscription { signedUrlRefreshed(ids: []) { imageId } }')}`,
      {
        headers: { ...csrf, authorization, accept: 'text/event-stream' },
        signal: ac.signal,
      },
    );
    expect(sse.headers.get('content-type')).toMatch(/text\/event-stream/);
    expect(sse.headers.get('cache-control')).toMatch(/no-cache|no-store/);
    expect(sse.headers.get('vary')).toMatch(/\bAuthorization\b/i);
    ac.abort();
  });

  it('yoga’s own request errors carry codes of the error table', async () => {
    const invalid = await postGraphql(h, '{"query": ', {});
    expect(invalid.status).toBe(400);
    expect(invalid.codes).toEqual(['BAD_USER_INPUT']);
    const form = await postGraphql(h, 'query=%7Bviewer%7Bid%7D%7D', {
      'content-type': 'application/x-www-form-urlencoded',
    });
    // CSRF prevention: a simple cross-site form post without the header is refused, and the
    // refusal names the header a non-browser client (curl) should send.
    expect(form.status).toBe(403);
    expect(form.codes).toEqual(['FORBIDDEN']);
    expect(form.body!.errors![0]!.message).toContain('x-graphql-yoga-csrf: 1');
    const get = `${h.url}/graphql?query=${encodeURIComponent('{ viewer { id } }')}`;
    const bare = await answer(await fetch(get));
    expect(bare.status).toBe(403);
    expect(bare.codes).toEqual(['FORBIDDEN']);
    expect(bare.body!.errors![0]!.message).toContain('x-graphql-yoga-csrf: 1');
    const authorization = `Bearer ${await signToken('alice')}`;
    const told = await answer(await fetch(get, { headers: { 'x-graphql-yoga-csrf': '1', authorization } }));
    expect(told.status).toBe(200);
    expect(told.body!.data).toEqual({ viewer: { id: 'alice' } });
    const put = await answer(
      await fetch(`${h.url}/graphql`, {
        method: 'PUT',
        headers: { 'content-type': 'application/json' },
        body: '{}',
      }),
    );
    expect(put.status).toBe(405);
    expect(put.codes).toEqual(['BAD_USER_INPUT']);
  });

  it('a path under /graphql/ is the table NOT_FOUND, not an empty 404 of yoga', async () => {
    for (const method of ['GET', 'POST']) {
      const res = await fetch(`${h.url}/graphql/x`, {
        method,
        headers: { 'content-type': 'application/json', 'x-graphql-yoga-csrf': '1' },
        ...(method === 'POST' ? { body: '{"query":"{ viewer { id } }"}' } : {}),
      });
      expect(res.status, method).toBe(404);
      const body = (await res.json()) as { error: { code: string; message: string } };
      expect(body.error.code, method).toBe('NOT_FOUND');
      expect(body.error.message, method).toContain('/graphql');
    }
    // The endpoint with a trailing slash is the endpoint, as yoga reads it.
    const slash = await fetch(`${h.url}/graphql/`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        authorization: `Bearer ${await signToken('alice')}`,
      },
      body: '{"query":"{ viewer { id } }"}',
    });
    expect(slash.status).toBe(200);
    expect(await slash.json()).toEqual({ data: { viewer: { id: 'alice' } } });
  });

  it('a refused body is never echoed back (a short excerpt at most)', async () => {
    const secretish = `{"query": "{ viewer { id } }", "variables": {"x": "${'s'.repeat(200_000)}"`;
    const r = await postGraphql(h, secretish, {});
    expect(r.status).toBe(400);
    expect(r.codes).toEqual(['BAD_USER_INPUT']);
    expect(r.text.length).toBeLessThan(2000);
    expect(r.text).not.toContain('s'.repeat(200));
  });

  it('no CORS allow-list: a cross-origin caller gets no CORS headers (same origin only)', async () => {
    const res = await fetch(`${h.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', origin: 'https://evil.example' },
      body: JSON.stringify({ query: '{ __typename }' }),
    });
    expect(res.headers.get('access-control-allow-origin')).toBeNull();
    expect(res.headers.get('access-control-allow-credentials')).toBeNull();
    const pre = await fetch(`${h.url}/graphql`, {
      method: 'OPTIONS',
      headers: {
        origin: 'https://evil.example',
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'authorization, content-type',
      },
    });
    expect(pre.headers.get('access-control-allow-origin')).toBeNull();
    expect(pre.headers.get('access-control-allow-headers')).toBeNull();
  });
});

// With an allow-list the same request gets CORS headers for a listed Origin and none for another:
// a browser or shared cache that keys the answer by URL alone would hand one origin's answer to
// the other, so every answer says it varies by Origin.
describe('GraphQL over HTTP: a CORS allow-list', () => {
  const APP = 'https://app.example';
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ driver: 'local', redis: 'memory', env: { CORS_ORIGINS: APP } });
  });
  afterAll(async () => {
    await h?.close();
  });

  it("a listed origin's preflight allows the headers common clients add (Apollo's client name, trace context)", async () => {
    const asked = [
      'authorization',
      'content-type',
      'x-graphql-yoga-csrf',
      'apollographql-client-name',
      'apollographql-client-version',
      'traceparent',
      'tracestate',
      'baggage',
      'x-request-id',
    ];
    const pre = await fetch(`${h.url}/graphql`, {
      method: 'OPTIONS',
      headers: {
        origin: APP,
        'access-control-request-method': 'POST',
        'access-control-request-headers': asked.join(', '),
      },
    });
    expect(pre.headers.get('access-control-allow-origin')).toBe(APP);
    const allowed = (pre.headers.get('access-control-allow-headers') ?? '').toLowerCase().split(/\s*,\s*/);
    for (const header of asked) expect(allowed, header).toContain(header);
    expect(pre.headers.get('access-control-allow-credentials')).not.toBe('true');
  });

  it('answers a listed origin with its CORS headers, another without, and both with Vary: Origin', async () => {
    const token = await h.token('alice');
    const ask = (origin: string | undefined, method = 'POST') =>
      fetch(
        `${h.url}/graphql${method === 'GET' ? `?query=${encodeURIComponent('{ viewer { id } }')}` : ''}`,
        {
          method,
          headers: {
            authorization: `Bearer ${token}`,
            'x-graphql-yoga-csrf': '1',
            ...(method === 'POST' ? { 'content-type': 'application/json' } : {}),
            ...(origin ? { origin } : {}),
          },
          ...(method === 'POST' ? { body: JSON.stringify({ query: '{ viewer { id } }' }) } : {}),
        },
      );
    for (const method of ['POST', 'GET']) {
      const listed = await ask(APP, method);
      expect(listed.status).toBe(200);
      expect(listed.headers.get('access-control-allow-origin')).toBe(APP);
      expect(listed.headers.get('vary')).toMatch(/\bOrigin\b/i);
      for (const origin of ['https://evil.example', undefined]) {
        const other = await ask(origin, method);
        expect(other.status).toBe(200);
        expect(other.headers.get('access-control-allow-origin')).toBeNull();
        expect(other.headers.get('vary'), `${method} ${origin}`).toMatch(/\bOrigin\b/i);
      }
    }
  });
});
