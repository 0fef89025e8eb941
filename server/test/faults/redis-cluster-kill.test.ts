import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalRedisCluster } from '../support/redis-cluster.js';
import { Client } from './helpers/client.js';
import { SteadyLoad, sleep } from './helpers/load.js';
import { expectRecovery } from './helpers/recovery.js';
import { Stack } from './helpers/stack.js';

const RATE = 20;

// The cluster test (server/test/storage/redis-cluster.test.ts) restarts a master during a sequential loop;
// here the same fault meets a steady open-loop load, so its latency shows: one master of three
// SIGKILLed (a third of the slots gone, no replica to fail over to) and restarted.
describe('fault: a Redis Cluster master killed and restarted under load', () => {
  let cluster: LocalRedisCluster;
  let stack: Stack;
  let client: Client;

  beforeAll(async () => {
    cluster = await LocalRedisCluster.start(3);
    stack = await Stack.start({ env: { REDIS_CLUSTER_NODES: cluster.nodes } });
    client = new Client(stack);
    await client.discover();
  }, 90_000);
  afterAll(async () => {
    await stack?.close();
    await cluster?.stop();
  });

  it('answers every query while a third of the slots are gone, then uses the cache again', async () => {
    const victim = cluster.ports[1]!;
    const load = new SteadyLoad(RATE, { page: client.page, url: client.signedUrl });
    client.phase = () => load.current;
    load.start('before');
    await sleep(3000);

    await cluster.kill(victim);
    load.phase('outage');
    await sleep(6000);

    load.phase('restarting');
    await cluster.restart(victim);
    await expectRecovery(load, client, {
      faultPhase: 'outage',
      phases: ['before', 'outage', 'restarting', 'recovery', 'after'],
      title: (ms) =>
        `Redis Cluster master SIGKILL + restart (cache back ${ms} ms after the cluster was healthy)`,
    });
    expect(load.select({ kind: 'page', phase: 'outage' }).length).toBeGreaterThan(RATE * 4);
    // The store's deadline (2x the command timeout) bounds a call however the cluster redirects.
    expect(load.summary({ kind: 'page', phase: ['outage', 'restarting'] }).max).toBeLessThan(2000);
    // The cache is used again: with steps of seconds, an image whose step has just turned waits
    // up to a tick for its refresh, so a page's URLs are mostly (not always all) from the cache.
    const after = load.select({ kind: 'page', phase: 'after' });
    const urls = after.reduce((n, p) => n + (p.urls ?? 0), 0);
    const hits = after.reduce((n, p) => n + (p.hits ?? 0), 0);
    expect(hits / Math.max(1, urls)).toBeGreaterThan(0.9);
    expect(stack.alive()).toBe(true);
    expect(stack.errorLogs()).toEqual([]);
  });
});
