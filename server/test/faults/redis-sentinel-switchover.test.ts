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

// The planned switchover an operator runs for maintenance (`SENTINEL FAILOVER`), under a steady
// page load. Unlike a crash, the old primary stays up: the sentinels promote the replica at once,
// but turn the old primary into its replica (closing its clients) only ~10 s later, and what is
// written to it meanwhile is lost. Every connection of the gateway (cache, schedule, events,
// BullMQ) must leave it when the promotion is announced (redis/sentinel-switch.ts), and nothing
// may fail. docs/operations.md, "Redis behind Sentinel".
describe('fault: a planned Sentinel switchover (SENTINEL FAILOVER) with one sentinel down, under load', () => {
  const t = useSentinelStack();

  it('moves every connection to the promoted replica; no query fails, the old primary follows it', async () => {
    const { group, stack, client } = t;
    const { sse, load } = await watchAndLoad(t);

    // The gateway's reads (MGET) and writes (EVALSHA: write-backs, access flushes, BullMQ) that
    // reach the old primary, watched until well after its demotion: as a replica it applies
    // replicated effects, never these, so any growth is a client of the gateway still on it.
    // BullMQ's worker blocks on a connection of its own (BZPOPMIN): seen in CLIENT LIST.
    const old = group.primary.client();
    let lastOnOld = { at: Date.now(), count: -1 };
    let lastBlockedOnOld = Date.now();
    let watching = true;
    const oldWatch = (async () => {
      while (watching) {
        const stats = await commandStats(old);
        const count = (stats['mget'] ?? 0) + (stats['evalsha'] ?? 0);
        if (count !== lastOnOld.count) lastOnOld = { at: Date.now(), count };
        const clients = (await old.call('CLIENT', 'LIST')) as string;
        if (clients.includes('cmd=bzpopmin')) lastBlockedOnOld = Date.now();
        await sleep(250);
      }
    })();

    // The sentinel a node listens to first (the first of REDIS_SENTINELS) is gone: the node must
    // hear the announcement from another one.
    await group.killSentinel(0);
    await sleep(1500);

    const askedAt = Date.now();
    await group.switchover(15_000, 1);
    load.phase('switchover');
    const promotedAt = await group.waitPromoted(group.replica.port);
    // The old primary, still running, now replicates the new one (the sentinels reconfigured it).
    await group.waitReplicaOf(group.primary, group.replica.port);
    const demotedAt = Date.now();
    load.phase('recovery');
    const refreshesAtSwitch = await refreshesTotal(stack.url);

    const back = await timeUntil(() => {
      const recent = load.select({ kind: 'page', phase: 'recovery' }).slice(-8);
      return recent.length === 8 && recent.every((x) => x.ok && hitRatio([x]) >= 0.5);
    }, 20_000);
    const recoveredMs = back === undefined ? Number.POSITIVE_INFINITY : Date.now() - demotedAt;
    load.phase('after');
    await sleep(3000);
    await load.stop();
    watching = false;
    await oldWatch;
    old.disconnect();
    const lastOnOldMs = lastOnOld.at - promotedAt;
    const lastBlockedOnOldMs = lastBlockedOnOld - promotedAt;
    const uncached = await client.openUncached();

    const phases = ['before', 'switchover', 'recovery', 'after'];
    report(
      `Redis switchover behind Sentinel (promoted ${promotedAt - askedAt} ms after SENTINEL FAILOVER, the gateway's last command on the old primary ${lastOnOldMs} ms after the promotion, its last blocking read there ${lastBlockedOnOldMs} ms after it, the old primary a replica ${demotedAt - promotedAt} ms after it, cache back ${recoveredMs} ms after that)`,
      load,
      ['page', 'url'],
      phases,
    );
    reportUncached(uncached, phases);
    const during = load.summary({ kind: 'page', phase: ['switchover', 'recovery'] });
    console.log(
      `[faults] sentinel switchover: ${during.count} page queries during it (${during.failures} failed), p99 ${during.p99} ms, max ${during.max} ms; URL hit ratio before ${hitRatio(load.select({ kind: 'page', phase: 'before' })).toFixed(2)}, after ${hitRatio(load.select({ kind: 'page', phase: 'after' })).toFixed(2)}`,
    );
    expect(load.failures()).toEqual([]);
    for (const c of Object.values(uncached)) expect(c.refused).toEqual([]);

    // Reads and writes reach the new primary: page reads (MGET), and write-backs and access
    // flushes (EVALSHA: a replica applies a script's effects, never EVALSHA itself, so every call
    // counted here came from a client after the switch).
    const promoted = group.replica.client();
    const stats = await commandStats(promoted);
    expect(await promoted.info('replication')).toContain('role:master');
    promoted.disconnect();
    expect(stats['mget'] ?? 0).toBeGreaterThan(RATE);
    expect(stats['evalsha'] ?? 0).toBeGreaterThan(0);

    // A refresh sweep ran on the new primary (BullMQ followed), and its events reached the SSE
    // subscriber (the event bus re-subscribed after the sentinels closed its connection).
    await until(
      'a refresh sweep after the switchover',
      async () => (await refreshesTotal(stack.url)) > refreshesAtSwitch,
      (TTL - AHEAD) * 1000 + 10_000,
    );
    await sse.waitFor((ev) => ev.some((e) => e.at > demotedAt && e.data.data?.signedUrlRefreshed), 20_000);

    expect(stack.alive()).toBe(true);
    expect(stack.errorLogs()).toEqual([]);
    // Every connection left the old primary within seconds of the promotion, well before the
    // sentinels demoted it (~10 s: what the gateway wrote there meanwhile would have been lost).
    expect(lastOnOldMs).toBeLessThan(3000);
    expect(lastBlockedOnOldMs).toBeLessThan(3000);
    expect(recoveredMs).toBeLessThan(5000);
    expect(during.max).toBeLessThan(2000);
    expect(hitRatio(load.select({ kind: 'page', phase: 'after' }))).toBeGreaterThan(0.6);
  });
});
