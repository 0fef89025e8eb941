import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Kysely, PostgresDialect, sql } from 'kysely';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type Db, openDatabase } from '../../src/db/connect.js';
import { createImagesRepo } from '../../src/db/images-repo.js';
import type { Database } from '../../src/db/types.js';
import { ANIMATION_UNKNOWN_INDEX, ensureWorkListIndex } from '../../src/db/work-list-indexes.js';
import { MemoryEventBus } from '../../src/events/memory-bus.js';
import { AnimationBackfill } from '../../src/images/animation-backfill.js';
import { createMetrics } from '../../src/metrics.js';
import { createLocalStorage } from '../../src/storage/local.js';
import { createTestDatabase } from '../support/database.js';
import { captureLogger } from '../support/logs.js';

// The backfills' work-list indexes are built concurrently by the backfill, not inside a
// migration (src/db/work-list-indexes.ts), on a real PostgreSQL: writes and reads go on while one
// builds, a build outlasts the pool's statement timeout, one process builds at a time, a stopped
// build is built again. And on PGlite, a plain build.

const ROWS = 300_000;

/** A Db over a pool of its own, with the statement timeout a node's pool has, only shorter. */
function dbWithTimeout(url: string, statementTimeoutMs: number, max = 2): Db {
  const pool = new pg.Pool({ connectionString: url, max, statement_timeout: statementTimeoutMs });
  const kysely = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  return {
    kind: 'postgres',
    kysely,
    ping: async () => {
      await sql`select 1`.execute(kysely);
    },
    close: () => kysely.destroy(),
  };
}

