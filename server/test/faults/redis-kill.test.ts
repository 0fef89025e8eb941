import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { commandStats, OwnedRedis } from '../support/redis-server.js';
import { Client, reportUncached } from './helpers/client.js';
import { report, SteadyLoad, sleep, until } from './helpers/load.js';
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
    const restartedAt = Date.now();
    load.phase('recovery');
    // Back on the cache: a full rotation of pages, all from Redis.
    await until(
      'pages served from the cache again',
      () => {
        const recent = load.select({ kind: 'page', phase: 'recovery' }).slice(-8);
        return recent.length === 8 && recent.every((s) => s.ok && s.cached);
      },
      20_000,
    );
    const recoveredMs = Date.now() - restartedAt;
    load.phase('after');
    await sleep(3000);
    await load.stop();
    // Every URL signed without the cache, not only the latest one: each distinct one opened at
    // the origin now (they live for the whole TTL), bytes compared with the object's.
    const uncached = await client.openUncached();

    report(
      `Redis SIGKILL + restart (cache back ${recoveredMs} ms after restart)`,
      load,
      ['page', 'url'],
      ['before', 'outage', 'recovery', 'after'],
    );
    reportUncached(uncached, ['before', 'outage', 'recovery', 'after']);
    // Zero failed queries, and every URL signed without the cache opens at the origin.
    expect(load.failures()).toEqual([]);
    for (const c of Object.values(uncached)) expect(c.refused).toEqual([]);
    expect(uncached['outage']?.distinct ?? 0).toBeGreaterThan(0);
    expect(uncached['outage']!.opened).toBe(uncached['outage']!.distinct);
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
