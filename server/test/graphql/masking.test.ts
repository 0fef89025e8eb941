import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { testRedisUrl } from '../support/env.js';
import { type Harness, startHarness } from '../support/harness.js';
import { waitFor } from '../support/proxy.js';
import { gqlAuthorized } from '../support/raw-graphql.js';
import { seed } from '../support/seed.js';
import { postSseBody, readSse } from '../support/sse.js';

const SUB_PRESET =
  'subscription($ids: [ID!]!, $preset: String) { signedUrlRefreshed(ids: $ids, preset: $preset) { imageId srcset } }';

const PAGE =
  'query($first: Int, $after: String) { images(first: $first, after: $after) { totalCount edges { node { id } } pageInfo { hasNextPage endCursor } } }';

// PostgreSQL + the shared Redis (each harness has its own key prefix) + the local driver.
describe('GraphQL masking', () => {
  let h: Harness;

  beforeAll(async () => {
    h = await startHarness({ driver: 'local', redis: testRedisUrl(), env: { URL_TTL_SECONDS: '3600' } });
    await seed(h, 'alice', 12);
    await seed(h, 'bob', 3);
  });
  afterAll(async () => {
    await h?.close();
  });

  describe('an unexpected error', () => {
    it('is masked as INTERNAL_SERVER_ERROR with a request id, leaks nothing, and is logged', async () => {
      // Not a connection error (those are SERVICE_UNAVAILABLE): a bug-shaped failure with secrets in it.
      const detail = 'invariant broken in secret_table at db-internal.corp:5432 password=hunter2';
      const spy = vi.spyOn(h.container.imagesRepo, 'listPage').mockRejectedValueOnce(new Error(detail));
      const logsBefore = h.logs.length;
      const res = await gqlAuthorized(h, PAGE, { first: 5 }, `Bearer ${await h.token('alice')}`);
      spy.mockRestore();
      expect(res.body!.data ?? null).toBeNull();
      expect(res.body!.errors).toHaveLength(1);
      const err = res.body!.errors![0]!;
      expect(err.extensions?.code).toBe('INTERNAL_SERVER_ERROR');
      expect(err.extensions?.requestId).toBeTruthy();
      expect(err.extensions?.requestId).toBe(res.headers.get('x-request-id'));
      // Nothing of the cause reaches the client: not the message, not a stack, not the host.
      expect(Object.keys(err.extensions!).sort()).toEqual(['code', 'requestId']);
      for (const leak of ['hunter2', 'secret_table', 'db-internal', 'stack', 'images-repo', '.ts:']) {
        expect(res.text).not.toContain(leak);
      }
      // ...but the log has it, under the same request id.
      const logged = h.logs
        .slice(logsBefore)
        .map((l) => JSON.parse(l) as { level: number; requestId?: string; err?: { message?: string } })
        .find((l) => l.requestId === err.extensions!.requestId && l.level >= 50);
      expect(logged?.err?.message).toContain('secret_table');

      // The next request is fine again.
      const ok = await h.gql(PAGE, { first: 5 });
      expect(ok.errors).toBeUndefined();
    });
  });
  describe('an unexpected error in a subscription event', () => {
    it('carries its stream’s request id on yoga’s path and on the fast path, and is logged under it', async () => {
      const [id] = await seed(h, 'carol', 1);
      const token = await h.token('carol');
      const body = { query: SUB_PRESET, variables: { ids: [id], preset: 'thumb' } };
      // The first open of a body is yoga's, which lets the fast path take the next ones.
      await postSseBody(h.url, body, { token }).then((r) => r.body?.cancel());
      const viaYoga = await postSseBody(h.url, body, {
        token,
        contentType: 'application/json;charset=utf-8',
      });
      const viaFast = await postSseBody(h.url, body, { token });
      const streams = [viaYoga, viaFast].map((res) => ({
        id: res.headers.get('x-request-id'),
        read: readSse(res, 5000),
      }));
      await waitFor(
        async () => ((await h.container.metrics.sseSubscribers.get()).values[0]?.value ?? 0) === 2,
      );

      // The srcset of a preset's event is resolved per event: a bug-shaped failure there.
      const detail = 'invariant broken in secret_table password=hunter2';
      const spy = vi.spyOn(h.container.urls, 'resolveMany').mockRejectedValue(new Error(detail));
      const logsBefore = h.logs.length;
      const [row] = await h.container.imagesRepo.findLive([id!]);
      const urlId = h.container.variants.srcsetPlan(row!, 'thumb', 0).requests[0]!.id;
      await h.container.events.publish([
        {
          imageId: urlId,
          signedUrl: {
            url: 'https://bucket.test/x',
            expiresAt: Date.now() + 3_600_000,
            refreshAt: Date.now(),
            cached: false,
          },
        },
      ]);
      try {
        await waitFor(async () => streams.every((s) => s.read.events.length > 0));
      } finally {
        spy.mockRestore();
      }
      const logs = h.logs
        .slice(logsBefore)
        .map((l) => JSON.parse(l) as { level: number; requestId?: string; err?: { message?: string } });
      for (const s of streams) {
        expect(s.id).toMatch(/^[\w.-]{8,64}$/);
        const event = JSON.parse(s.read.events[0]!.data) as {
          errors?: { extensions?: Record<string, unknown> }[];
        };
        expect(event.errors, s.read.events[0]!.data).toHaveLength(1);
        expect(event.errors![0]!.extensions).toEqual({ code: 'INTERNAL_SERVER_ERROR', requestId: s.id });
        expect(s.read.events[0]!.data).not.toContain('hunter2');
        // Logged once, under the stream's own id, with the cause.
        const lines = logs.filter((l) => l.requestId === s.id && l.level >= 50);
        expect(lines, JSON.stringify(logs)).toHaveLength(1);
        expect(lines[0]!.err?.message).toContain('secret_table');
        s.read.cancel();
      }
    });
  });
});

