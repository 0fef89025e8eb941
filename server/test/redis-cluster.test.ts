import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { type Harness, startHarness } from './helpers/harness.js';
import { LocalRedisCluster } from './helpers/redis-cluster.js';
import { PAGE_QUERY, type PageData, seed } from './helpers/seed.js';
import { subscribeSse } from './helpers/sse.js';

// The hot path, events and leases on a real 3-master Redis Cluster this file starts and stops.
describe('Redis Cluster', () => {
  let cluster: LocalRedisCluster;
  let h: Harness;
  let ids: string[];

  beforeAll(async () => {
    cluster = await LocalRedisCluster.start(3);
    h = await startHarness({ driver: 'cos', env: { REDIS_CLUSTER_NODES: cluster.nodes } });
    ids = await seed(h, 'alice', 100);
  }, 60_000);
  afterAll(async () => {
    await h?.close();
    await cluster?.stop();
  });

  it('serves a page with one round trip per node and no CROSSSLOT', async () => {
    const cold = await h.gql<PageData>(PAGE_QUERY, { first: 100 });
    expect(cold.errors).toBeUndefined();
    // Signed and written back with no cache failure.
    expect((await h.container.metrics.redisFallbacks.get()).values[0]?.value ?? 0).toBe(0);
    await cluster.resetStats();
    const trips = h.store.roundTrips();
    const warm = await h.gql<PageData>(PAGE_QUERY, { first: 100 });
    expect(warm.errors).toBeUndefined();
    expect(warm.data!.images.edges.every((e) => e.node.signedUrl.cached)).toBe(true);
    // One batch (pipelines to the nodes in parallel), made of MGETs only: one per shard tag.
    expect(h.store.roundTrips() - trips).toBe(1);
    const stats = await cluster.commandStats();
    delete stats['info'];
    delete stats['config|resetstat'];
    expect(Object.keys(stats)).toEqual(['mget']);
    expect(stats['mget']).toBeLessThanOrEqual(64);
    for (const e of warm.data!.images.edges.slice(0, 10)) {
      expect((await fetch(e.node.signedUrl.url)).status).toBe(200);
    }
  });

  it('claims refreshes under a lease and pushes events across the cluster', async () => {
    const token = await h.token('alice');
    const sse = subscribeSse<{ data?: { signedUrlRefreshed: { imageId: string } } }>(
      h.url,
      'subscription ($ids: [ID!]!) { signedUrlRefreshed(ids: $ids) { imageId } }',
      { ids: ids.slice(0, 5) },
      token,
    );
    await sse.opened;
    const res = await h.gql('mutation ($ids: [ID!]!) { refreshSignedUrls(ids: $ids) { url } }', {
      ids: ids.slice(0, 5),
    });
    expect(res.errors).toBeUndefined();
    await sse.waitFor((ev) => new Set(ev.map((e) => e.data.data?.signedUrlRefreshed.imageId)).size >= 5);
    sse.close();

    // Leases: the claim script runs on the {refresh} slot; a claimed id is not claimable again.
    await h.container.access.flush();
    const store = h.store;
    const far = Date.now() + 10 * 3600_000;
    const first = await store.claimDue(far, 10, 60_000, 0);
    expect(first.claimed.length).toBe(10);
    const second = await store.claimDue(far, 10, 60_000, 0);
    expect(second.claimed.filter((id) => first.claimed.includes(id))).toEqual([]);
  });

  it('keeps answering through a master restart, then uses the cache again', async () => {
    const victim = cluster.ports[1]!;
    let failures = 0;
    let served = 0;
    for (let i = 0; i < 60; i++) {
      if (i === 10) await cluster.kill(victim);
      if (i === 40) await cluster.restart(victim);
      const res = await h.gql<PageData>(PAGE_QUERY, { first: 50 });
      if (res.errors || res.data?.images.edges.length !== 50) failures++;
      else served++;
      if (i % 10 === 5) {
        const url = res.data!.images.edges[i % 50]!.node.signedUrl.url;
        expect((await fetch(url)).status).toBe(200);
      }
    }
    expect(failures).toBe(0);
    expect(served).toBe(60);
    await vi.waitFor(
      async () => {
        const res = await h.gql<PageData>(PAGE_QUERY, { first: 50 });
        expect(res.errors).toBeUndefined();
        expect(res.data!.images.edges.every((e) => e.node.signedUrl.cached)).toBe(true);
      },
      { timeout: 20_000, interval: 300 },
    );
  }, 90_000);
});
