import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { testRedisUrl } from '../support/env.js';
import { type Harness, startHarness } from '../support/harness.js';
import { gqlAuthorized } from '../support/raw-graphql.js';
import { seed } from '../support/seed.js';

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
});
