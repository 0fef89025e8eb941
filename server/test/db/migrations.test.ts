import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Kysely, PostgresDialect, sql } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase } from '../../src/db/connect.js';
import { createImagesRepo } from '../../src/db/images-repo.js';
import { type MigrationEvent, migrateTo, migrateToLatest } from '../../src/db/migrations.js';
import type { Database, Db } from '../../src/db/types.js';
import { createTestDatabase } from '../support/database.js';
import { testDatabaseUrl } from '../support/env.js';

const id = (n: number) => `00000000-0000-4000-8000-0000000000${String(n).padStart(2, '0')}`;

/**
 * A database of `kind` opened without migrating (a test migrates it to where it starts), for the
 * describe block it is called in: a fresh PostgreSQL database, or an embedded PGlite cluster.
 */
function unmigratedDatabase(kind: 'postgres' | 'pglite', opened: (db: Db) => void): void {
  let dir: string;
  let pg: Awaited<ReturnType<typeof createTestDatabase>> | undefined;
  let db: Db | undefined;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'signet-migrations-'));
    if (kind === 'postgres') pg = await createTestDatabase();
    db = await openDatabase({ databaseUrl: pg?.url, dataDir: dir, migrate: false });
    opened(db);
  }, 60_000); // PGlite's first start takes seconds on a busy machine
  afterAll(async () => {
    await db?.close();
    await pg?.drop();
    await rm(dir, { recursive: true, force: true });
  });
}

