import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Harness } from '../support/harness.js';
import { PAGE_QUERY, type PageData, seed } from '../support/seed.js';
import { sleep, until } from './helpers/load.js';
import type { OwnedPostgres } from './helpers/owned-postgres.js';
import { startReplicaPair } from './helpers/replica-pair.js';

// A short bound, so that "past the bound" is a few seconds: a poll every 500 ms.
const MAX_LAG_MS = 2000;
const IMAGES = 6;

async function readyz(url: string): Promise<{ http: number; status: string; database: string }> {
  const res = await fetch(`${url}/readyz`);
  const body = (await res.json()) as { status: string; checks: { database: string } };
  return { http: res.status, status: body.status, database: body.checks.database };
}

/** The gauges as /metrics shows them, as text (`+Inf` and `NaN` are what the test looks for). */
async function gauges(url: string): Promise<{ lag: string; inUse: string; databaseUp: string }> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const value = (series: string) =>
    new RegExp(`^${series.replace(/[{}"]/g, '\\$&')} (\\S+)$`, 'm').exec(text)?.[1] ?? 'absent';
  return {
    lag: value('signet_db_replica_lag_seconds'),
    inUse: value('signet_db_replica_in_use'),
    databaseUp: value('signet_dependency_up{dependency="database"}'),
  };
}

const linesWith = (h: Harness, text: string) => h.logs.filter((l) => l.includes(text));

// The primary stopped (pg_ctl stop -m fast) under a node whose DATABASE_READ_URL is a caught-up
// streaming replica (docs/operations.md, "PostgreSQL read replica"): no write can happen, so the
// replica is as current as any database can be. Pages keep coming from it past the lag bound,
// /readyz says degraded with 200, the lag stays what it is (not the time since the primary's last
// answer), and the log says once that the primary is unreachable.
describe('fault: the primary stopped under a caught-up read replica', () => {
  let pair: Awaited<ReturnType<typeof startReplicaPair>>;
  let primary: OwnedPostgres;
  let h: Harness;

  beforeAll(async () => {
    pair = await startReplicaPair(MAX_LAG_MS);
    ({ primary, h } = pair);
    await seed(h, 'alice', IMAGES);
    await pair.caughtUp();
    await pair.inUse();
    // The seeding pinned alice to the primary (read-your-own-writes): past that pin, her pages
    // are the replica's.
    await sleep(MAX_LAG_MS + 2 * h.container.readReplica!.pollMs + 200);
  }, 90_000);
  afterAll(async () => {
    await pair?.stop();
  });

  it('serves pages from the replica past the lag bound, /readyz 200 degraded, and logs the primary once', async () => {
    const page = async () => {
      const r = await h.gql<PageData>(PAGE_QUERY, { first: 24 });
      return r.errors
        ? `error ${r.errors.map((e) => e.extensions?.code).join(',')}`
        : r.data!.images.edges.length;
    };
    expect(await page()).toBe(IMAGES);
    expect(await readyz(h.url)).toEqual({ http: 200, status: 'ok', database: 'ok' });

    await primary.stop('fast');
    const stoppedAt = Date.now();
    const pages: (number | string)[] = [];
    const probes: { at: number; http: number; status: string; database: string }[] = [];
    // Well past the bound (and past the 1 s /readyz keeps a round of probes).
    while (Date.now() - stoppedAt < MAX_LAG_MS * 2 + 1500) {
      pages.push(await page());
      probes.push({ at: Date.now() - stoppedAt, ...(await readyz(h.url)) });
      await sleep(200);
    }
    const state = h.container.readReplica!.state;
    const g = await gauges(h.url);
    console.log(
      `[faults] primary stopped: ${pages.length} pages over ${Date.now() - stoppedAt} ms, state ${JSON.stringify(state)}, gauges ${JSON.stringify(g)}`,
    );
    // Every page from the replica, none SERVICE_UNAVAILABLE.
    expect(pages.filter((p) => p !== IMAGES)).toEqual([]);
    // The node can still serve reads: ready, the database degraded (its primary down); every
    // answer 200, and degraded once the round of probes from before the stop has aged out (1 s).
    expect(probes.filter((p) => p.http !== 200)).toEqual([]);
    const fresh = probes.filter((p) => p.at > 1100);
    expect(fresh.filter((p) => p.status !== 'degraded' || p.database !== 'degraded')).toEqual([]);
    expect(fresh.length).toBeGreaterThan(5);
    // Really down: the primary's probe gauge says so; the replica is in use and not behind.
    expect(g.databaseUp).toBe('0');
    expect(g.inUse).toBe('1');
    expect(Number(g.lag)).toBeLessThanOrEqual(MAX_LAG_MS / 1000);
    expect(state.usable).toBe(true);
    expect(state.lagMs).toBeLessThanOrEqual(MAX_LAG_MS);
    // Said once, and the replica never skipped.
    expect(linesWith(h, 'primary unreachable')).toHaveLength(1);
    expect(linesWith(h, 'primary unreachable')[0]).toContain('the read replica serves reads');
    expect(linesWith(h, 'read replica skipped')).toEqual([]);

    // The primary back: everything ok again, said once too. (The replica may count as behind
    // for a moment if the primary writes before the replica's stream reconnects, up to 5 s.)
    await primary.start();
    await until('/readyz ok again', async () => (await readyz(h.url)).status === 'ok', 20_000);
    expect(await page()).toBe(IMAGES);
    expect(linesWith(h, 'primary reachable again')).toHaveLength(1);
  }, 60_000);
});
