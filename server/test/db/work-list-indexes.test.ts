import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Kysely, PostgresDialect, sql } from 'kysely';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { FakeClock, systemClock } from '../../src/clock.js';
import { openDatabase } from '../../src/db/connect.js';
import { createImagesRepo } from '../../src/db/images-repo.js';
import type { Database, Db } from '../../src/db/types.js';
import { ANIMATION_UNKNOWN_INDEX, ensureWorkListIndex } from '../../src/db/work-list-indexes.js';
import { MemoryEventBus } from '../../src/events/memory-bus.js';
import { AnimationBackfill } from '../../src/images/animation-backfill.js';
import { createMetrics } from '../../src/metrics.js';
import { createLocalStorage } from '../../src/storage/local.js';
import { createTestDatabase } from '../support/database.js';
import { captureLogger } from '../support/logs.js';

// The backfills' work-list indexes are built concurrently by the backfill, not inside a
// migration (src/db/work-list-indexes.ts), on a real PostgreSQL: writes and reads go on while one
// builds, a build outlasts the pool's statement timeout and leaves nothing on the pool's
// connections, one process builds at a time, a stopped build is built again. And on PGlite, a
// plain build at start. A build is held open by a transaction that keeps an older snapshot (a
// concurrent build waits for every such transaction), so how long it takes is the test's choice,
// not the table's size or the machine's speed.

const ROWS = 2_000;
const LOCK = 'signet.work-list-index.images_animation_unknown';

