import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ReadReplica, type ReplicaState } from '../../src/db/read-replica.js';
import { runCli } from '../support/cli.js';
import { testRedisUrl } from '../support/env.js';
import type { Harness } from '../support/harness.js';
import { PAGE_QUERY, type PageData, seed } from '../support/seed.js';
import { sleep, until } from './helpers/load.js';
import { type OwnedPostgres, sqlOn } from './helpers/owned-postgres.js';
import { startReplicaPair } from './helpers/replica-pair.js';

// A short bound, so that "past the bound" is a few seconds: a poll every 500 ms.
const MAX_LAG_MS = 2000;

const DIVERGED =
  /^diverged: has replayed past the primary's current position \([0-9A-F]+\/[0-9A-F]+ > [0-9A-F]+\/[0-9A-F]+\); rebuild it from the primary \(pg_basebackup\)$/;

const linesWith = (h: Harness, text: string) => h.logs.filter((l) => l.includes(text));

const lsnOf = async (url: string, fn: 'pg_current_wal_lsn' | 'pg_last_wal_replay_lsn') =>
  (await sqlOn(url, `select ${fn}()::text as lsn`))[0].lsn as string;

/** Whether PostgreSQL orders pg_lsn `a` after `b`. */
const after = async (url: string, a: string, b: string) =>
  (await sqlOn(url, 'select $1::pg_lsn > $2::pg_lsn as gt', [a, b]))[0].gt as boolean;

