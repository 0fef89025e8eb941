import type { Socket } from 'node:net';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRedisClient } from '../../src/redis/connect.js';
import { SentinelSwitchWatch } from '../../src/redis/sentinel-switch.js';
import { captureLogger } from '../support/logs.js';
import { RedisSentinelGroup } from '../support/redis-sentinel.js';
import { sleep, until } from './helpers/load.js';

// The node's switchover watch (redis/sentinel-switch.ts) listens to one sentinel at a time. When
// that sentinel goes away, a promotion announced before the watch has subscribed to the next one
// reaches nobody; without more, the node's connections stay on the old primary, still up and
// taking writes that are lost, until the sentinels demote it ~10 s later. The watch asks the
// sentinel for the primary after each subscription. docs/operations.md, "Redis behind Sentinel".
const RETRY_MS = 6000; // how long the watch waits before the next sentinel: the switch falls in the gap

describe('fault: a Sentinel switchover announced while the node is between two sentinels', () => {
  let group: RedisSentinelGroup;
  let client: Redis;
  let watch: SentinelSwitchWatch;
  const { logger, logs } = captureLogger();

  beforeAll(async () => {
    group = await RedisSentinelGroup.start({ downAfterMs: 1000, failoverTimeoutMs: 5000 });
    const sentinels = group.sentinelPorts.map((port) => ({ host: '127.0.0.1', port }));
    client = createRedisClient({
      url: undefined,
      clusterNodes: [],
      sentinels,
      sentinelName: group.name,
      commandTimeoutMs: 500,
    }) as Redis;
    client.on('error', () => {});
    watch = new SentinelSwitchWatch({ sentinels, name: group.name, logger, retryMs: RETRY_MS });
    watch.track(client);
    watch.start();
    await until('the client to connect', () => client.status === 'ready', 10_000);
  }, 90_000);

  afterAll(async () => {
    await watch?.close();
    client?.disconnect();
    await group?.stop();
  });

  it('asks the next sentinel for the primary and moves its connections before the old primary is demoted', async () => {
    // The watch is subscribed to the first sentinel (and has asked it for the primary).
    const first = group.sentinelClient(0);
    await until(
      'the watch to subscribe to the first sentinel',
      async () => ((await first.call('CLIENT', 'LIST')) as string).includes('cmd=subscribe'),
      10_000,
    );
    first.disconnect();
    await sleep(500);

    // A steady write (INCR, 20 a second) and where the client is connected, every 20 ms.
    let acked = 0;
    let failed = 0;
    let writing = true;
    const writes = (async () => {
      while (writing) {
        await client.incr('gap:n').then(
          () => acked++,
          () => failed++,
        );
        await sleep(50);
      }
    })();
    let movedAt: number | undefined;
    const portWatch = setInterval(() => {
      const stream = (client as unknown as { stream?: Socket }).stream;
      if (movedAt === undefined && client.status === 'ready' && stream?.remotePort === group.replica.port)
        movedAt = Date.now();
    }, 20);

    let killedAt: number;
    let promotedAt: number;
    let demotedAt: number;
    try {
      await group.killSentinel(0);
      killedAt = Date.now();
      await group.switchover(15_000, 1);
      promotedAt = await group.waitPromoted(group.replica.port);
      // The promotion fell in the gap: the watch had not yet subscribed to the next sentinel, so
      // no sentinel it listened to announced it (else this run tests nothing new).
      const second = group.sentinelClient(1);
      const listening = ((await second.call('CLIENT', 'LIST')) as string).includes('cmd=subscribe');
      second.disconnect();
      if (listening)
        throw new Error(
          `the promotion came ${promotedAt - killedAt} ms after the kill, after the watch subscribed to the next sentinel (${RETRY_MS} ms): this run cannot test the gap`,
        );
      // Demoted: the sentinels made the old primary a replica (which closes its clients).
      const old = group.primary.client();
      try {
        await until(
          'the old primary to be demoted',
          async () => (await old.info('replication')).includes('role:slave'),
          30_000,
        );
      } finally {
        old.disconnect();
      }
      demotedAt = Date.now();
      await group.waitReplicaOf(group.primary, group.replica.port);
      await sleep(1000);
    } finally {
      writing = false;
      await writes;
      clearInterval(portWatch);
    }
    const promoted = group.replica.client();
    const landed = Number(await promoted.get('gap:n'));
    promoted.disconnect();

    console.log(
      `[faults] sentinel watch gap: promoted ${promotedAt - killedAt} ms after the watch's sentinel died (it asks the next one after ${RETRY_MS} ms); the client moved ${movedAt === undefined ? 'never' : `${movedAt - promotedAt} ms`} after the promotion, the old primary demoted ${demotedAt - promotedAt} ms after it; ${acked} INCRs acknowledged, ${landed} on the new primary (${acked - landed} lost with the old one), ${failed} failed`,
    );
    expect(logs.some((l) => l.includes('asked after resubscribing'))).toBe(true);
    // The client left the old primary once the watch asked (RETRY_MS after the kill), not when the
    // sentinels demoted it (~10 s after the promotion).
    expect(movedAt).toBeDefined();
    expect(movedAt!).toBeLessThan(demotedAt - 2000);
    expect(movedAt! - killedAt).toBeLessThan(RETRY_MS + 3000);
    // What it wrote after moving stays: only the writes of the gap went to the old primary.
    expect(acked - landed).toBeLessThan(((movedAt! - promotedAt) / 50) * 1.5 + 5);
  });
});
