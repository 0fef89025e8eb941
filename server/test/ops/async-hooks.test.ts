import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testRedisUrl } from '../support/env.js';
import { type Harness, startHarness } from '../support/harness.js';
import { proxyLinks } from '../support/proxy.js';
import { seed } from '../support/seed.js';
import { postSubscription, readSse } from '../support/sse.js';

/** How many async-hook `init` callbacks are on in this process (AsyncLocalStorage turns one on). */
function initHooks(): number {
  // Deprecated, and the only way to see it: node:async_hooks has no public count.
  const wrap = (
    process as unknown as {
      binding(name: 'async_wrap'): { async_hook_fields: Uint32Array; constants: { kInit: number } };
    }
  ).binding('async_wrap');
  return wrap.async_hook_fields[wrap.constants.kInit]!;
}

// Once anything in the process turns async hooks on (AsyncLocalStorage.run, createHook), every
// promise, timer and socket afterwards pays for them: a hot proxy redirect lost 14-22 points of a
// bare 302 to the request scope it replaced (lib/request-id.ts; docs/benchmarks.md, finding 25).
describe('the gateway’s hot paths turn on no async hooks', () => {
  let h: Harness;
  let ids: string[];
  let token: string;

  beforeAll(async () => {
    h = await startHarness({ driver: 'local', redis: testRedisUrl() });
    ids = await seed(h, 'alice', 2);
    token = await h.token('alice');
  });
  afterAll(async () => {
    await h?.close();
  });

  it('a page, a proxy redirect, a subscription, a refused request and a REST error leave them off', async () => {
    expect(initHooks(), 'async hooks were on before the gateway served anything').toBe(0);
    const page = await h.gql<{ images: { edges: unknown[] } }>(
      'query { images(first: 2) { edges { node { id signedUrl { url } } } } }',
      {},
      { token },
    );
    expect(page.data?.images.edges).toHaveLength(2);
    const { redirect } = await proxyLinks(h, ids[0]!);
    expect((await fetch(redirect, { redirect: 'manual' })).status).toBe(302);
    // Twice: the second open of a body takes the SSE fast path.
    for (let i = 0; i < 2; i++) {
      const sub = await postSubscription(
        h.url,
        'subscription($ids: [ID!]!) { signedUrlRefreshed(ids: $ids) { imageId } }',
        { ids },
        token,
      );
      expect(sub.status).toBe(200);
      readSse(sub, 100);
    }
    expect(
      (await h.gql('query { images(first: 2) { totalCount } }', {}, { token: 'not-a-token' })).errors?.[0]
        ?.extensions?.code,
    ).toBe('UNAUTHENTICATED');
    expect((await fetch(`${h.url}/proxy/${ids[0]}?t=forged`)).status).toBe(403);
    expect(
      initHooks(),
      'something turned async hooks on (AsyncLocalStorage, async_hooks.createHook): lib/request-id.ts says why the gateway does without',
    ).toBe(0);
  });
});
