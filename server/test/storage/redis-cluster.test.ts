import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { urlKeys } from '../../src/urls/redis-store.js';
import type { Turn } from '../support/counting-proxy.js';
import { type Harness, startHarness } from '../support/harness.js';
import { LocalRedisCluster } from '../support/redis-cluster.js';
import { PAGE_QUERY, type PageData, seed } from '../support/seed.js';
import { subscribeSse } from '../support/sse.js';
import { clearOfStepTurns } from '../support/step-turns.js';
import { checkWriteBack } from '../support/write-back.js';

/**
 * Turns that carry the gateway's own commands. ioredis refreshes its slot map (CLUSTER SLOTS)
 * every few seconds on its own; that is the client's housekeeping, not a page's work.
 */
const workTurns = (turns: readonly Turn[]) =>
  turns.filter((t) => Object.keys(t.commands).some((c) => c !== 'cluster'));

// The hot path, events and leases on a real 3-master Redis Cluster this file starts and stops.
// Every node sits behind a counting TCP proxy that it announces as its address, so the gateway's
// round trips are counted per node on the wire.
describe('Redis Cluster', () => {
  let cluster: LocalRedisCluster;
  let h: Harness;
  let ids: string[];

  /** Each node's turns since the last reset, by real port. */
  const turnsByNode = () =>
    new Map(cluster.ports.map((p) => [p, [...cluster.proxies.get(p)!.turns]] as const));
  const resetWire = () => {
    for (const x of cluster.proxies.values()) x.reset();
  };

  beforeAll(async () => {
    cluster = await LocalRedisCluster.start(3, { countOnTheWire: true });
    h = await startHarness({ driver: 'cos', env: { REDIS_CLUSTER_NODES: cluster.nodes } });
    ids = await seed(h, 'alice', 100);
  }, 60_000);
  afterAll(async () => {
    await h?.close();
    await cluster?.stop();
  });

  it('serves a page with one round trip per node and no CROSSSLOT', async () => {
    // The page before warms the cache and has the gateway's connections to every node open.
    // Not across a step turn: the warm page must find every URL the pages before it cached.
    await clearOfStepTurns(h.container.config, ids, 10_000);
    resetWire();
    const cold = await h.gql<PageData>(PAGE_QUERY, { first: 100 });
    expect(cold.errors).toBeUndefined();
    // Everything goes through the proxies: the page before reached every node.
    for (const [port, turns] of turnsByNode())
      expect(workTurns(turns).length, `node ${port}`).toBeGreaterThan(0);
    // A warm page: every URL from the cache. (On a loaded machine a write-back can miss the
    // command timeout, or an image's step can end in between: then the next page warms it.)
    for (let i = 0; i < 4; i++) {
      const page = await h.gql<PageData>(PAGE_QUERY, { first: 100 });
      if (page.data?.images.edges.every((e) => e.node.signedUrl.cached)) break;
      await new Promise((r) => setTimeout(r, 1200));
    }
    await cluster.resetStats();
    resetWire();
    const warm = await h.gql<PageData>(PAGE_QUERY, { first: 100 });
    const byNode = turnsByNode();
    expect(warm.errors).toBeUndefined();
    expect(warm.data!.images.edges.every((e) => e.node.signedUrl.cached)).toBe(true);
    // On the wire: at most one round trip per node, made of MGETs only (one pipeline per node),
    // and together exactly one MGET per shard tag of the page. 64 MGETs one after another would
    // be many turns on some node.
    const tags = new Set(warm.data!.images.edges.map((e) => urlKeys(h.config.redisPrefix).shard(e.node.id)));
    let mgets = 0;
    for (const [port, turns] of byNode) {
      const work = workTurns(turns);
      expect(work.length, `node ${port}: ${JSON.stringify(turns)}`).toBeLessThanOrEqual(1);
      for (const t of work) {
        expect(Object.keys(t.commands), `node ${port}`).toEqual(['mget']);
        mgets += t.commands['mget']!;
      }
    }
    expect(mgets).toBe(tags.size);
    // 100 ids over 3 masters: every node held some of them, so every node had its one turn.
    expect([...byNode.values()].filter((t) => workTurns(t).length === 1)).toHaveLength(3);
    const stats = await cluster.commandStats();
    delete stats['info'];
    delete stats['config|resetstat'];
    expect(Object.keys(stats)).toEqual(['mget']);
    expect(stats['mget']).toBeLessThanOrEqual(64);
    expect(stats['mget']).toBe(tags.size);
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
    // A refresh publishes what it signs: drop what earlier tests cached, so all five are signed.
    await h.container.urls.purge(ids.slice(0, 5));
    const res = await h.gql('mutation ($ids: [ID!]!) { refreshSignedUrls(ids: $ids) { url } }', {
      ids: ids.slice(0, 5),
    });
    expect(res.errors).toBeUndefined();
    await sse.waitFor((ev) => new Set(ev.map((e) => e.data.data?.signedUrlRefreshed.imageId)).size >= 5);
    sse.close();

    // Leases: the claim script runs on the {refresh} slot; a claimed id is not claimable again.
    // (A page first, so more than two batches of ids are scheduled whatever ran before.)
    expect((await h.gql<PageData>(PAGE_QUERY, { first: 100 })).errors).toBeUndefined();
    await h.container.access.flush();
    const store = h.store;
    const far = Date.now() + 10 * 3600_000;
    const first = await store.claimDue(far, 10, 60_000, 0);
    expect(first.claimed.length).toBe(10);
    const second = await store.claimDue(far, 10, 60_000, 0);
    expect(second.claimed.filter((id) => first.claimed.includes(id))).toEqual([]);
  });

  it('writes a batch back across every shard tag: URLs per shard, the schedule in its own slot', async () => {
    // On a Cluster the write-back is a script call per shard tag (the URLs) and the schedule's
    // ZADD and SADD in the {refresh} slot (urls/redis-store.ts).
    const written = await checkWriteBack(
      h.store,
      h.redis!,
      h.config.redisPrefix,
      300,
      Date.now() + 3_600_000,
    );
    await h.store.purge(written);
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
        resetWire();
        const res = await h.gql<PageData>(PAGE_QUERY, { first: 50 });
        expect(res.errors).toBeUndefined();
        // The cache path is back: the page's MGETs reached every node, the restarted one too.
        for (const [port, turns] of turnsByNode()) {
          expect(
            workTurns(turns).some((t) => t.commands['mget']),
            `node ${port}`,
          ).toBe(true);
        }
        expect(res.data!.images.edges.every((e) => e.node.signedUrl.cached)).toBe(true);
      },
      { timeout: 20_000, interval: 300 },
    );
  }, 90_000);
});
