import { randomUUID } from 'node:crypto';
import os from 'node:os';
import { sql } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkDependencies } from '../../src/cli/check.js';
import { openDatabase } from '../../src/db/connect.js';
import { createImagesRepo } from '../../src/db/images-repo.js';
import { LATEST_MIGRATION } from '../../src/db/migrations.js';
import { ANIMATION_UNKNOWN_INDEX, ensureWorkListIndex } from '../../src/db/work-list-indexes.js';
import { JPEG_5x3 } from '../fixtures/images.js';
import { createTestDatabase } from '../support/database.js';
import { testRedisUrl } from '../support/env.js';
import { type Harness, startHarness } from '../support/harness.js';
import { PgBouncer } from '../support/pgbouncer.js';
import { uploadFile } from '../support/upload.js';

// Signet behind a real PgBouncer in transaction mode, as docs/operations.md ("PgBouncer") says
// to run it with dozens of nodes: the pools on DATABASE_URL send no startup parameter PgBouncer
// refuses, and what needs a session (the migrations' lock, the work-list index builds) runs on
// DATABASE_DIRECT_URL.

describe('behind PgBouncer in transaction mode', () => {
  let bouncer: PgBouncer;
  let pgdb: Awaited<ReturnType<typeof createTestDatabase>>;
  let name: string;

  beforeAll(async () => {
    bouncer = await PgBouncer.start({ poolMode: 'transaction', poolSize: 2 });
    pgdb = await createTestDatabase();
    name = new URL(pgdb.url).pathname.slice(1);
  }, 30_000);
  afterAll(async () => {
    await bouncer?.stop();
    await pgdb?.drop();
  });

  /** Advisory locks held in the test database, by any session (the pooler's server connections included). */
  const advisoryLocksHeld = async () => {
    const c = new pg.Client({ connectionString: pgdb.url });
    await c.connect();
    try {
      const r = await c.query<{ n: string }>(
        `select count(*) as n from pg_locks
         where locktype = 'advisory' and granted and database = (select oid from pg_database where datname = $1)`,
        [name],
      );
      return Number(r.rows[0]!.n);
    } finally {
      await c.end();
    }
  };

  it('without DATABASE_DIRECT_URL a node does not start, and says what to set', async () => {
    await expect(openDatabase({ databaseUrl: bouncer.url(name), dataDir: os.tmpdir() })).rejects.toThrow(
      /unsupported startup parameter: statement_timeout.*set DATABASE_DIRECT_URL to PostgreSQL itself/,
    );
  });

  it('a DATABASE_URL that does not reach the database DATABASE_DIRECT_URL names stops the start', async () => {
    const other = await createTestDatabase();
    try {
      await expect(
        openDatabase({
          databaseUrl: bouncer.url(new URL(other.url).pathname.slice(1)),
          directUrl: pgdb.url,
          dataDir: os.tmpdir(),
        }),
      ).rejects.toThrow(/DATABASE_URL does not reach the database DATABASE_DIRECT_URL migrated/);
    } finally {
      await other.drop();
    }
  });

  it('a DATABASE_URL that reaches another Signet database, migrated as far, stops the start too', async () => {
    const other = await createTestDatabase();
    try {
      // Another deployment's database (or a copy): its migrations are the same, its rows are not.
      const migrated = await openDatabase({ databaseUrl: other.url, dataDir: os.tmpdir() });
      await migrated.close();
      const otherName = new URL(other.url).pathname.slice(1);
      await expect(
        openDatabase({ databaseUrl: bouncer.url(otherName), directUrl: pgdb.url, dataDir: os.tmpdir() }),
      ).rejects.toThrow(
        new RegExp(
          `DATABASE_URL does not reach the database DATABASE_DIRECT_URL migrated: DATABASE_URL reaches ${otherName} \\(oid \\d+, server started at [\\d.]+ s\\), DATABASE_DIRECT_URL ${name} \\(oid`,
        ),
      );
    } finally {
      await other.drop();
    }
  });

  it("the same database is recognised whatever time zone the two URLs' sessions use", async () => {
    // The direct URL's role may set its own TimeZone (a timestamp's text would then differ).
    const direct = new URL(pgdb.url);
    direct.searchParams.set('options', '-c TimeZone=Pacific/Auckland');
    const db = await openDatabase({
      databaseUrl: bouncer.url(name),
      directUrl: direct.toString(),
      dataDir: os.tmpdir(),
    });
    await db.close();
  });

  it('with it, nodes starting together migrate once, serve through the pooler and leave no session lock on its connections', async () => {
    const open = () =>
      openDatabase({ databaseUrl: bouncer.url(name), directUrl: pgdb.url, dataDir: os.tmpdir() });
    // A rolling start: three nodes at once.
    const dbs = await Promise.all([open(), open(), open()]);
    try {
      const migrations = await sql<{
        name: string;
      }>`select name from signet_migrations order by name`.execute(dbs[0]!.kysely);
      expect(migrations.rows.map((r) => r.name)).toEqual([
        '001_images',
        '002_visibility',
        '003_images_placeholder',
        '004_images_region',
        '005_images_variants',
        '006_images_animated',
        '007_images_created_at_ms',
        '008_signet_state',
      ]);
      // Writes and pages through the pooler, from every node.
      for (const [i, db] of dbs.entries()) {
        await createImagesRepo(db).insert({
          id: randomUUID(),
          ownerId: 'alice',
          objectKey: `k/${i}`,
          contentType: 'image/png',
          byteSize: 10,
          width: 1,
          height: 1,
          etag: null,
          animated: null,
          createdAt: new Date(),
        });
      }
      const page = await createImagesRepo(dbs[1]!).listPage('alice', 10, undefined, true);
      expect(page.rows).toHaveLength(3);
      expect(page.totalCount).toBe(3);
      // The pooled connections carry no statement timeout of Signet's (the role's applies).
      expect(
        (await sql<{ t: string }>`select current_setting('statement_timeout') as t`.execute(dbs[2]!.kysely))
          .rows[0]!.t,
      ).toBe('0');
      // The work-list index, built on the direct connection by one of them.
      const built = await Promise.all(dbs.map((db) => ensureWorkListIndex(db, ANIMATION_UNKNOWN_INDEX)));
      expect(built).toContain('ready');
      expect(await ensureWorkListIndex(dbs[0]!, ANIMATION_UNKNOWN_INDEX)).toBe('ready');
      // The pooler keeps its server connections; none of them holds a session's lock.
      expect(await advisoryLocksHeld()).toBe(0);
    } finally {
      await Promise.all(dbs.map((db) => db.close()));
    }
  }, 60_000);
});

