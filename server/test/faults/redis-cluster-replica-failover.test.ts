import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalRedisCluster } from '../support/redis-cluster.js';
import { commandStats } from '../support/redis-server.js';
import { Client } from './helpers/client.js';
import { SteadyLoad, sleep, until } from './helpers/load.js';
import { expectRecovery } from './helpers/recovery.js';
import { Stack } from './helpers/stack.js';

const RATE = 20;

// A Redis Cluster of three masters, each with a replica, and a short cluster-node-timeout. One
// master is SIGKILLed under a steady page load and never comes back: the others mark it failed
// and its replica is elected in its place. The gateway (seeded with all six nodes) must answer
// every query meanwhile and find the new master by itself (a refresh of its slot map).
describe('fault: a Redis Cluster master SIGKILLed, its replica promoted, under load', () => {
  let cluster: LocalRedisCluster;
  let stack: Stack;
  let client: Client;
  /** Stopped in afterAll too: a failed assertion must not leave requests running into the teardown. */
  let running: SteadyLoad | undefined;

  beforeAll(async () => {
    cluster = await LocalRedisCluster.start(3, { replicas: 1, nodeTimeoutMs: 1000 });
    stack = await Stack.start({ env: { REDIS_CLUSTER_NODES: cluster.nodes } });
    client = new Client(stack);
    await client.discover();
  }, 90_000);
  afterAll(async () => {
    await running?.stop();
    await stack?.close();
    await cluster?.stop();
  });

  it('answers every query through the failover, then reads the cache from the promoted replica', async () => {
    // With a 1 s cluster-node-timeout, a node busy while the stack started can be marked `fail?`
    // for a moment (CI on fb4a404 read 2 masters here): wait until all six are seen as healthy.
    let topology!: Awaited<ReturnType<LocalRedisCluster['topology']>>;
    await until(
      'three healthy masters, each with a replica',
      async () => {
        topology = await cluster.topology();
        return topology.masters.length === 3 && topology.replicaOf.size === 3;
      },
      15_000,
    );
    const { masters, replicaOf } = topology;
    expect(masters).toHaveLength(3);
    expect(replicaOf.size).toBe(3);
    const victim = masters[1]!;
    const heir = [...replicaOf].find(([, master]) => master === victim)![0];

    const load = new SteadyLoad(RATE, { page: client.page, url: client.signedUrl });
    running = load;
    client.phase = () => load.current;
    load.start('before');
    await sleep(3000);

    const killedAt = Date.now();
    await cluster.kill(victim);
    load.phase('failover');
    await until(
      'the replica to be promoted',
      async () => (await cluster.topology()).masters.includes(heir),
      30_000,
    );
    await cluster.waitHealthy();
    const promotedAt = Date.now();
    const failoverMs = promotedAt - killedAt;

    const { recoveredMs } = await expectRecovery(load, client, {
      faultPhase: 'failover',
      phases: ['before', 'failover', 'recovery', 'after'],
      title: (ms) =>
        `Redis Cluster master SIGKILL, replica promoted ${failoverMs} ms after the kill (cache back ${ms} ms after the promotion)`,
    });
    const during = load.summary({ kind: 'page', phase: 'failover' });
    console.log(
      `[faults] cluster replica failover: ${failoverMs} ms, ${during.count} page queries during it (${during.failures} failed), p99 ${during.p99} ms, max ${during.max} ms; cache back ${recoveredMs} ms after the promotion`,
    );
    expect(during.count).toBeGreaterThan(RATE);
    // The store's deadline (2x the command timeout) bounds a call however the cluster redirects.
    expect(during.max).toBeLessThan(2000);
    expect(recoveredMs).toBeLessThan(5000);
    expect(load.select({ kind: 'page', phase: 'after' }).every((s) => s.cached)).toBe(true);

    // The promoted replica is a master now and served cache reads after the promotion.
    const promoted = new Redis(heir, '127.0.0.1', { maxRetriesPerRequest: 1 });
    promoted.on('error', () => {});
    expect(await promoted.info('replication')).toContain('role:master');
    const stats = await commandStats(promoted);
    promoted.disconnect();
    expect(stats['mget'] ?? 0).toBeGreaterThan(0);

    expect(stack.alive()).toBe(true);
    expect(stack.errorLogs()).toEqual([]);
  });
});