// Migration 006 (`animated`, docs/architecture.md, "Data") over rows an older version wrote, on
// both databases Signet runs on: a fresh PostgreSQL database, and an embedded PGlite cluster.
describe.each(['postgres', 'pglite'] as const)('migration 006_images_animated (%s)', (kind) => {
  let db: Db;
  unmigratedDatabase(kind, (opened) => {
    db = opened;
  });

  const animatedOf = async () =>
    Object.fromEntries(
      (
        await sql<{
          id: string;
          animated: boolean | null;
        }>`select id, animated from images order by id`.execute(db.kysely)
      ).rows.map((r) => [r.id, r.animated]),
    );

  it('leaves the rows it finds unknown (null), gives later rows false, and lists the unknown WebP, PNG and AVIF', async () => {
    await migrateTo(db.kysely, '005_images_variants');
    // Rows as version 005 wrote them, one a second apart.
    const rows: [number, string, boolean][] = [
      [1, 'image/webp', false],
      [2, 'image/png', false],
      [3, 'image/jpeg', false],
      [4, 'image/avif', false],
      [5, 'image/gif', false],
      [6, 'image/webp', true], // deleted
      [7, 'image/png', false],
    ];
    for (const [n, type, deleted] of rows) {
      await sql`insert into images (id, owner_id, object_key, content_type, byte_size, width, height, created_at, deleted_at)
        values (${id(n)}, 'alice', ${`k/${n}`}, ${type}, 100, 4, 3,
          timestamptz '2026-01-01T00:00:00Z' + ${n} * interval '1 second',
          ${deleted ? new Date('2026-02-01T00:00:00Z') : null})`.execute(db.kysely);
    }
    await migrateToLatest(db.kysely);
    expect(Object.values(await animatedOf())).toEqual(rows.map(() => null));

    const repo = createImagesRepo(db);
    // The backfill's work list: live rows of a type that can be animated, oldest first, paged.
    const unknown = await repo.animationUnknown(undefined, 10);
    expect(unknown.map((r) => r.id)).toEqual([id(1), id(2), id(4), id(7)]);
    expect(unknown.every((r) => r.animated === null)).toBe(true);
    const first = await repo.animationUnknown(undefined, 2);
    const last = first.at(-1)!;
    const next = await repo.animationUnknown({ createdAt: last.createdAt, id: last.id }, 2);
    expect([...first, ...next].map((r) => r.id)).toEqual([id(1), id(2), id(4), id(7)]);
    // The work list's index is the backfill's to build (db/work-list-indexes.ts), not the
    // migration's: a build in the migration's transaction held its lock on images while it ran.
    const indexdef = async () =>
      (
        await sql<{ indexdef: string }>`
          select indexdef from pg_indexes where indexname = 'images_animation_unknown'`.execute(db.kysely)
      ).rows[0]?.indexdef;
    expect(await indexdef()).toBeUndefined();
    expect(await repo.prepareAnimationWorkList()).toBe('ready');
    expect(await indexdef()).toMatch(/animated IS NULL/);

    // Recording: once for an unknown row; `true` over `false` (a renderer saw frames); never
    // `false` over `true`; never on a deleted row.
    expect(await repo.recordAnimation(id(1), true)).toBe(true);
    expect(await repo.recordAnimation(id(1), false)).toBe(false);
    expect(await repo.recordAnimation(id(2), false)).toBe(true);
    expect(await repo.recordAnimation(id(2), true)).toBe(true);
    expect(await repo.recordAnimation(id(6), true)).toBe(false);
    expect(await repo.animationUnknown(undefined, 10)).toMatchObject([{ id: id(4) }, { id: id(7) }]);

    // Rows made from now on: what the inserter says (every insert of this version says).
    await repo.insert({
      id: id(10),
      ownerId: 'alice',
      objectKey: 'k/10',
      contentType: 'image/png',
      byteSize: 100,
      width: 4,
      height: 3,
      etag: null,
      animated: false,
      createdAt: new Date(),
    });
    await repo.insert({
      id: id(11),
      ownerId: 'alice',
      objectKey: 'k/11',
      contentType: 'image/webp',
      byteSize: 100,
      width: 4,
      height: 3,
      etag: null,
      animated: true,
      createdAt: new Date(),
    });
    // A writer that does not name the column (a node of the version before 006, still serving
    // during a rolling upgrade): not looked at, so the backfill reads it. A default of false would
    // have recorded its animated upload as a still for good.
    await sql`insert into images (id, owner_id, object_key, content_type, byte_size)
      values (${id(12)}, 'alice', 'k/12', 'image/png', 100)`.execute(db.kysely);
    expect(
      await repo.insertImported([
        {
          id: id(13),
          ownerId: 'alice',
          objectKey: 'k/13',
          contentType: 'image/avif',
          byteSize: 100,
          width: 4,
          height: 3,
          etag: null,
          animated: true,
          createdAt: new Date(),
        },
      ]),
    ).toEqual(['k/13']);
    const now = await animatedOf();
    expect([now[id(1)], now[id(2)], now[id(3)], now[id(4)]]).toEqual([true, true, null, null]);
    expect([now[id(10)], now[id(11)], now[id(12)], now[id(13)]]).toEqual([false, true, null, true]);
    expect((await repo.animationUnknown(undefined, 10)).map((r) => r.id)).toContain(id(12));
    // A page row carries it.
    const page = await repo.listPage('alice', 20, undefined, false);
    expect(page.rows.find((r) => r.id === id(11))?.animated).toBe(true);

    // Down and up again: the column and its index go, and come back unknown for every row.
    await migrateTo(db.kysely, '005_images_variants');
    const columns = await sql<{ column_name: string }>`
      select column_name from information_schema.columns where table_name = 'images'`.execute(db.kysely);
    expect(columns.rows.map((c) => c.column_name)).not.toContain('animated');
    await migrateToLatest(db.kysely);
    expect(new Set(Object.values(await animatedOf()))).toEqual(new Set([null]));
  });
});