describe('DATABASE_DIRECT_URL on a PgBouncer pool in session mode', () => {
  let pooler: PgBouncer;
  let session: PgBouncer;
  let pgdb: Awaited<ReturnType<typeof createTestDatabase>>;

  beforeAll(async () => {
    [pooler, session] = await Promise.all([
      PgBouncer.start({ poolMode: 'transaction' }),
      PgBouncer.start({ poolMode: 'session' }),
    ]);
    pgdb = await createTestDatabase();
  }, 30_000);
  afterAll(async () => {
    await Promise.all([pooler?.stop(), session?.stop()]);
    await pgdb?.drop();
  });

  it('migrates and builds the work-list index through it (no startup parameter it would refuse)', async () => {
    const name = new URL(pgdb.url).pathname.slice(1);
    const db = await openDatabase({
      databaseUrl: pooler.url(name),
      directUrl: session.url(name),
      dataDir: os.tmpdir(),
    });
    try {
      const done = await sql<{ name: string }>`select max(name) as name from signet_migrations`.execute(
        db.kysely,
      );
      expect(done.rows[0]!.name).toBe(LATEST_MIGRATION);
      expect(await ensureWorkListIndex(db, ANIMATION_UNKNOWN_INDEX)).toBe('ready');
    } finally {
      await db.close();
    }
  });
});

describe('a gateway behind PgBouncer in transaction mode', () => {
  let bouncer: PgBouncer;
  let pgdb: Awaited<ReturnType<typeof createTestDatabase>>;
  let h: Harness;

  beforeAll(async () => {
    bouncer = await PgBouncer.start({ poolMode: 'transaction', poolSize: 3 });
    pgdb = await createTestDatabase();
    const name = new URL(pgdb.url).pathname.slice(1);
    h = await startHarness({
      redis: testRedisUrl(),
      env: { DATABASE_URL: bouncer.url(name), DATABASE_DIRECT_URL: pgdb.url },
    });
  }, 60_000);
  afterAll(async () => {
    await h?.close();
    await bouncer?.stop();
    await pgdb?.drop();
  });

  it('signet check reaches the database through the pooler and the direct URL', async () => {
    const rows = new Map((await checkDependencies(h.config)).map((r) => [r.name, r]));
    expect(rows.get('database')).toMatchObject({ status: 'ok' });
    expect(rows.get('database-direct')).toMatchObject({ status: 'ok' });
  });

  it('uploads, pages and proxies as on PostgreSQL itself', async () => {
    const up = await uploadFile(h, JPEG_5x3, { type: 'image/jpeg', name: 'a.jpg' });
    expect(up.errors).toBeUndefined();
    const id = up.data!.uploadImage.id;
    const res = await h.gql<{
      images: { totalCount: number; edges: { node: { id: string; proxyUrl: string } }[] };
    }>('query { images(first: 10) { totalCount edges { node { id proxyUrl } } } }');
    expect(res.errors).toBeUndefined();
    expect(res.data!.images.totalCount).toBe(1);
    const node = res.data!.images.edges[0]!.node;
    expect(node.id).toBe(id);
    const proxied = await fetch(node.proxyUrl, { redirect: 'manual' });
    expect(proxied.status).toBe(302);
    // The test role has no statement timeout of its own: the start said so.
    expect(h.logs.join('')).toContain("DATABASE_URL's sessions have no statement timeout");
  });
});
