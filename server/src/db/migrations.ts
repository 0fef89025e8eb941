import {
  type Kysely,
  type Migration,
  type MigrationProvider,
  type MigrationResultSet,
  Migrator,
  sql,
} from 'kysely';
import type { Database } from './types.js';
import { describeError } from './unavailable.js';

// Migrations live in code (not files on disk), so the built server and the tests run the same
// ones without a path to resolve.
const migrations: Record<string, Migration> = {
  '001_images': {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('images')
        .ifNotExists()
        .addColumn('id', 'uuid', (c) => c.primaryKey().defaultTo(sql`gen_random_uuid()`))
        .addColumn('owner_id', 'text', (c) => c.notNull())
        .addColumn('object_key', 'text', (c) => c.notNull().unique())
        .addColumn('content_type', 'text', (c) => c.notNull())
        .addColumn('byte_size', 'bigint', (c) => c.notNull().check(sql`byte_size >= 0`))
        .addColumn('width', 'integer')
        .addColumn('height', 'integer')
        .addColumn('etag', 'text')
        .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
        .addColumn('deleted_at', 'timestamptz')
        .execute();
      // The page query's keyset: newest first within one owner, live rows only.
      await sql`create index if not exists images_owner_created_id
        on images (owner_id, created_at desc, id desc) where deleted_at is null`.execute(db);
    },
    async down(db: Kysely<unknown>) {
      await db.schema.dropTable('images').execute();
    },
  },
  // Who sees what (docs/architecture.md, "Who sees what"): existing rows stay private, as they
  // were. A text with a check rather than an enum type: adding a value later is one statement.
  '002_visibility': {
    async up(db: Kysely<unknown>) {
      await sql`alter table images add column if not exists visibility text not null default 'private'
        constraint images_visibility_check check (visibility in ('private', 'public'))`.execute(db);
    },
    async down(db: Kysely<unknown>) {
      await db.schema.alterTable('images').dropColumn('visibility').execute();
    },
  },
  // The ThumbHash of the image (base64), computed after upload from the stored object; null until
  // then, '' when the object could not be decoded (never retried). See docs/architecture.md.
  '003_images_placeholder': {
    async up(db: Kysely<unknown>) {
      await db.schema.alterTable('images').addColumn('placeholder', 'text').execute();
      // The backfill walks live rows without a placeholder, oldest first.
      await sql`create index if not exists images_placeholder_missing
        on images (created_at, id) where placeholder is null and deleted_at is null`.execute(db);
    },
    async down(db: Kysely<unknown>) {
      await sql`drop index if exists images_placeholder_missing`.execute(db);
      await db.schema.alterTable('images').dropColumn('placeholder').execute();
    },
  },
  // Several regions (docs/operations.md, "Several regions"): the region whose bucket an upload
  // went to (null: one region, or before regions were configured — every bucket has it), and
  // the regions whose bucket the replication check has seen it in. The page query reads both
  // with the row, so choosing a region's bucket costs no statement of its own.
  '004_images_region': {
    async up(db: Kysely<unknown>) {
      await db.schema.alterTable('images').addColumn('home_region', 'text').execute();
      await sql`alter table images add column if not exists replicated_regions text[] not null default '{}'`.execute(
        db,
      );
      // The replication check walks recent live rows that have a home region, oldest first.
      await sql`create index if not exists images_home_region_created
        on images (created_at, id) where home_region is not null and deleted_at is null`.execute(db);
    },
    async down(db: Kysely<unknown>) {
      await sql`drop index if exists images_home_region_created`.execute(db);
      await db.schema.alterTable('images').dropColumn('replicated_regions').execute();
      await db.schema.alterTable('images').dropColumn('home_region').execute();
    },
  },
  // Variants as derived objects (the s3 driver; docs/architecture.md, "Variants on s3"): which
  // variant keys of the image exist as objects (the page row carries them, so signing needs no
  // I/O), and for which preset set they were last made (the backfill's work list). Numbered 005,
  // after 004_images_region.
  '005_images_variants': {
    async up(db: Kysely<unknown>) {
      await sql`alter table images add column if not exists variants_ready text[] not null default '{}'`.execute(
        db,
      );
      await sql`alter table images add column if not exists variants_of text`.execute(db);
      // The backfill walks live rows whose variants were never made, oldest first.
      await sql`create index if not exists images_variants_missing
        on images (created_at, id) where variants_of is null and deleted_at is null`.execute(db);
    },
    async down(db: Kysely<unknown>) {
      await sql`drop index if exists images_variants_missing`.execute(db);
      await db.schema.alterTable('images').dropColumn('variants_of').execute();
      await db.schema.alterTable('images').dropColumn('variants_ready').execute();
    },
  },
  // Whether the original is animated: an animated WebP, an APNG or an AVIF sequence, whose
  // variants are the original itself as a GIF's are (docs/architecture.md, "Variants"). Null
  // means "not looked at": the rows this migration finds. `false` would claim each of them is a
  // still, which nothing has checked (the catalog would keep asking for stills of an animated
  // one), and would leave the backfill nothing to tell its work from rows it has done; null keeps
  // its work list exact (`images_animation_unknown`, which only shrinks). Every writer of this
  // version says what it knows (uploads and `signet import` what the head they read shows,
  // Signet's own generated stills false). The column has no default: a writer that does not name
  // it (a node of the version before, still serving during a rolling upgrade) leaves null, and
  // the backfill looks at that row too; a default of false would have made its animated upload a
  // still for good. Adding a nullable column without a default does not rewrite the table.
  '006_images_animated': {
    async up(db: Kysely<unknown>) {
      await sql`alter table images add column if not exists animated boolean`.execute(db);
      // The backfill's work list, images_animation_unknown, is not built here but by the backfill
      // when it first runs, concurrently (db/work-list-indexes.ts says why): here it would hold
      // this transaction's lock on images while it scanned every row.
    },
    async down(db: Kysely<unknown>) {
      await sql`drop index if exists images_animation_unknown`.execute(db);
      await db.schema.alterTable('images').dropColumn('animated').execute();
    },
  },
  // created_at at the precision the API and the page cursor carry, milliseconds (a JavaScript
  // Date). At microseconds (PostgreSQL's default, and what `now()` gives a row inserted in SQL, by
  // a restore or a migration script) the cursor held a truncated time, and the keyset
  // `(created_at, id) < cursor` skipped every row between it and the real one: a page of rows
  // inserted in one transaction ended the walk after its first page. The column's type now rounds
  // every value, whoever writes it. This rewrites the table and its indexes once, under an
  // exclusive lock (docs/operations.md, "Upgrading"): no statement timeout for it (the pools' 10 s
  // would cancel it from ~1.7 million rows, at every start), but a lock timeout, so that waiting
  // for a lock someone else holds never queues every page behind it for long.
  '007_images_created_at_ms': {
    async up(db: Kysely<unknown>) {
      // `local`: this migration's transaction only (PGlite, which runs it outside one, ignores it).
      await sql`set local statement_timeout = 0`.execute(db);
      await sql`set local lock_timeout = '10s'`.execute(db);
      await sql`alter table images alter column created_at type timestamptz(3)`.execute(db);
    },
    async down(db: Kysely<unknown>) {
      await sql`alter table images alter column created_at type timestamptz`.execute(db);
    },
  },
  '008_signet_state': {
    async up(db: Kysely<unknown>) {
      // Small named values the server keeps beside its rows: the orphan sweep's token, which a
      // restored database brings back old (images/sweep-guard.ts).
      await db.schema
        .createTable('signet_state')
        .ifNotExists()
        .addColumn('key', 'text', (c) => c.primaryKey())
        .addColumn('value', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
        .execute();
    },
    async down(db: Kysely<unknown>) {
      await db.schema.dropTable('signet_state').ifExists().execute();
    },
  },
};