// Migration 007 (created_at at milliseconds): rows written in SQL, with `now()` or any time of
// microseconds, are paged exactly once. Before it the cursor carried a time truncated to the
// millisecond, and the keyset skipped every row between it and the real one.
describe.each(['postgres', 'pglite'] as const)('migration 007_images_created_at_ms (%s)', (kind) => {
  let db: Db;
  unmigratedDatabase(kind, (opened) => {
    db = opened;
  });

  /** Rows of `owner` inserted in SQL: all at one transaction's `now()`, or µs apart. */
  const insertInSql = (owner: string, n: number, at: 'now' | 'microseconds') =>
    sql`insert into images (owner_id, object_key, content_type, byte_size, created_at)
      select ${owner}, ${owner} || '/' || g, 'image/png', 10,
        ${at === 'now' ? sql`now()` : sql`timestamptz '2026-01-01T00:00:00.000001Z' + g * interval '7 microseconds'`}
      from generate_series(1, ${n}) g`.execute(db.kysely);

  /** Every page of `owner`'s images, 7 at a time, as ids in the order seen. */
  const walk = async (owner: string) => {
    const repo = createImagesRepo(db);
    const seen: string[] = [];
    let after: { createdAt: Date; id: string } | undefined;
    for (let pages = 0; pages < 100; pages++) {
      const page = await repo.listPage(owner, 7, after, false);
      seen.push(...page.rows.map((r) => r.id));
      if (!page.hasNextPage) break;
      const last = page.rows.at(-1)!;
      after = { createdAt: last.createdAt, id: last.id };
    }
    return seen;
  };

  it('rounds the times already there, and every later one, to the millisecond: each row is paged once', async () => {
    await migrateTo(db.kysely, '006_images_animated');
    await insertInSql('before-now', 30, 'now');
    await insertInSql('before-us', 40, 'microseconds');
    await migrateToLatest(db.kysely);
    await insertInSql('after-now', 30, 'now');
    await insertInSql('after-us', 40, 'microseconds');

    const off = await sql<{ n: number }>`
      select count(*)::int as n from images where created_at <> date_trunc('milliseconds', created_at)`.execute(
      db.kysely,
    );
    expect(off.rows[0]!.n).toBe(0);
    for (const [owner, n] of [
      ['before-now', 30],
      ['before-us', 40],
      ['after-now', 30],
      ['after-us', 40],
    ] as const) {
      const seen = await walk(owner);
      expect(seen.length, owner).toBe(n);
      expect(new Set(seen).size, owner).toBe(n);
    }
  });
});

// Migration 007 rewrites the table under an exclusive lock (docs/operations.md, "Upgrading"). On
// a large table that takes longer than the pools' statement timeout, which would cancel it at
// every start; and waiting for a lock must end, not queue every page behind the migration.
describe('migration 007_images_created_at_ms under the pools’ timeouts (postgres)', () => {
  let db: Db;
  let dbName: string;
  unmigratedDatabase('postgres', (opened) => {
    db = opened;
  });
  beforeAll(async () => {
    dbName = (await sql<{ n: string }>`select current_database() as n`.execute(db.kysely)).rows[0]!.n;
    await migrateTo(db.kysely, '006_images_animated');
    // Enough rows that the rewrite outlasts the short statement timeout below (~0.3-1 s here).
    await sql`insert into images (owner_id, object_key, content_type, byte_size, created_at)
      select 'big', 'big/' || g, 'image/png', 10,
        timestamptz '2026-01-01T00:00:00.000001Z' + g * interval '1 microsecond'
      from generate_series(1, 150000) g`.execute(db.kysely);
  }, 60_000);

  const dbUrl = () => {
    const u = new URL(testDatabaseUrl());
    u.pathname = `/${dbName}`;
    return u.toString();
  };
  /** A Kysely on this database whose connections cancel any statement after `ms` (as the pools do). */
  const withStatementTimeout = (ms: number) => {
    const pool = new pg.Pool({ connectionString: dbUrl(), max: 2, statement_timeout: ms });
    return new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  };
  const createdAtType = async () =>
    (
      await sql<{ t: string }>`select format_type(atttypid, atttypmod) as t from pg_attribute
        where attrelid = 'images'::regclass and attname = 'created_at'`.execute(db.kysely)
    ).rows[0]!.t;

  it('gives up waiting for a lock after 10 s and changes nothing', async () => {
    const holder = new pg.Client({ connectionString: dbUrl() });
    await holder.connect();
    try {
      await holder.query('begin');
      await holder.query('lock table images in access share mode');
      const started = Date.now();
      const migrating = withStatementTimeout(25_000);
      try {
        await expect(migrateToLatest(migrating)).rejects.toThrow(
          /database migration failed at 007_images_created_at_ms: .*lock timeout/,
        );
      } finally {
        await migrating.destroy();
      }
      // Its own lock timeout, not the statement timeout of 25 s.
      expect(Date.now() - started).toBeLessThan(20_000);
      expect(await createdAtType()).toBe('timestamp with time zone');
    } finally {
      await holder.query('rollback');
      await holder.end();
    }
  }, 60_000);

  it('is not cancelled by the pools’ statement timeout, however long the rewrite takes', async () => {
    const migrating = withStatementTimeout(50);
    try {
      // The timeout holds on this pool: the rewrite alone outlasts it.
      await expect(
        sql`select count(*) from images a, generate_series(1, 20) g where a.owner_id = 'big'`.execute(
          migrating,
        ),
      ).rejects.toThrow(/statement timeout/);
      await migrateToLatest(migrating);
    } finally {
      await migrating.destroy();
    }
    expect(await createdAtType()).toBe('timestamp(3) with time zone');
    const off = await sql<{ n: number }>`
      select count(*)::int as n from images where created_at <> date_trunc('milliseconds', created_at)`.execute(
      db.kysely,
    );
    expect(off.rows[0]!.n).toBe(0);
  }, 60_000);
});

