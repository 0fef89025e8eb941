import { describe, expect, it } from 'vitest';
import { commandStats } from '../support/redis-server.js';
import { reportUncached } from './helpers/client.js';
import { report, sleep, until } from './helpers/load.js';
import {
  AHEAD,
  hitRatio,
  RATE,
  refreshesTotal,
  TTL,
  timeUntil,
  useSentinelStack,
  watchAndLoad,
} from './helpers/sentinel-stack.js';

// Redis as a primary with a replica behind three sentinels (quorum 2); the gateway knows only the
// sentinels (REDIS_SENTINELS). The primary is SIGKILLed under a steady page load and never comes
// back: the sentinels promote the replica and every connection of the gateway (cache, schedule,
// events, BullMQ) must find it by itself. Not one query may fail meanwhile.
describe('fault: the Redis primary SIGKILLed behind Sentinel, under load', () => {
  const t = useSentinelStack();

  it('promotes the replica; no query fails, the cache, sweeps and events carry on', async () => {
    const { group, stack, client } = t;
    const { watched, sse, load } = await watchAndLoad(t);

    const killedAt = Date.now();
    await group.primary.kill();
    load.phase('failover');
    const promotedAt = await group.waitPromoted(group.replica.port);
    const failoverMs = promotedAt - killedAt;
    load.phase('recovery');
    const refreshesAtPromotion = await refreshesTotal(stack.url);

    // The cache serves again: eight pages in a row with most of their URLs read from it. (With
    // 20-second steps a page of 24 often holds an image whose step has just turned and whose
    // refresh is up to a tick away, so "every URL cached" is not the measure here.)
    // Measured, not awaited with a throw: the functional checks below run (and report) either way;
    // the time bound is asserted last.
    const back = await timeUntil(() => {
      const recent = load.select({ kind: 'page', phase: 'recovery' }).slice(-8);
      return recent.length === 8 && recent.every((x) => x.ok && hitRatio([x]) >= 0.5);
    }, 20_000);
    const recoveredMs = back === undefined ? Number.POSITIVE_INFINITY : Date.now() - promotedAt;
    load.phase('after');
    await sleep(3000);
    await load.stop();
    const uncached = await client.openUncached();

    const phases = ['before', 'failover', 'recovery', 'after'];
    report(
      `Redis primary SIGKILL behind Sentinel (promoted ${failoverMs} ms after the kill, cache back ${recoveredMs} ms after the promotion)`,
      load,
      ['page', 'url'],
      phases,
    );
    reportUncached(uncached, phases);
    const during = load.summary({ kind: 'page', phase: 'failover' });
    console.log(
      `[faults] sentinel failover: ${failoverMs} ms, ${during.count} page queries during it (${during.failures} failed), p99 ${during.p99} ms, max ${during.max} ms; cache back ${recoveredMs} ms after the promotion; URL hit ratio before ${hitRatio(load.select({ kind: 'page', phase: 'before' })).toFixed(2)}, during ${hitRatio(load.select({ kind: 'page', phase: 'failover' })).toFixed(2)}, after ${hitRatio(load.select({ kind: 'page', phase: 'after' })).toFixed(2)}`,
    );
    // Not one request failed; every URL signed without the cache opens at the origin.
    expect(load.failures()).toEqual([]);
    for (const c of Object.values(uncached)) expect(c.refused).toEqual([]);
    expect(uncached.failover?.distinct ?? 0).toBeGreaterThan(0);
    expect(uncached.failover!.opened).toBe(uncached.failover!.distinct);

    // The cache now lives on the promoted replica: it answered the reads of the recovery.
    const promoted = group.replica.client();
    const stats = await commandStats(promoted);
    expect(await promoted.info('replication')).toContain('role:master');
    promoted.disconnect();
    expect(stats['mget'] ?? 0).toBeGreaterThan(RATE);

    // A refresh sweep ran on the new primary (BullMQ's workers reconnected), and its events
    // reached the SSE subscriber (the event bus re-subscribed on the new primary).
    // URLs fall due at their step's end: the first after the promotion may be a whole step
    // (TTL - AHEAD = 20 s) away, then a tick and a drain. 20 s failed a CI run once (21:47 UTC).
    await until(
      'a refresh sweep after the promotion',
      async () => (await refreshesTotal(stack.url)) > refreshesAtPromotion,
      (TTL - AHEAD) * 1000 + 10_000,
    );
    await sse.waitFor((ev) => ev.some((e) => e.at > promotedAt && e.data.data?.signedUrlRefreshed), 20_000);
    const after = sse.events.filter((e) => e.at > promotedAt);
    expect(after.every((e) => watched.includes(e.data.data!.signedUrlRefreshed.imageId))).toBe(true);

    expect(stack.alive()).toBe(true);
    expect(stack.errorLogs()).toEqual([]);

    // The time bounds: the cache back within 5 s of the promotion, no page slower than 2 s.
    expect(recoveredMs).toBeLessThan(5000);
    expect(during.count).toBeGreaterThan(RATE); // the failover took more than a second under load
    expect(during.max).toBeLessThan(2000);
    expect(hitRatio(load.select({ kind: 'page', phase: 'before' }))).toBeGreaterThan(0.6);
    expect(hitRatio(load.select({ kind: 'page', phase: 'after' }))).toBeGreaterThan(0.6);
  });
});