const provider: MigrationProvider = { getMigrations: async () => migrations };

/** The name of the newest migration (a node checks a database it did not migrate itself has it). */
export const LATEST_MIGRATION = Object.keys(migrations).sort().at(-1)!;

function migrator(db: Kysely<Database>): Migrator {
  return new Migrator({
    db,
    provider,
    migrationTableName: 'signet_migrations',
    migrationLockTableName: 'signet_migrations_lock',
  });
}

function checked({ error, results }: MigrationResultSet): void {
  const failed = results?.find((r) => r.status === 'Error');
  if (error || failed) {
    // The cause's words too: "database migration failed" alone says neither what nor where.
    const why = error instanceof Error ? `: ${describeError(error)}` : '';
    throw new Error(`database migration failed${failed ? ` at ${failed.migrationName}` : ''}${why}`, {
      cause: error,
    });
  }
}

/** What a start's migrations did, for its log (container.ts). */
export type MigrationEvent =
  | { kind: 'running'; pending: string[] }
  | { kind: 'done'; ran: string[]; ms: number }
  /** The database has migrations this version does not know: a newer version ran them. */
  | { kind: 'newer'; unknown: string[] };

/**
 * Runs the migrations this version has and the database has not. A database a newer version has
 * migrated further is left as it is, and this version runs on it: every migration adds to the
 * schema what the versions before it ignore (docs/operations.md, "Upgrading": a rolling upgrade
 * keeps older nodes starting, and a rollback is a redeploy of the older version). Kysely's own
 * check would refuse it ("previously executed migration … is missing"), and every older node,
 * restarted or added during a rollout, would fail to start.
 */
export async function migrateToLatest(
  db: Kysely<Database>,
  onEvent?: (event: MigrationEvent) => void,
): Promise<void> {
  const executed = await executedMigrations(db);
  const known = Object.keys(migrations).sort();
  const pending = known.filter((name) => !executed.includes(name));
  const unknown = executed.filter((name) => !(name in migrations));
  if (unknown.length > 0) {
    if (pending.length > 0) {
      // Not a newer version's: a database migrated by another line of code, or edited by hand.
      throw new Error(
        `database migration failed: the database has migrations this version does not know (${unknown.join(', ')}) and lacks some it knows (${pending.join(', ')})`,
      );
    }
    onEvent?.({ kind: 'newer', unknown });
    return;
  }
  if (pending.length === 0) return;
  onEvent?.({ kind: 'running', pending });
  const started = performance.now();
  const result = await migrator(db).migrateToLatest();
  checked(result);
  onEvent?.({
    kind: 'done',
    ran: (result.results ?? []).map((r) => r.migrationName),
    ms: Math.round(performance.now() - started),
  });
}

/** The names in the migrations table, oldest first; none before the first start. */
async function executedMigrations(db: Kysely<Database>): Promise<string[]> {
  const exists = await sql<{ t: string | null }>`select to_regclass('signet_migrations')::text as t`.execute(
    db,
  );
  if (exists.rows[0]?.t == null) return [];
  const rows = await sql<{ name: string }>`select name from signet_migrations order by name`.execute(db);
  return rows.rows.map((r) => r.name);
}

/**
 * Migrates up or down to the migration named `target` (a test of a migration over rows made
 * before it: server/test/db/migrations.test.ts).
 */
export async function migrateTo(db: Kysely<Database>, target: string): Promise<void> {
  if (!(target in migrations)) throw new Error(`no migration ${target}`);
  checked(await migrator(db).migrateTo(target));
}
