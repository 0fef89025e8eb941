import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keySlot } from '../../src/redis/key-slot.js';
import { urlKeys } from '../../src/urls/redis-store.js';
import { type Harness, startHarness } from '../support/harness.js';
import { LocalRedisCluster } from '../support/redis-cluster.js';
import { PAGE_QUERY, type PageData, seed } from '../support/seed.js';
import { clearOfStepTurns } from '../support/step-turns.js';

/**
 * A slot moved by hand while a gateway reads a warm page, on a real 3-master + 3-replica Redis
 * Cluster this file starts and stops: the steps `redis-cli --cluster reshard` takes for each
 * slot (SETSLOT IMPORTING / MIGRATING, MIGRATE, SETSLOT NODE), done one at a time so each state
 * is read in. With replicas, a MOVED leaves ioredis' slot map half-updated (the slot's node list
 * matches no group until the next full refresh), and `Pipeline.exec` refused the per-node
 * pipelines CommandBatch built from `slots[slot][0]`: "All keys in the pipeline should belong to
 * the same slots allocation group". Every page then signed directly and the URL cache's breaker
 * opened for a second, for each slot moved.
 */
describe('Redis Cluster: a slot moved during reads', () => {
  let cluster: LocalRedisCluster;
  let h: Harness;
  let ids: string[];
  const admins = new Map<number, Redis>();
  const node = (port: number) => {
    let r = admins.get(port);
    if (!r) {
      r = new Redis(port, '127.0.0.1', { maxRetriesPerRequest: 0 });
      r.on('error', () => {});
      admins.set(port, r);
    }
    return r;
  };

  beforeAll(async () => {
    cluster = await LocalRedisCluster.start(3, { replicas: 1 });
    h = await startHarness({ driver: 'cos', env: { REDIS_CLUSTER_NODES: cluster.nodes } });
    ids = await seed(h, 'alice', 100);
  }, 90_000);
  afterAll(async () => {
    for (const r of admins.values()) r.disconnect();
    await h?.close();
    await cluster?.stop();
  });

  const cacheLogs = () => h.logs.filter((l) => l.includes('URL cache unavailable'));

  /** A page, which must be whole and served from the cache (every URL a hit). */
  const warmPage = async (label: string) => {
    const page = await h.gql<PageData>(PAGE_QUERY, { first: 100 });
    expect(page.errors, label).toBeUndefined();
    const misses = page.data!.images.edges.filter((e) => !e.node.signedUrl.cached).length;
    expect(misses, `${label}: pages signed directly instead of reading the cache`).toBe(0);
  };

  it('keeps a warm page on the cache while a slot moves, and never opens the breaker', async () => {
    // Not across a step turn: a warm page must find every URL the pages before it cached.
    await clearOfStepTurns(h.container.config, ids, 20_000);
    for (let i = 0; i < 5; i++) {
      const page = await h.gql<PageData>(PAGE_QUERY, { first: 100 });
      if (page.data?.images.edges.every((e) => e.node.signedUrl.cached)) break;
      await new Promise((r) => setTimeout(r, 1200));
    }
    await warmPage('before the move');
    const logsBefore = cacheLogs().length;

    // ioredis also refreshes its slot map every 5 s: stopped, so the map is the stale one a
    // reshard leaves behind until a refresh, whenever the move happens.
    const client = h.redis as unknown as {
      clearNodesRefreshInterval(): void;
      slots: string[][];
    };
    client.clearNodesRefreshInterval();

    // The slot of the first image's shard tag, which holds some of the page's URLs.
    const tag = urlKeys(h.config.redisPrefix).shard(ids[0]!);
    const slot = keySlot(tag);
    const { masters } = await cluster.topology();
    const owner = async (): Promise<number> => {
      const slots = await node(masters[0]!).cluster('SLOTS');
      const range = slots.find(([from, to]) => from <= slot && slot <= to)!;
      return Number(range[2]![1]);
    };
    const source = await owner();
    const target = masters.find((p) => p !== source)!;
    const idOf = async (port: number) => String(await node(port).cluster('MYID'));
    const sourceId = await idOf(source);
    const targetId = await idOf(target);
    expect(client.slots[slot]![0]).toBe(`127.0.0.1:${source}`);
    const keys = (await node(source).cluster('GETKEYSINSLOT', slot, 1000)) as string[];
    expect(keys.length).toBeGreaterThan(0);

    // 1. Migrating: every key already on the target, the slot not handed over yet. The source
    // answers ASK, and ioredis' retry of the node's pipeline on the target gets MOVED for the
    // node's other slots.
    await node(target).cluster('SETSLOT', slot, 'IMPORTING', sourceId);
    await node(source).cluster('SETSLOT', slot, 'MIGRATING', targetId);
    await node(source).migrate('127.0.0.1', target, '', 0, 5000, 'KEYS', ...keys);
    await warmPage('slot migrating');

    // 2. Handed over, the client's map still naming the source (as after each slot of a
    // reshard): MOVED, then ioredis' half-updated map.
    for (const p of masters) await node(p).cluster('SETSLOT', slot, 'NODE', targetId);
    expect(client.slots[slot]![0]).toBe(`127.0.0.1:${source}`);
    await warmPage('slot moved, map stale');
    // And the page after it, on whatever map the first left.
    await warmPage('slot moved, the page after');

    expect(cacheLogs().slice(logsBefore)).toEqual([]);
  }, 60_000);
});
