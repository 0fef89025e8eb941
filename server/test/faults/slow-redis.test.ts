import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { commandStats, OwnedRedis } from '../support/redis-server.js';
import { Client } from './helpers/client.js';
import { LatencyProxy } from './helpers/latency-proxy.js';
import { SteadyLoad, sleep } from './helpers/load.js';
import { expectRecovery } from './helpers/recovery.js';
import { Stack } from './helpers/stack.js';

const RATE = 20;
const ADDED_MS = 500; // each way, per chunk: a command costs at least 1 s round trip

// Redis behind a proxy that adds latency: a slow cache must not make slow requests. The command
// timeout (REDIS_COMMAND_TIMEOUT_MS, 150 ms) and the store's deadline (2x that) bound every
// request, which then signs directly; once the latency is gone the cache path comes back.
describe('fault: a slow Redis under load', () => {
  let redis: OwnedRedis;
  let proxy: LatencyProxy;
  let stack: Stack;
  let client: Client;

  beforeAll(async () => {
    redis = await OwnedRedis.start();
    proxy = await LatencyProxy.start(redis.port);
    stack = await Stack.start({ redisUrl: proxy.url });
    client = new Client(stack);
    await client.discover();
  });
  afterAll(async () => {
    await stack?.close();
    await proxy?.close();
    await redis?.kill();
  });

  it(`stays bounded by the Redis timeouts while Redis adds ${ADDED_MS} ms, then uses the cache again`, async () => {
    const load = new SteadyLoad(RATE, { page: client.page, url: client.signedUrl });
    client.phase = () => load.current;
    load.start('before');
    await sleep(3000);

    proxy.latencyMs = ADDED_MS;
    load.phase('slow');
    await sleep(8000);

    proxy.latencyMs = 0;
    const admin = redis.client();
    let mgetBefore = 0;
    await expectRecovery(load, client, {
      faultPhase: 'slow',
      phases: ['before', 'slow', 'recovery', 'after'],
      title: (ms) => `Redis +${ADDED_MS} ms each way (cache back ${ms} ms after the latency went)`,
      onRecovered: async () => {
        mgetBefore = (await commandStats(admin))['mget'] ?? 0;
      },
    });
    const mgetAfter = (await commandStats(admin))['mget'] ?? 0;
    admin.disconnect();
    const slow = load.select({ kind: 'page', phase: 'slow' });
    expect(slow.length).toBeGreaterThan(RATE * 6);
    // A Redis round trip now takes over a second; the requests may not.
    expect(load.summary({ kind: 'page', phase: 'slow' }).max).toBeLessThan(2000);
    expect(slow.filter((s) => !s.cached).length).toBeGreaterThan(RATE * 5);
    // The cache path resumed: hits, read from Redis again. Not every page: on a loaded two-core
    // machine Redis itself can answer after the 150 ms command timeout (it shares the cores), and
    // the breaker then rightly signs directly for a second. (This node's own busy turns no longer
    // count against Redis: redis/command-timeout.ts.)
    const after = load.select({ kind: 'page', phase: 'after' });
    expect(after.filter((s) => s.cached).length).toBeGreaterThanOrEqual(Math.ceil(after.length * 0.9));
    expect(mgetAfter - mgetBefore).toBeGreaterThan(RATE * 2);
    expect(stack.alive()).toBe(true);
    expect(stack.errorLogs()).toEqual([]);
  });
});