/** A Db over a pool of its own, with a statement timeout as a node's pool has, only shorter. */
function dbWithTimeout(url: string, statementTimeoutMs: number, max = 2): Db {
  const pool = new pg.Pool({ connectionString: url, max, statement_timeout: statementTimeoutMs });
  const kysely = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  return {
    kind: 'postgres',
    kysely,
    connectionString: url,
    ping: async () => {
      await sql`select 1`.execute(kysely);
      return undefined;
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
  /** A transaction holding a snapshot: a concurrent build started now waits until it ends. */
  const holdingSnapshot = async () => {
    const reader = await client();
    await reader.query('begin isolation level repeatable read');
    await reader.query('select count(*) from images');
    return { end: () => reader.query('commit') };
  };
  const indexState = async () =>
    (
      await sql<{ valid: boolean; def: string }>`
        select i.indisvalid as valid, pg_get_indexdef(i.indexrelid) as def
        from pg_index i where i.indexrelid = to_regclass('images_animation_unknown')`.execute(db.kysely)
    ).rows[0];
  /** Whether the build's lock is free (asked from a session of its own, in this database). */
  const lockFree = async () => {
    const c = await client();
    const got = (await c.query<{ got: boolean }>('select pg_try_advisory_lock(hashtext($1)) as got', [LOCK]))
      .rows[0]!.got;
    if (got) await c.query('select pg_advisory_unlock(hashtext($1))', [LOCK]);
    return got;
  };
  /** Resolves once this database's build is running (waiting for the held snapshot). */
  const buildWaiting = async () => {
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline) {
      const r = await sql<{ n: string }>`
        select count(*) as n from pg_stat_activity
        where datname = current_database()
          and query ilike 'create index concurrently if not exists images_animation_unknown%'
          and wait_event_type = 'Lock'`.execute(db.kysely);
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
      select 'o' || (n % 5), 'k/' || n,
        (array['image/webp', 'image/png', 'image/jpeg', 'image/avif'])[n % 4 + 1], 100,
        timestamptz '2026-01-01' + n * interval '1 second'
      from generate_series(1, ${ROWS}) n`.execute(db.kysely);
    await sql`analyze images`.execute(db.kysely);
  }, 60_000);
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.end().catch(() => {})));
    await Promise.all(opened.splice(0).map((d) => d.close()));
    await sql`drop index if exists images_animation_unknown`.execute(db.kysely);
  });
  afterAll(async () => {
    await db?.close();
    await pgdb?.drop();
  });

  it("outlasts the pool's statement timeout on a connection of its own, and leaves nothing on the pool's", async () => {
    // One pooled connection with a 1 s statement timeout: what a request may take.
    const short = dbWithTimeout(pgdb.url, 1000, 1);
    opened.push(short);
    // On the pool, a build that takes longer is cancelled: what a migration's build met.
    let held = await holdingSnapshot();
    await expect(
      sql`create index concurrently probe_index on images (created_at, id) where animated is null`.execute(
        short.kysely,
      ),
    ).rejects.toMatchObject({ code: '57014' });
    await held.end();
    await sql`drop index if exists probe_index`.execute(db.kysely);

    const { logger, logs } = captureLogger();
    const logged = () => logs.map((l) => (JSON.parse(l) as { msg: string }).msg);
    held = await holdingSnapshot();
    const building = ensureWorkListIndex(short, ANIMATION_UNKNOWN_INDEX, { logger });
    await buildWaiting();
    // Twice the pool's statement timeout.
    await new Promise((r) => setTimeout(r, 2000));
    await held.end();
    expect(await building).toBe('ready');
    expect(logged()).toEqual(['work-list index being built', 'work-list index built']);
    const state = await indexState();
    expect(state?.valid).toBe(true);
    expect(state?.def).toContain('WHERE ((animated IS NULL) AND (deleted_at IS NULL)');
    // The pool's connection kept its timeout, and no lock is left anywhere.
    expect(
      (await sql<{ t: string }>`select current_setting('statement_timeout') as t`.execute(short.kysely))
        .rows[0]!.t,
    ).toBe('1s');
    expect(await lockFree()).toBe(true);
    // Already there: nothing to do, nothing logged.
    expect(await ensureWorkListIndex(short, ANIMATION_UNKNOWN_INDEX, { logger })).toBe('ready');
    expect(logged()).toHaveLength(2);
  }, 60_000);

  it("is the work list's plan: the backfill's statement rides on it", async () => {
    await createImagesRepo(db).prepareAnimationWorkList();
    const c = await client();
    await c.query('set enable_seqscan = off');
    const plan = await c.query(`explain select * from images
      where deleted_at is null and animated is null and content_type in ('image/webp', 'image/png', 'image/avif')
      order by created_at, id limit 100`);
    expect(plan.rows.map((r) => r['QUERY PLAN']).join('\n')).toContain('images_animation_unknown');
  });

  it('lets uploads, deletes and pages go on while it builds, and one process builds at a time', async () => {
    const held = await holdingSnapshot();
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

    await held.end();
    expect(await building).toBe('ready');
    expect((await indexState())?.valid).toBe(true);
    const listed = await createImagesRepo(db).animationUnknown(undefined, ROWS * 2);
    expect(listed.some((r) => r.objectKey === 'k/during')).toBe(true);
    expect(listed.some((r) => r.objectKey === 'k/1')).toBe(false);
    expect(await lockFree()).toBe(true);
  }, 60_000);

  it('stops a build when told (shutdown), and the next call builds the invalid leftover again', async () => {
    const held = await holdingSnapshot();
    const stop = new AbortController();
    const building = ensureWorkListIndex(db, ANIMATION_UNKNOWN_INDEX, { signal: stop.signal });
    await buildWaiting();
    stop.abort();
    expect(await building).toBe('stopped');
    await held.end();
    // What a stopped concurrent build leaves: an invalid index, still kept up by every write.
    expect((await indexState())?.valid).toBe(false);
    expect(await lockFree()).toBe(true);

    expect(await ensureWorkListIndex(db, ANIMATION_UNKNOWN_INDEX)).toBe('ready');
    expect((await indexState())?.valid).toBe(true);
    // Stopped before it began: nothing built, nothing left.
    await sql`drop index images_animation_unknown`.execute(db.kysely);
    expect(await ensureWorkListIndex(db, ANIMATION_UNKNOWN_INDEX, { signal: AbortSignal.abort() })).toBe(
      'stopped',
    );
    expect(await indexState()).toBeUndefined();
  }, 60_000);

  it("waits for older transactions however short the database's lock_timeout", async () => {
    const name = new URL(pgdb.url).pathname.slice(1);
    // What an operator may set for the application's sessions; the build's session is one of them.
    await sql.raw(`alter database ${name} set lock_timeout = '50ms'`).execute(db.kysely);
    try {
      const held = await holdingSnapshot();
      const building = ensureWorkListIndex(db, ANIMATION_UNKNOWN_INDEX);
      await buildWaiting();
      // Six times the lock timeout, waiting for the older transaction's end.
      await new Promise((r) => setTimeout(r, 300));
      await held.end();
      expect(await building).toBe('ready');
      expect((await indexState())?.valid).toBe(true);
    } finally {
      await sql.raw(`alter database ${name} reset lock_timeout`).execute(db.kysely);
    }
  }, 60_000);
});

describe('a work-list index build that fails', () => {
  let pgdb: Awaited<ReturnType<typeof createTestDatabase>>;
  let db: Db;
  let name: string;
  beforeAll(async () => {
    pgdb = await createTestDatabase();
    name = new URL(pgdb.url).pathname.slice(1);
    db = await openDatabase({ databaseUrl: pgdb.url, dataDir: os.tmpdir() });
    // Enough rows in the work list that the build's sort spills past 1 MB to a temporary file,
    // which the database's temp_file_limit then refuses: a real failure, as a full disk is.
    await sql`insert into images (owner_id, object_key, content_type, byte_size, created_at)
      select 'o', 'k/' || n, 'image/png', 100, timestamptz '2026-01-01' + n * interval '1 second'
      from generate_series(1, 60000) n`.execute(db.kysely);
    await sql.raw(`alter database ${name} set maintenance_work_mem = '1MB'`).execute(db.kysely);
    await sql.raw(`alter database ${name} set temp_file_limit = '64kB'`).execute(db.kysely);
  }, 60_000);
  afterAll(async () => {
    await db?.close();
    await pgdb?.drop();
  });

  it('is not tried again by every run: the runs skip it for a wait that doubles, until a build succeeds', async () => {
    const { logger, logs } = captureLogger();
    const entries = () => logs.map((l) => JSON.parse(l) as { msg: string; retryInMs?: number; err?: string });
    const builds = () => entries().filter((e) => e.msg === 'work-list index being built').length;
    const failures = () => entries().filter((e) => e.msg.includes('could not be built'));
    const clock = new FakeClock();
    const minute = 60_000;
    const backfill = new AnimationBackfill(
      {
        storage: createLocalStorage({
          root: os.tmpdir(),
          publicUrl: 'http://gw.test',
          secret: 'x'.repeat(32),
        }),
        images: createImagesRepo(db),
        events: new MemoryEventBus(),
        metrics: createMetrics(),
        logger,
        clock,
      },
      { timeoutSeconds: 5 },
    );
    expect(await backfill.run()).toMatchObject({ visited: 0, complete: false });
    expect(builds()).toBe(1);
    expect(failures()).toHaveLength(1);
    expect(failures()[0]).toMatchObject({ retryInMs: 5 * minute });
    expect(failures()[0]!.err).toContain('temp_file_limit');

    // The runs within the wait do not build (nor scan the table).
    clock.advance(5 * minute - 1);
    expect(await backfill.run()).toMatchObject({ visited: 0 });
    expect(builds()).toBe(1);

    // After it: tried again, failed again, and the wait doubles.
    clock.advance(1);
    await backfill.run();
    expect(builds()).toBe(2);
    expect(failures().map((f) => f.retryInMs)).toEqual([5 * minute, 10 * minute]);

    // A run that finds another worker building says nothing of this one's failures: the next
    // failure still doubles the wait.
    clock.advance(10 * minute);
    const other = new pg.Client({ connectionString: pgdb.url });
    await other.connect();
    try {
      await other.query(
        `select pg_advisory_lock(hashtext('signet.work-list-index.images_animation_unknown'))`,
      );
      await backfill.run();
    } finally {
      await other.end();
    }
    expect(builds()).toBe(2);
    await backfill.run();
    expect(builds()).toBe(3);
    expect(failures().map((f) => f.retryInMs)).toEqual([5 * minute, 10 * minute, 20 * minute]);

    // The cause gone (and the rows done, so the walk is short): the next try builds.
    await sql.raw(`alter database ${name} reset temp_file_limit`).execute(db.kysely);
    await sql`update images set animated = false`.execute(db.kysely);
    clock.advance(20 * minute);
    expect(await backfill.run()).toMatchObject({ visited: 0, complete: true });
    expect(builds()).toBe(4);
    const valid = await sql<{ valid: boolean }>`
      select indisvalid as valid from pg_index where indexrelid = to_regclass('images_animation_unknown')`.execute(
      db.kysely,
    );
    expect(valid.rows[0]?.valid).toBe(true);
    expect(failures()).toHaveLength(3);
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
        clock: systemClock,
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

  it('builds it at start, in place, before anything is served (one process, a small table)', async () => {
    const r = await sql<{ indexdef: string }>`
      select indexdef from pg_indexes where indexname = 'images_animation_unknown'`.execute(db.kysely);
    expect(r.rows[0]?.indexdef).toMatch(/animated IS NULL/);
    expect(await createImagesRepo(db).prepareAnimationWorkList()).toBe('ready');
  });
});