// yoga answers a CORS preflight and the GraphiQL page before any plugin's onRequest runs: the
// response still carries the id the HTTP layer gave the request.
describe('request ids of the answers yoga gives before its plugins run', () => {
  const APP = 'https://app.example';
  let h: Harness;

  beforeAll(async () => {
    h = await startHarness({
      driver: 'local',
      redis: 'memory',
      env: { CORS_ORIGINS: APP, GRAPHQL_INTROSPECTION: 'true' },
    });
  });
  afterAll(async () => {
    await h?.close();
  });

  it('a CORS preflight and the GraphiQL page echo the caller’s x-request-id', async () => {
    const preflight = await fetch(`${h.url}/graphql`, {
      method: 'OPTIONS',
      headers: {
        origin: APP,
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'content-type',
        'x-request-id': 'preflight-0001',
      },
    });
    expect(preflight.headers.get('access-control-allow-origin')).toBe(APP);
    expect(preflight.headers.get('x-request-id')).toBe('preflight-0001');
    const page = await fetch(`${h.url}/graphql`, {
      headers: { accept: 'text/html', 'x-request-id': 'graphiql-0001' },
    });
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toContain('text/html');
    expect(page.headers.get('x-request-id')).toBe('graphiql-0001');
    // The page's coding joins the HTTP layer's `Vary: Authorization, Origin` (every /graphql
    // answer, and CORS_ORIGINS), not replaces it.
    expect(page.headers.get('vary')).toBe('Authorization, Origin, Accept-Encoding');
    const revalidated = await fetch(`${h.url}/graphql`, {
      headers: {
        accept: 'text/html',
        'if-none-match': page.headers.get('etag')!,
        'x-request-id': 'graphiql-0002',
      },
    });
    expect(revalidated.status).toBe(304);
    expect(revalidated.headers.get('x-request-id')).toBe('graphiql-0002');
  });
});