// A streaming replica that has split off from its primary (docs/operations.md, "PostgreSQL read
// replica"): the primary is restored from a base backup taken before writes the replica has
// since replayed (recovery_target='immediate', promoted onto timeline 2, on the same port), so
// the replica holds WAL the primary never wrote and cannot follow it ("new timeline 2 forked off
// ... before current recovery point"). Its replay position is ahead of the primary's: comparing
// positions alone found it 0 behind and served its rows. A private primary and replica
// (pg_basebackup -R); the gateway runs in process with DATABASE_READ_URL on the replica.
describe('fault: a read replica ahead of its primary (diverged)', () => {
  let pair: Awaited<ReturnType<typeof startReplicaPair>>;
  let primary: OwnedPostgres;
  let replica: OwnedPostgres;
  let h: Harness;

  beforeAll(async () => {
    pair = await startReplicaPair(MAX_LAG_MS);
    ({ primary, replica, h } = pair);
    await sqlOn(primary.url, 'create table churn (n bigint)');
    await pair.caughtUp();
    await pair.inUse();
  }, 90_000);
  afterAll(async () => {
    await pair?.stop();
  });

  it('a healthy replica under continuous writes is never judged diverged', async () => {
    // Rows committed one by one on the primary as fast as it takes them: the replica replays
    // each within milliseconds, often between a poll's primary sample and its own answer.
    const writer = new pg.Client({ connectionString: primary.url });
    await writer.connect();
    let writing = true;
    let rows = 0;
    const writes = (async () => {
      while (writing) {
        await writer.query('insert into churn values ($1)', [rows]);
        rows++;
      }
    })();
    const poller = new ReadReplica({
      url: replica.url,
      primary: h.db.kysely,
      maxLagMs: MAX_LAG_MS,
      logger: { info: () => {}, warn: () => {} },
    });
    const states: ReplicaState[] = [];
    let ahead = 0;
    let looks = 0;
    try {
      const end = Date.now() + 5000;
      while (Date.now() < end) {
        await poller.poll();
        states.push(poller.state);
        states.push(h.container.readReplica!.state);
        // How often the race the poller guards against happens: the replica past a primary
        // position read just before it was asked.
        const p = await lsnOf(primary.url, 'pg_current_wal_lsn');
        const r = await lsnOf(replica.url, 'pg_last_wal_replay_lsn');
        looks++;
        if (await after(primary.url, r, p)) ahead++;
      }
    } finally {
      writing = false;
      await writes;
      await writer.end();
      await poller.close();
    }
    console.log(
      `[faults] ${rows} rows written during ${states.length / 2} polls; the replica past the primary's position read just before it in ${ahead} of ${looks} looks`,
    );
    expect(rows).toBeGreaterThan(100);
    expect(states.filter((s) => s.reason?.startsWith('diverged'))).toEqual([]);
    expect(states.filter((s) => s.usable).length).toBeGreaterThan(states.length / 2);
    expect(h.logs.filter((l) => l.includes('diverged'))).toEqual([]);
    expect(linesWith(h, 'read replica skipped')).toEqual([]);
  }, 60_000);

  it('skips a replica ahead of a primary restored from an earlier backup: pages come from the primary, said once', async () => {
    const page = async () => {
      const r = await h.gql<PageData>(PAGE_QUERY, { first: 24 });
      return r.errors
        ? `error ${r.errors.map((e) => e.extensions?.code).join(',')}`
        : r.data!.images.edges.length;
    };
    const count = async (url: string) =>
      Number((await sqlOn(url, 'select count(*)::int as n from images'))[0].n);

    await seed(h, 'alice', 2);
    const backup = await primary.backup();
    // Written after the backup, and replayed by the replica: the restored primary will not have
    // them. The WAL switches move its position well past where the restored primary resumes.
    await seed(h, 'alice', 3);
    for (let i = 0; i < 3; i++) {
      await sqlOn(primary.url, 'insert into churn values (-1)');
      await sqlOn(primary.url, 'select pg_switch_wal()');
    }
    await pair.caughtUp();
    expect(await count(replica.url)).toBe(5);
    // Past the read-your-own-writes pin of the seeding: pages are the replica's.
    await sleep(MAX_LAG_MS + 2 * h.container.readReplica!.pollMs + 200);
    expect(await page()).toBe(5);
    expect(h.container.readReplica!.state.usable).toBe(true);
    const inUseLines = linesWith(h, 'read replica in use').length;

    await primary.restore(backup);
    // Real divergence: the primary has 2 images, the replica (still in recovery) 5, and the
    // replica's replay position is past the primary's current one.
    expect(await count(primary.url)).toBe(2);
    expect(await count(replica.url)).toBe(5);
    expect((await sqlOn(replica.url, 'select pg_is_in_recovery() as r'))[0].r).toBe(true);
    const replayed = await lsnOf(replica.url, 'pg_last_wal_replay_lsn');
    expect(await after(primary.url, replayed, await lsnOf(primary.url, 'pg_current_wal_lsn'))).toBe(true);

    await until(
      'the container to find the replica diverged',
      () => h.container.readReplica!.state.reason?.startsWith('diverged') === true,
      15_000,
    );
    const state = h.container.readReplica!.state;
    console.log(`[faults] the primary restored from a backup: ${JSON.stringify(state)}`);
    expect(state.usable).toBe(false);
    expect(state.lagMs).toBe(Number.POSITIVE_INFINITY);
    expect(state.reason).toMatch(DIVERGED);
    expect(state.reason).toContain(`(${replayed} > `);

    // Pages answer, from the primary (the gateway's pool reconnects to the restored server).
    await until('a page from the restored primary', async () => (await page()) === 2, 10_000);
    const pages: (number | string)[] = [];
    for (let i = 0; i < 6; i++) {
      pages.push(await page());
      await sleep(h.container.readReplica!.pollMs);
    }
    expect(pages.filter((p) => p !== 2)).toEqual([]);
    // Said once, with the reason.
    const skipped = linesWith(h, 'read replica skipped');
    expect(skipped).toHaveLength(1);
    expect(skipped[0]).toContain('diverged: has replayed past the primary');

    // `signet check` says so too: its database-read row is down with the same reason.
    const dataDir = await mkdtemp(path.join(os.tmpdir(), 'signet-check-'));
    try {
      await mkdir(path.join(dataDir, 'bucket'));
      const run = await runCli(['check'], {
        DATA_DIR: dataDir,
        DATABASE_URL: primary.url,
        DATABASE_READ_URL: replica.url,
        REDIS_URL: testRedisUrl(),
        STORAGE_DRIVER: 'local',
      });
      const row = run.stdout.split('\n').find((l) => l.startsWith('database-read'));
      console.log(`[faults] signet check: ${row}`);
      expect(row?.split(/\s+/)[1]).toBe('down');
      expect(row).toContain('diverged: has replayed past the primary');
      expect(run.code).toBe(1);
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }

    // The restored primary writes past the replica's position: the replica cannot follow its
    // new timeline and stays where it was, still holding what the primary never wrote. It stays
    // skipped as diverged (positions alone would now find it current, then behind).
    for (
      let i = 0;
      i < 20 && !(await after(primary.url, await lsnOf(primary.url, 'pg_current_wal_lsn'), replayed));
      i++
    ) {
      await sqlOn(primary.url, 'insert into churn values (-2)');
      await sqlOn(primary.url, 'select pg_switch_wal()');
    }
    expect(await after(primary.url, await lsnOf(primary.url, 'pg_current_wal_lsn'), replayed)).toBe(true);
    const later: ReplicaState[] = [];
    const since = Date.now();
    while (Date.now() - since < MAX_LAG_MS + 4 * h.container.readReplica!.pollMs) {
      later.push(h.container.readReplica!.state);
      await sleep(100);
    }
    expect(await lsnOf(replica.url, 'pg_last_wal_replay_lsn')).toBe(replayed);
    expect(later.filter((s) => s.usable || !DIVERGED.test(s.reason ?? ''))).toEqual([]);
    expect(await page()).toBe(2);
    expect(linesWith(h, 'read replica skipped')).toHaveLength(1);
    expect(linesWith(h, 'read replica in use')).toHaveLength(inUseLines);
  }, 120_000);
});