describe('work-list indexes on PostgreSQL', () => {
  let pgdb: Awaited<ReturnType<typeof createTestDatabase>>;
  let db: Db;
  const opened: Db[] = [];
  const clients: pg.Client[] = [];

  const client = async () => {
    const c = new pg.Client({ connectionString: pgdb.url });
    await c.connect();
    clients.push(c);
    return c;
  };
  const indexState = async () =>
    (
      await sql<{ valid: boolean; def: string }>`
        select i.indisvalid as valid, pg_get_indexdef(i.indexrelid) as def
        from pg_index i where i.indexrelid = to_regclass('images_animation_unknown')`.execute(db.kysely)
    ).rows[0];
  const advisoryLocks = async () =>
    Number(
      (
        await sql<{ n: string }>`select count(*) as n from pg_locks where locktype = 'advisory'`.execute(
          db.kysely,
        )
      ).rows[0]!.n,
    );
  /** Resolves once the build is waiting (for an older transaction to end) in PostgreSQL. */
  const buildWaiting = async () => {
    for (let i = 0; i < 200; i++) {
      const r = await sql<{ n: string }>`
        select count(*) as n from pg_stat_activity
        where query ilike 'create index concurrently%' and wait_event_type = 'Lock'`.execute(db.kysely);
      if (Number(r.rows[0]!.n) > 0) return;
      await new Promise((r) => setTimeout(r, 25));
    }
    throw new Error('the build never waited for the open transaction');
  };

  beforeAll(async () => {
    pgdb = await createTestDatabase();
    db = await openDatabase({ databaseUrl: pgdb.url, dataDir: os.tmpdir() });
    // Rows of every kind the predicate tells apart, as a table a migration finds.
    await sql`insert into images (owner_id, object_key, content_type, byte_size, created_at)
      select 'o' || (n % 50), 'k/' || n,
        (array['image/webp', 'image/png', 'image/jpeg', 'image/avif'])[n % 4 + 1], 100,
        timestamptz '2026-01-01' + n * interval '1 second'
      from generate_series(1, ${ROWS}) n`.execute(db.kysely);
    await sql`analyze images`.execute(db.kysely);
  }, 120_000);
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.end().catch(() => {})));
    await Promise.all(opened.splice(0).map((d) => d.close()));
    await sql`drop index if exists images_animation_unknown`.execute(db.kysely);
  });
  afterAll(async () => {
    await db?.close();
    await pgdb?.drop();
  });

  it('builds an index that outlasts the pool statement timeout, then gives the session its timeout back', async () => {
    // One connection, so the build's connection is the one asked afterwards.
    const short = dbWithTimeout(pgdb.url, 50, 1);
    opened.push(short);
    // The table is big enough that a build under the pool's timeout fails: what a migration's
    // build met on a large table.
    await expect(
      sql`create index concurrently probe_index on images (created_at, id) where animated is null`.execute(
        short.kysely,
      ),
    ).rejects.toMatchObject({ code: '57014' });
    await sql`drop index if exists probe_index`.execute(db.kysely);

    const { logger, logs } = captureLogger();
    const logged = () => logs.map((l) => (JSON.parse(l) as { msg: string }).msg);
    expect(await ensureWorkListIndex(short, ANIMATION_UNKNOWN_INDEX, { logger })).toBe('ready');
    expect(logged()).toEqual(['work-list index being built', 'work-list index built']);
    const state = await indexState();
    expect(state?.valid).toBe(true);
    expect(state?.def).toContain('WHERE ((animated IS NULL) AND (deleted_at IS NULL)');
    expect(
      (await sql<{ t: string }>`select current_setting('statement_timeout') as t`.execute(short.kysely))
        .rows[0]!.t,
    ).toBe('50ms');
    expect(await advisoryLocks()).toBe(0);
    // Already there: nothing to do.
    expect(await ensureWorkListIndex(short, ANIMATION_UNKNOWN_INDEX, { logger })).toBe('ready');
    expect(logged()).toHaveLength(2);
  }, 60_000);

  it("is the work list's plan: the backfill's statement rides on it", async () => {
    await createImagesRepo(db).prepareAnimationWorkList();
    const c = await client();
    const plan = await c.query(`explain select * from images
      where deleted_at is null and animated is null and content_type in ('image/webp', 'image/png', 'image/avif')
      order by created_at, id limit 100`);
    expect(plan.rows.map((r) => r['QUERY PLAN']).join('\n')).toContain('images_animation_unknown');
  });

  it('lets uploads, deletes and pages go on while it builds, and one process builds at a time', async () => {
    // An open transaction: a concurrent build waits for it to end before it finishes.
    const reader = await client();
    await reader.query('begin isolation level repeatable read');
    await reader.query('select count(*) from images');
    const other = dbWithTimeout(pgdb.url, 10_000);
    opened.push(other);

    const building = ensureWorkListIndex(db, ANIMATION_UNKNOWN_INDEX);
    let settled = false;
    void building.finally(() => {
      settled = true;
    });
    await buildWaiting();
    // Another node's backfill does not build a second time, nor wait.
    expect(await ensureWorkListIndex(other, ANIMATION_UNKNOWN_INDEX)).toBe('building elsewhere');
    // Writes and reads of images during the build: none waits for it.
    const writer = await client();
    await writer.query(
      "insert into images (owner_id, object_key, content_type, byte_size, animated) values ('o1', 'k/during', 'image/webp', 1, null)",
    );
    await writer.query("update images set deleted_at = now() where object_key = 'k/1'");
    const page = await writer.query(
      "select id from images where owner_id = 'o1' and deleted_at is null order by created_at desc, id desc limit 100",
    );
    expect(page.rowCount).toBe(100);
    expect(settled).toBe(false);

    await reader.query('commit');
    expect(await building).toBe('ready');
    expect((await indexState())?.valid).toBe(true);
    const listed = await createImagesRepo(db).animationUnknown(undefined, ROWS);
    expect(listed.some((r) => r.objectKey === 'k/during')).toBe(true);
    expect(listed.some((r) => r.objectKey === 'k/1')).toBe(false);
    expect(await advisoryLocks()).toBe(0);
  }, 60_000);

  it('stops a build when told (shutdown), and the next call builds the invalid leftover again', async () => {
    const reader = await client();
    await reader.query('begin isolation level repeatable read');
    await reader.query('select count(*) from images');
    const stop = new AbortController();
    const building = ensureWorkListIndex(db, ANIMATION_UNKNOWN_INDEX, { signal: stop.signal });
    await buildWaiting();
    stop.abort();
    expect(await building).toBe('stopped');
    await reader.query('commit');
    // What a stopped concurrent build leaves: an invalid index, still kept up by every write.
    expect((await indexState())?.valid).toBe(false);
    expect(await advisoryLocks()).toBe(0);

    expect(await ensureWorkListIndex(db, ANIMATION_UNKNOWN_INDEX)).toBe('ready');
    expect((await indexState())?.valid).toBe(true);
    // Stopped before it began: nothing built, nothing left.
    await sql`drop index images_animation_unknown`.execute(db.kysely);
    expect(await ensureWorkListIndex(db, ANIMATION_UNKNOWN_INDEX, { signal: AbortSignal.abort() })).toBe(
      'stopped',
    );
    expect(await indexState()).toBeUndefined();
  }, 60_000);
});