// A rolling upgrade keeps nodes of the version before running, restarting and being added while
// the new version's migrations are in (docs/operations.md, "Upgrading"), and a rollback is a
// redeploy of the version before: a database a newer version migrated must not stop it.
describe.each(['postgres', 'pglite'] as const)('a database migrated by a newer version (%s)', (kind) => {
  let db: Db;
  unmigratedDatabase(kind, (opened) => {
    db = opened;
  });

  it('runs on it, says so, and changes nothing; one that also lacks a migration it knows is refused', async () => {
    await migrateToLatest(db.kysely);
    await sql`insert into signet_migrations (name, timestamp) values ('999_from_a_newer_version', now()::text)`.execute(
      db.kysely,
    );
    const events: MigrationEvent[] = [];
    await migrateToLatest(db.kysely, (e) => events.push(e));
    expect(events).toEqual([{ kind: 'newer', unknown: ['999_from_a_newer_version'] }]);

    await sql`delete from signet_migrations where name = '007_images_created_at_ms'`.execute(db.kysely);
    await expect(migrateToLatest(db.kysely)).rejects.toThrow(
      /does not know \(999_from_a_newer_version\) and lacks some it knows \(007_images_created_at_ms\)/,
    );
  });
});

// Nodes started together: one runs the migrations, the others wait for its lock (Kysely's
// advisory lock) however long the migrations take, instead of failing their start when the wait
// passes the requests' 10 s statement timeout.
describe('a node starting while another runs the migrations (postgres)', () => {
  let pgdb: Awaited<ReturnType<typeof createTestDatabase>>;
  beforeAll(async () => {
    pgdb = await createTestDatabase();
  });
  afterAll(async () => {
    await pgdb?.drop();
  });

  it('waits for the migration lock past the 10 s statement timeout, then starts', async () => {
    const holder = new pg.Client({ connectionString: pgdb.url });
    await holder.connect();
    // Kysely's migration lock on PostgreSQL (its PostgresAdapter), held as a long migration would.
    await holder.query('select pg_advisory_lock(3853314791062309107)');
    const events: MigrationEvent[] = [];
    const started = Date.now();
    const opening = openDatabase({
      databaseUrl: pgdb.url,
      dataDir: '/nonexistent',
      onMigration: (e) => events.push(e),
    });
    const held = new Promise((resolve) => setTimeout(resolve, 11_000)).then(async () => {
      await holder.query('select pg_advisory_unlock(3853314791062309107)');
      await holder.end();
    });
    const opened = await opening;
    await held;
    try {
      expect(Date.now() - started).toBeGreaterThanOrEqual(11_000);
      expect(events.map((e) => e.kind)).toEqual(['running', 'done']);
      expect(
        (await sql<{ n: number }>`select count(*)::int as n from images`.execute(opened.kysely)).rows[0]!.n,
      ).toBe(0);
    } finally {
      await opened.close();
    }
  }, 40_000);
});
