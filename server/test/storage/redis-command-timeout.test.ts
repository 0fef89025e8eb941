import { type Cluster, Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withDeadline } from '../../src/lib/late-timer.js';
import { createRedisClient, type RedisClient } from '../../src/redis/connect.js';
import { RedisUrlStore } from '../../src/urls/redis-store.js';
import { UnknownOutcomeError } from '../../src/urls/store.js';
import { testRedisUrl } from '../support/env.js';
import { waitFor } from '../support/proxy.js';
import { LocalRedisCluster } from '../support/redis-cluster.js';
import { OwnedRedis } from '../support/redis-server.js';

const TIMEOUT_MS = 50;

/** Keeps this process's event loop busy, as a node serving a burst of cold pages does. */
function busyFor(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until) {
    // spinning on purpose
  }
}

/** What a command settled with: its value, or its error's message. */
const outcome = (p: Promise<unknown>) =>
  p.then(
    (v) => ({ value: v }),
    (err: Error) => ({ error: err.message }),
  );

async function ready(client: RedisClient): Promise<void> {
  if (client.status === 'ready') return;
  await new Promise<void>((resolve, reject) => {
    client.once('ready', () => resolve());
    client.once('error', reject);
  });
}

// REDIS_COMMAND_TIMEOUT_MS measures Redis, not this process: a reply that came in while the event
// loop was busy is on time (redis/command-timeout.ts). ioredis' own commandTimeout failed these
// with "Command timed out", and the gateway then opened its cache breaker for a second.
describe('Redis command timeout', () => {
  let client: RedisClient;
  let owned: OwnedRedis;
  let onOwned: RedisClient;
  let cluster: LocalRedisCluster;
  let onCluster: RedisClient;
  const prefix = `signet-test:timeout:${process.pid}:`;

  beforeAll(async () => {
    client = createRedisClient({ url: testRedisUrl(), clusterNodes: [], commandTimeoutMs: TIMEOUT_MS });
    owned = await OwnedRedis.start();
    onOwned = createRedisClient({ url: owned.url, clusterNodes: [], commandTimeoutMs: TIMEOUT_MS });
    cluster = await LocalRedisCluster.start(3);
    onCluster = createRedisClient({
      url: undefined,
      clusterNodes: cluster.ports.map((port) => ({ host: '127.0.0.1', port })),
      commandTimeoutMs: TIMEOUT_MS,
    });
    await Promise.all([ready(client), ready(onOwned), ready(onCluster)]);
    // A cluster connects to a node on its first command: have every connection up before a test
    // sends a command and then keeps the loop busy (a command still connecting is not on time).
    await Promise.all((onCluster as Cluster).nodes('master').map((n) => n.ping()));
  }, 60_000);
  afterAll(async () => {
    const keys = await client?.keys(`${prefix}*`);
    if (keys && keys.length > 0) await client.del(...keys);
    client?.disconnect();
    onOwned?.disconnect();
    onCluster?.disconnect();
    await owned?.kill();
    await cluster?.stop();
  });

  it('counts a reply that arrived while the event loop was busy as on time', async () => {
    await client.set(`${prefix}k`, 'v');
    const single = outcome(client.get(`${prefix}k`));
    const piped = outcome(client.pipeline().get(`${prefix}k`).mget(`${prefix}k`, `${prefix}none`).exec());
    busyFor(TIMEOUT_MS * 4);
    expect(await single).toEqual({ value: 'v' });
    expect(await piped).toEqual({
      value: [
        [null, 'v'],
        [null, ['v', null]],
      ],
    });
  });

  it('does the same on a Redis Cluster, pipelines included', async () => {
    await onCluster.set(`${prefix}{a}k`, 'a');
    await onCluster.set(`${prefix}{b}k`, 'b');
    const single = outcome(onCluster.get(`${prefix}{b}k`));
    // A pipeline goes to one node (the store groups its commands by node: last test).
    const piped = outcome(
      onCluster.pipeline().get(`${prefix}{a}k`).mget(`${prefix}{a}k`, `${prefix}{a}none`).exec(),
    );
    busyFor(TIMEOUT_MS * 4);
    expect(await single).toEqual({ value: 'b' });
    expect(await piped).toEqual({
      value: [
        [null, 'a'],
        [null, ['a', null]],
      ],
    });
  });

  it('still times a command out when Redis itself does not answer in time', async () => {
    const admin = owned.client();
    try {
      // Every client's commands wait (CLIENT PAUSE … ALL) on this private Redis.
      await admin.call('client', 'pause', String(TIMEOUT_MS * 8), 'ALL');
      const started = performance.now();
      const paused = await outcome(onOwned.get('anything'));
      const took = performance.now() - started;
      expect(paused).toEqual({ error: 'Command timed out' });
      // Failed at the timeout, not once the pause ended.
      expect(took).toBeLessThan(TIMEOUT_MS * 6);
      expect(took).toBeGreaterThanOrEqual(TIMEOUT_MS - 1);
    } finally {
      admin.disconnect();
    }
  });

  it('tells the access flush that counts past their timeout may have been added', async () => {
    const admin = owned.client();
    const store = new RedisUrlStore(onOwned, prefix);
    try {
      await admin.call('client', 'pause', String(TIMEOUT_MS * 4), 'ALL');
      const late = await store.recordAccess(new Map([['seen', { count: 3, lastAt: 1_000 }]])).then(
        () => undefined,
        (err: unknown) => err,
      );
      expect(late).toBeInstanceOf(UnknownOutcomeError);
      // And so they were, once the pause ended: sending them again would have counted them twice.
      // (While the pause lasts, reading times out too: not yet.)
      await waitFor(() =>
        store.status(['seen']).then(
          ([s]) => s!.accessCount === 3,
          () => false,
        ),
      );
    } finally {
      admin.disconnect();
    }
  });

  it('gives whole calls (withDeadline) the same measure', async () => {
    // A client without any command timeout of its own: only the deadline can fail the call.
    const plain = new Redis(testRedisUrl());
    try {
      await plain.ping();
      const answered = outcome(withDeadline(plain.get(`${prefix}k`), TIMEOUT_MS, 'too late'));
      busyFor(TIMEOUT_MS * 4);
      expect(await answered).toEqual({ value: 'v' });
      const started = performance.now();
      expect(await outcome(withDeadline(new Promise(() => {}), TIMEOUT_MS, 'too late'))).toEqual({
        error: 'too late',
      });
      expect(performance.now() - started).toBeGreaterThanOrEqual(TIMEOUT_MS - 1);
    } finally {
      plain.disconnect();
    }
  });

  it("bounds a cluster call by the store's deadline, measured the same way", async () => {
    // The store's whole-call deadline (cluster reads and every write-back) counts Redis' time too.
    const store = new RedisUrlStore(onCluster, prefix, TIMEOUT_MS);
    const written = outcome(
      store.write([{ id: 'x', sig: { start: 1, end: 2, sig: 'abc' }, ttlMs: 60_000, refreshAt: 5 }], 'miss'),
    );
    const read = outcome(store.read(['x', 'y']));
    busyFor(TIMEOUT_MS * 4);
    expect(await written).toEqual({ value: undefined });
    expect(await read).toEqual({ value: [{ start: 1, end: 2, sig: 'abc' }, null] });
  });
});