describe('the animation backfill and its index', () => {
  let pgdb: Awaited<ReturnType<typeof createTestDatabase>>;
  let db: Db;
  let dir: string;
  beforeAll(async () => {
    pgdb = await createTestDatabase();
    db = await openDatabase({ databaseUrl: pgdb.url, dataDir: os.tmpdir() });
    dir = await mkdtemp(path.join(os.tmpdir(), 'signet-work-list-'));
    // Rows from before the column; their objects are gone (recorded as stills: enough here).
    await sql`insert into images (owner_id, object_key, content_type, byte_size)
      select 'o', 'k/' || n, 'image/png', 100 from generate_series(1, 5) n`.execute(db.kysely);
  }, 60_000);
  afterAll(async () => {
    await db?.close();
    await pgdb?.drop();
    await rm(dir, { recursive: true, force: true });
  });

  it('waits while another process builds the index, then builds it if needed and walks the rows', async () => {
    const { logger, logs } = captureLogger();
    const metrics = createMetrics();
    const backfill = new AnimationBackfill(
      {
        storage: createLocalStorage({
          root: dir,
          publicUrl: 'http://gw.test',
          secret: 'work-list-secret-work-list-secret',
        }),
        images: createImagesRepo(db),
        events: new MemoryEventBus(),
        metrics,
        logger,
      },
      { timeoutSeconds: 5 },
    );
    // Another worker holds the build (its session's advisory lock).
    const other = new pg.Client({ connectionString: pgdb.url });
    await other.connect();
    try {
      await other.query(
        `select pg_advisory_lock(hashtext('signet.work-list-index.images_animation_unknown'))`,
      );
      expect(await backfill.run()).toMatchObject({ visited: 0, complete: false });
      expect(logs.join('')).toContain('its work-list index is being built elsewhere');
    } finally {
      await other.end();
    }
    expect(await backfill.run()).toMatchObject({ visited: 5, still: 5, complete: true });
    const checked = await metrics.animationChecked.get();
    expect(checked.values.map((v) => [v.labels.result, v.value])).toEqual([['still', 5]]);
    expect(logs.join('')).toContain('work-list index built');
    const valid = await sql<{ valid: boolean }>`
      select indisvalid as valid from pg_index where indexrelid = to_regclass('images_animation_unknown')`.execute(
      db.kysely,
    );
    expect(valid.rows[0]?.valid).toBe(true);
    // Closed: a run does not start a build, and walks nothing.
    await sql`drop index images_animation_unknown`.execute(db.kysely);
    backfill.close();
    expect(await backfill.run()).toMatchObject({ visited: 0 });
    const left = await sql`select 1 from pg_class where relname = 'images_animation_unknown'`.execute(
      db.kysely,
    );
    expect(left.rows).toHaveLength(0);
  });
});

describe('work-list indexes on PGlite', () => {
  let dir: string;
  let db: Db;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'signet-work-list-'));
    db = await openDatabase({ databaseUrl: undefined, dataDir: dir });
  }, 60_000);
  afterAll(async () => {
    await db?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('builds it in place (one process, a small table)', async () => {
    expect(await createImagesRepo(db).prepareAnimationWorkList()).toBe('ready');
    const r = await sql<{ indexdef: string }>`
      select indexdef from pg_indexes where indexname = 'images_animation_unknown'`.execute(db.kysely);
    expect(r.rows[0]?.indexdef).toMatch(/animated IS NULL/);
    expect(await createImagesRepo(db).prepareAnimationWorkList()).toBe('ready');
  });
});
