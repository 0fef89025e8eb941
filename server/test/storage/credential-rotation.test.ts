import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testRedisUrl } from '../support/env.js';
import { type Harness, startHarness } from '../support/harness.js';
import { PAGE_QUERY, type PageData, seed } from '../support/seed.js';

/**
 * A key rotation with URLs in the cache: two nodes of one deployment (one Redis, one database,
 * one bucket: the COS fixture, which checks every signature against the account's active keys),
 * the second already on the new key. A URL is rebuilt from a cached signature with the reading
 * node's key id, so a node must never take a signature the other key made
 * (docs/architecture.md, "Storage drivers and signing").
 */
const NEW_KEY = { id: 'AKIDrotatedROTATEDrotatedROTATED0001', secret: 'the-rotated-secret-key-of-the-test' };

describe('a COS key rotation with URLs cached', () => {
  let old: Harness;
  let rotated: Harness;
  let ids: string[];

  beforeAll(async () => {
    old = await startHarness({ driver: 'cos', redis: testRedisUrl() });
    ids = await seed(old, 'alice', 6);
    // Step one of a rotation: the account has both keys; one node runs with the new one.
    old.fixture!.setKey(NEW_KEY.id, NEW_KEY.secret);
    rotated = await startHarness({
      driver: 'cos',
      redis: old.config.redisUrl!,
      nodeOf: old,
      env: { COS_SECRET_ID: NEW_KEY.id, COS_SECRET_KEY: NEW_KEY.secret },
    });
  });
  afterAll(async () => {
    await rotated?.close();
    await old?.close();
  });

  async function page(node: Harness) {
    const token = await node.token('alice');
    const res = await node.gql<PageData>(PAGE_QUERY, { first: 10 }, { token });
    expect(res.errors).toBeUndefined();
    return res.data!.images.edges.map((e) => e.node.signedUrl);
  }

  /** Each URL names the node's key and the bucket serves it. */
  async function expectLoads(urls: { url: string }[], keyId: string) {
    expect(urls).toHaveLength(ids.length);
    for (const { url } of urls) {
      expect(new URL(url).searchParams.get('q-ak')).toBe(keyId);
      const res = await fetch(url);
      expect(res.status, url).toBe(200);
      await res.arrayBuffer();
    }
  }

  it("a node reads another key's cached signatures as misses and signs its own, both ways", async () => {
    const oldId = old.config.cos.secretId;
    const cachedByOld = await page(old);
    await expectLoads(cachedByOld, oldId);
    expect((await page(old)).every((u) => u.cached)).toBe(true); // the cache holds them

    // The new node over the old node's entries: its own URLs, which load.
    const first = await page(rotated);
    await expectLoads(first, NEW_KEY.id);
    expect(first.every((u) => !u.cached)).toBe(true);
    expect((await page(rotated)).every((u) => u.cached)).toBe(true);

    // The old node over the new node's entries: the same.
    await expectLoads(await page(old), oldId);

    // Step two: every node on the new key, the old key deactivated; what is handed out loads.
    old.fixture!.setKey(oldId, null);
    await expectLoads(await page(rotated), NEW_KEY.id);
  });
});
