import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { checkDependencies } from '../../src/cli/check.js';
import { keySlot } from '../../src/redis/key-slot.js';
import { clusterProbeKeys } from '../../src/urls/redis-store.js';
import { type Harness, startHarness } from '../support/harness.js';
import { LocalRedisCluster } from '../support/redis-cluster.js';
import { seed } from '../support/seed.js';

/**
 * A Redis Cluster in `cluster_state:fail` (this file's own 3 masters, no replicas; one slot left
 * unassigned with cluster-require-full-coverage at its default, yes): every keyed command is
 * answered CLUSTERDOWN, while PING still gets PONG from any node. The cache probe used PING, so
 * `/readyz` and `signet_dependency_up{dependency="cache"}` said ok through it.
 */
describe('Redis Cluster down (cluster_state:fail)', () => {
  let cluster: LocalRedisCluster;
  let h: Harness;
  let ids: string[];
  const admins: Redis[] = [];
  const node = (port: number) => {
    const r = new Redis(port, '127.0.0.1', { maxRetriesPerRequest: 0 });
    r.on('error', () => {});
    admins.push(r);
    return r;
  };

  beforeAll(async () => {
    cluster = await LocalRedisCluster.start(3);
    h = await startHarness({ driver: 'cos', env: { REDIS_CLUSTER_NODES: cluster.nodes } });
    ids = await seed(h, 'alice', 5);
  }, 60_000);
  afterAll(async () => {
    for (const r of admins) r.disconnect();
    await h?.close();
    await cluster?.stop();
  });

  const readiness = async () => {
    const res = await fetch(`${h.url}/readyz`);
    return { status: res.status, body: (await res.json()) as { checks: { cache: { state: string } } } };
  };
  const cacheGauge = async () => {
    const text = await (await fetch(`${h.url}/metrics`)).text();
    return /signet_dependency_up\{dependency="cache"\} (\d)/.exec(text)?.[1];
  };
  const redisRow = async () => (await checkDependencies(h.config, 3000)).find((r) => r.name === 'redis')!;

  it('reads as the cache degraded on /readyz, the gauge and `signet check`, naming CLUSTERDOWN', async () => {
    expect((await readiness()).body.checks.cache.state).toBe('ok');
    expect(await cacheGauge()).toBe('1');
    expect((await redisRow()).status).toBe('ok');

    // A slot none of Signet's keys use, unassigned on every master: the whole cluster fails.
    const used = new Set(clusterProbeKeys(h.config.redisPrefix).map(keySlot));
    let slot = 0;
    while (used.has(slot)) slot++;
    const { masters } = await cluster.topology();
    for (const p of masters) await node(p).cluster('DELSLOTS', slot);
    await vi.waitFor(
      async () => {
        for (const p of masters)
          expect(String(await node(p).cluster('INFO'))).toContain('cluster_state:fail');
      },
      { timeout: 10_000, interval: 100 },
    );
    // Any node still answers PING: that is what the probe asked.
    expect(await node(masters[0]!).ping()).toBe('PONG');

    await vi.waitFor(
      async () => {
        const r = await readiness();
        expect(r.status).toBe(200);
        expect(r.body.checks.cache.state).toBe('degraded');
      },
      { timeout: 5000, interval: 300 },
    );
    expect(await cacheGauge()).toBe('0');
    // The transition's log line says why.
    expect(h.logs.some((l) => l.includes('dependency does not answer') && l.includes('CLUSTERDOWN'))).toBe(
      true,
    );
    const row = await redisRow();
    expect(row.status).toBe('down');
    expect(row.detail).toContain('CLUSTERDOWN');

    // What only Redis knows is SERVICE_UNAVAILABLE with a retry, not an unexpected error; the
    // page's URLs are still signed (directly).
    const res = await h.gql<{ imagesByIds: ({ signedUrl: { url: string } } | null)[] }>(
      'query ($ids: [ID!]!) { imagesByIds(ids: $ids) { id signedUrl { url } urlStatus { cached } } }',
      { ids },
    );
    const codes = new Set((res.errors ?? []).map((e) => e.extensions?.code));
    expect([...codes]).toEqual(['SERVICE_UNAVAILABLE']);
    expect(h.logs.filter((l) => l.includes('"unexpected error"'))).toEqual([]);

    // Covered again: ok again.
    const owner = masters[0]!;
    await node(owner).cluster('ADDSLOTS', slot);
    await cluster.waitHealthy();
    await vi.waitFor(async () => expect((await readiness()).body.checks.cache.state).toBe('ok'), {
      timeout: 10_000,
      interval: 300,
    });
    expect((await redisRow()).status).toBe('ok');
  }, 60_000);
});
