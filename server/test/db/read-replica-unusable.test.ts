import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase } from '../support/database.js';
import { type Harness, startHarness } from '../support/harness.js';
import { freePort } from '../support/ports.js';
import { PAGE_QUERY, type PageData, seed } from '../support/seed.js';

// A poll every 100 ms: ten polls in a second.
const MAX_LAG_MS = 400;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** The read replica's gauges as /metrics shows them, as text (`+Inf` and `NaN` are what matters). */
async function gauges(url: string): Promise<{ lag: string | undefined; inUse: string | undefined }> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const value = (name: string) => new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1];
  return { lag: value('signet_db_replica_lag_seconds'), inUse: value('signet_db_replica_in_use') };
}

const skipped = (h: Harness) =>
  h.logs
    .filter((l) => l.includes('read replica skipped'))
    .map((l) => JSON.parse(l) as { level: number; reason: string; msg: string });

// A DATABASE_READ_URL that is unusable from the first poll on (docs/operations.md, "PostgreSQL
// read replica"): the poller's first verdict is logged with its reason, once, though the state
// before it ("not polled yet") was not usable either; the lag gauge says +Inf, not NaN.
describe('a read replica unusable from the start', () => {
  let db: { url: string; drop: () => Promise<void> };
  let h: Harness | undefined;

  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterEach(async () => {
    await h?.close();
    h = undefined;
  });
  afterAll(async () => {
    await db?.drop();
  });

  const start = (readUrl: string) =>
    startHarness({
      redis: 'memory',
      env: { DATABASE_URL: db.url, DATABASE_READ_URL: readUrl, DATABASE_READ_MAX_LAG_MS: String(MAX_LAG_MS) },
    });

  it('the primary itself (not in recovery): the reason logged once, lag +Inf, /readyz degraded, pages from the primary', async () => {
    h = await start(db.url);
    await seed(h, 'alice', 2);
    await sleep(10 * h.container.readReplica!.pollMs);
    const lines = skipped(h);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: 40, reason: 'not a streaming replica (not in recovery)' });
    expect(h.container.readReplica!.state).toMatchObject({ usable: false, lagMs: Number.POSITIVE_INFINITY });
    expect(await gauges(h.url)).toEqual({ lag: '+Inf', inUse: '0' });
    const ready = await fetch(`${h.url}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toMatchObject({ status: 'degraded', checks: { database: 'degraded' } });
    const page = await h.gql<PageData>(PAGE_QUERY, { first: 5 });
    expect(page.errors).toBeUndefined();
    expect(page.data!.images.edges).toHaveLength(2);
  });

  it('a port nothing listens on: the reason (unreachable) logged once, lag +Inf', async () => {
    h = await start(`postgres://postgres@127.0.0.1:${await freePort()}/postgres`);
    await sleep(10 * h.container.readReplica!.pollMs);
    const lines = skipped(h);
    expect(lines).toHaveLength(1);
    expect(lines[0]!.level).toBe(40);
    expect(lines[0]!.reason).toMatch(/^unreachable: .*ECONNREFUSED/);
    expect(await gauges(h.url)).toEqual({ lag: '+Inf', inUse: '0' });
  });
});
