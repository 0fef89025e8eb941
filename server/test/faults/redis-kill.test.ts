import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { commandStats, OwnedRedis } from '../support/redis-server.js';
import { Client } from './helpers/client.js';
import { SteadyLoad, sleep } from './helpers/load.js';
import { expectRecovery } from './helpers/recovery.js';
import { Stack } from './helpers/stack.js';

const RATE = 20; // page queries (and as many origin fetches of a URL just handed out) per second

// Redis SIGKILLed under a steady page load and started again on the same port: not one query may
// fail, every URL handed out during the outage must open at the origin, and the cache path must
// come back without anyone touching the gateway.
describe('fault: Redis killed and restarted under load', () => {
  let redis: OwnedRedis;
  let stack: Stack;
  let client: Client;

  beforeAll(async () => {
    redis = await OwnedRedis.start();
    stack = await Stack.start({ redisUrl: redis.url });
    client = new Client(stack);
    await client.discover();
  });
  afterAll(async () => {
    await stack?.close();
    await redis?.kill();
  });

  it('answers every query through the outage and resumes the cache path by itself', async () => {
    const load = new SteadyLoad(RATE, { page: client.page, url: client.signedUrl });
    client.phase = () => load.current;
    load.start('before');
    await sleep(3000);

    await redis.kill();
    load.phase('outage');
    await sleep(6000);

    await redis.start();
    // Zero failed queries, every URL signed without the cache opens at the origin, the cache is back.
    const { recoveredMs } = await expectRecovery(load, client, {
      faultPhase: 'outage',
      phases: ['before', 'outage', 'recovery', 'after'],
      title: (ms) => `Redis SIGKILL + restart (cache back ${ms} ms after restart)`,
    });
    const outage = load.select({ kind: 'page', phase: 'outage' });
    expect(outage.length).toBeGreaterThan(RATE * 4);
    expect(outage.filter((s) => !s.cached).length).toBeGreaterThan(RATE * 4);
    expect(load.select({ kind: 'url', phase: 'outage' }).length).toBeGreaterThan(RATE * 4);
    // A dead Redis costs milliseconds (no offline queue); the bound only catches a hang.
    expect(load.summary({ kind: 'page', phase: 'outage' }).max).toBeLessThan(2000);
    // The cache path resumed: every page after recovery was a hit, read from the new Redis.
    expect(load.select({ kind: 'page', phase: 'after' }).every((s) => s.cached)).toBe(true);
    const admin = redis.client();
    const stats = await commandStats(admin);
    admin.disconnect();
    expect(stats['mget']).toBeGreaterThan(RATE * 2);
    expect(recoveredMs).toBeLessThan(10_000);

    const metrics = await (await fetch(`${stack.url}/metrics`)).text();
    expect(Number(/^signet_redis_fallbacks_total (\d+)/m.exec(metrics)?.[1] ?? 0)).toBeGreaterThan(0);
    expect(stack.alive()).toBe(true);
    expect(stack.errorLogs()).toEqual([]);
  });
});
