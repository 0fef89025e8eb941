import { mkdir, realpath } from 'node:fs/promises';
import path from 'node:path';
import { CompiledQuery, type DatabaseConnection, Kysely, type LogEvent, PostgresDialect, sql } from 'kysely';
import pg from 'pg';
import { StartFailure } from '../lib/start-failure.js';
import { type DirLockOptions, lockDir } from './dir-lock.js';
import { LATEST_MIGRATION, type MigrationEvent, migrateToLatest } from './migrations.js';
import { pgTypes } from './pg-types.js';
import { PGliteDialect } from './pglite-dialect.js';
import { type ClusterInit, initPgliteCluster, pgliteStartParams } from './pglite-init.js';
import { requestStatementTimeout } from './statement-timeout.js';
import type { Database, Db } from './types.js';
import { describeError, isDatabaseUnavailable } from './unavailable.js';
import { createWorkListIndexesInPlace } from './work-list-indexes.js';

export interface DbOptions {
  /** Unset: embedded PGlite under `${dataDir}/pglite`. */
  databaseUrl: string | undefined;
  dataDir: string;
  /** Called for every statement (tests count them; the logger times slow ones). */
  onQuery?: (event: LogEvent) => void;
  poolSize?: number;
  /** Told how an embedded database's first start made its cluster (the container logs it). */
  onFirstStart?: (init: ClusterInit) => void;
  /**
   * The embedded database's DATA_DIR lock (db/dir-lock.ts): its timings, and `onLost`, told when
   * another process took it over (every statement then fails as the database unavailable).
   */
  lock?: DirLockOptions;
  /**
   * DATABASE_DIRECT_URL: PostgreSQL itself (or a session-mode pool) when `databaseUrl` is a
   * transaction-mode pool (PgBouncer). The migrations and the work-list index builds, which need
   * a session (their advisory locks), run on it; the pool on `databaseUrl` then sends no startup
   * statement timeout, which PgBouncer refuses (db/statement-timeout.ts).
   */
  directUrl?: string | undefined;
  /** Told what the start's migrations do: running, done, or a database a newer version migrated. */
  onMigration?: (event: MigrationEvent) => void;
  /**
   * Run the migrations (default true). `signet check` passes false: a check reaches the database
   * and must not change its schema (an operator may check a new version before rolling it out).
   */
  migrate?: boolean;
}

/** Opens the database and runs the migrations (unless told not to), so a returned Db is ready to serve. */
export async function openDatabase(opts: DbOptions): Promise<Db> {
  const log = opts.onQuery;
  let kysely: Kysely<Database>;
  let kind: Db['kind'];
  let closeExtra = async () => {};
  let ping = async (): Promise<number | undefined> => {
    await sql`select 1`.execute(kysely);
    return undefined;
  };
  if (opts.databaseUrl) {
    kind = 'postgres';
    const pool = new pg.Pool({
      connectionString: opts.databaseUrl,
      max: opts.poolSize ?? 10,
      // A stopped database must fail a request quickly (503), not hang it.
      connectionTimeoutMillis: 2000,
      idleTimeoutMillis: 30_000,
      ...requestStatementTimeout(opts.directUrl !== undefined),
      types: pgTypes,
    });
    // An idle client losing its server emits 'error' on the pool; without a listener it would crash.
    pool.on('error', () => {});
    // A checked-out client has no pool listener: losing the server mid-query would emit an
    // unhandled 'error' and crash the process. The query itself still fails (-> 503).
    pool.on('connect', (client) => client.on('error', () => {}));
    kysely = new Kysely<Database>({ dialect: new PostgresDialect({ pool }), ...(log ? { log } : {}) });
    // Readiness asks on a connection of its own. Through the requests' pool, a node too busy to
    // hand out a connection within the probe's time answered "database down", so every node of a
    // fleet under one traffic spike went unready at once: an overload made a full outage, and the
    // alert blamed PostgreSQL (docs/operations.md, "Overload").
    const probePool = new pg.Pool({
      connectionString: opts.databaseUrl,
      max: 1,
      connectionTimeoutMillis: 1000,
      // A query stuck on a half-open connection must not hold the probe's only client: every
      // later ping would wait behind it.
      query_timeout: 1000,
      idleTimeoutMillis: 30_000,
      types: pgTypes,
    });
    probePool.on('error', () => {});
    probePool.on('connect', (client) => client.on('error', () => {}));
    ping = async () => {
      const { rows } = await probePool.query<{ ms: number }>(
        'select extract(epoch from clock_timestamp())::float8 * 1000 as ms',
      );
      return rows[0]?.ms;
    };
    closeExtra = () => probePool.end();
  } else {
    kind = 'pglite';
    const dir = path.join(opts.dataDir, 'pglite');
    await mkdir(dir, { recursive: true });
    // Before anything touches the cluster, its first start included: one process at a time.
    let lost: Error | undefined;
    const lock = await lockDir(await realpath(dir), {
      ...opts.lock,
      onLost: (err) => {
        // 57P01 (admin_shutdown): the error table answers it as the database unavailable (503).
        lost = Object.assign(new Error(`${err.message}: this process no longer uses it`), { code: '57P01' });
        opts.lock?.onLost?.(err);
      },
    });
    try {
      // A first start copies the build's cluster template, or runs initdb in a child process
      // without one (pglite-init.ts).
      const made = await initPgliteCluster(dir);
      if (made) opts.onFirstStart?.(made);
      const { PGlite } = await import('@electric-sql/pglite');
      await lock.check();
      const pglite = new PGlite(dir, { startParams: pgliteStartParams(PGlite.defaultStartParams) });
      kysely = new Kysely<Database>({
        dialect: new PGliteDialect(pglite, () => lost),
        ...(log ? { log } : {}),
      });
      closeExtra = async () => {
        try {
          // Not once the lock is lost (as the dialect's destroy): the cluster is another's now.
          // A PGlite that failed to start rejects here; the lock is released all the same.
          if (!pglite.closed && !lost) await pglite.close();
        } finally {
          await lock.release();
        }
      };
    } catch (err) {
      await lock.release();
      throw err;
    }
  }
  const directUrl = kind === 'postgres' ? opts.directUrl : undefined;
  // Which URL the start is on, for a message when it cannot be reached.
  let reaching = directUrl !== undefined ? 'DATABASE_DIRECT_URL' : 'DATABASE_URL';
  try {
    if (opts.migrate !== false) {
      const migrated = await migrate(kysely, opts.databaseUrl, directUrl, log, opts.onMigration);
      reaching = 'DATABASE_URL';
      // Embedded: the work lists' indexes now, before anything is served (db/work-list-indexes.ts).
      if (kind === 'pglite') await createWorkListIndexesInPlace(kysely);
      // Migrated on the direct URL: the pooled one is asked once too, so a pooler that is down,
      // or a DATABASE_URL naming another database than DATABASE_DIRECT_URL, stops the start
      // instead of leaving a node that answers 503 (or serves a database nobody migrated).
      if (migrated !== undefined) await sameDatabase(kysely, migrated);
    }
  } catch (err) {
    await kysely.destroy().catch(() => {});
    await closeExtra().catch(() => {});
    const url = reaching === 'DATABASE_DIRECT_URL' ? directUrl : opts.databaseUrl;
    throw (
      refusedStartupParameter(err, directUrl !== undefined) ??
      (url !== undefined ? unreachableAtStart(err, reaching, url) : undefined) ??
      err
    );
  }
  return {
    kind,
    kysely,
    ...(opts.databaseUrl ? { connectionString: opts.directUrl ?? opts.databaseUrl } : {}),
    ping: () => ping(),
    async close() {
      try {
        await kysely.destroy();
      } finally {
        await closeExtra();
      }
    },
  };
}

/**
 * PgBouncer's answer to the pool's statement timeout, as a start-up error that says what to do;
 * undefined for any other error.
 */
export function refusedStartupParameter(err: unknown, directUrlSet: boolean): Error | undefined {
  for (let e: unknown = err; e instanceof Error; e = e.cause) {
    if (/^unsupported startup parameter/.test(e.message)) {
      // With DATABASE_DIRECT_URL set no pool sends one of its own: the URL itself asks for it.
      const what = directUrlSet
        ? 'take the parameter out of the URL (`options=`, say)'
        : 'set DATABASE_DIRECT_URL to PostgreSQL itself';
      return new Error(
        `the database refused a startup parameter (${e.message}): a pooler such as PgBouncer? ${what} (docs/operations.md, "PgBouncer")`,
        { cause: err },
      );
    }
  }
  return undefined;
}

/**
 * Which database a connection is in, as anyone may ask: its name and oid, and when its server
 * started (to the microsecond), which two servers do not share. Asked through a pooler, it names
 * the database behind it. A table's content would not do: a database restored from another's
 * dump has the same rows, migrations included.
 */
async function identityOf(db: Kysely<Database>): Promise<string> {
  // The start time as epoch seconds: as text, a timestamptz follows the session's TimeZone and
  // DateStyle, which two roles (the direct URL's and the pool's) may set apart.
  const r = await sql<{ db: string; oid: string; started: string }>`select current_database() as db,
    (select oid::text from pg_database where datname = current_database()) as oid,
    extract(epoch from pg_postmaster_start_time())::text as started`.execute(db);
  const row = r.rows[0]!;
  return `${row.db} (oid ${row.oid}, server started at ${row.started} s)`;
}

/**
 * A start that could not reach PostgreSQL, as one line naming the variable, where it points (no
 * credentials) and why; undefined when `err` is something else (a migration's own failure keeps
 * its stack).
 */
export function unreachableAtStart(err: unknown, variable: string, url: string): StartFailure | undefined {
  for (let e: unknown = err; e instanceof Error; e = e.cause) {
    // A bad password or database name is "unavailable" too (db/unavailable.ts).
    if (isDatabaseUnavailable(e)) {
      let where = '';
      try {
        const u = new URL(url);
        where = ` (${u.hostname}:${u.port || '5432'}/${decodeURIComponent(u.pathname.slice(1))})`;
      } catch {
        // the config checked it is a URL; nothing to add if not
      }
      return new StartFailure(
        `cannot reach the database at ${variable}${where}: ${describeError(e)} (is PostgreSQL up, and ${variable} right?)`,
        { cause: err },
      );
    }
  }
  return undefined;
}

/** One statement on the pooled URL: it answers, and its database is the one just migrated. */
async function sameDatabase(pooled: Kysely<Database>, migrated: string): Promise<void> {
  const notReached = (why: string, cause?: unknown) =>
    new Error(`DATABASE_URL does not reach the database DATABASE_DIRECT_URL migrated: ${why}`, { cause });
  let rows: number;
  let reached: string;
  try {
    rows = (await sql`select 1 from signet_migrations where name = ${LATEST_MIGRATION}`.execute(pooled)).rows
      .length;
    reached = await identityOf(pooled);
  } catch (err) {
    throw notReached((err as Error).message, err);
  }
  if (rows === 0) throw notReached('its database has no row of the latest migration');
  if (reached !== migrated) {
    // The operator's to fix, said in one line (main.ts prints a StartFailure without its stack).
    throw new StartFailure(
      `DATABASE_URL does not reach the database DATABASE_DIRECT_URL migrated: DATABASE_URL reaches ${reached}, DATABASE_DIRECT_URL ${migrated}`,
    );
  }
}

/**
 * The migrations, on a connection of their own: to `directUrl` behind a transaction-mode pooler
 * (their lock is a session's, Kysely's advisory lock, which a pooler would take on one server
 * connection and release on another, leaving it held there), else to `databaseUrl`. Without a
 * statement timeout: a node starting while another runs a long migration (a table rewrite) waits
 * for its lock instead of failing its start after the requests' 10 s, and a long migration is not
 * cancelled midway. The embedded database (no URL) has no timeout and migrates on its one client.
 */
async function migrate(
  pooled: Kysely<Database>,
  databaseUrl: string | undefined,
  directUrl: string | undefined,
  log: ((event: LogEvent) => void) | undefined,
  onEvent: ((event: MigrationEvent) => void) | undefined,
): Promise<string | undefined> {
  const url = directUrl ?? databaseUrl;
  if (url === undefined) {
    await migrateToLatest(pooled, onEvent);
    return undefined;
  }
  // The requests' pool is asked first, so that one PostgreSQL or a pooler refuses (PgBouncer's
  // "unsupported startup parameter" without DATABASE_DIRECT_URL) stops the start as it did when
  // the migrations ran on it, before a session lock is taken through a transaction-mode pooler.
  if (directUrl === undefined) await sql`select 1`.execute(pooled);
  const pool = new pg.Pool({
    connectionString: url,
    max: 1,
    connectionTimeoutMillis: 2000,
    types: pgTypes,
  });
  pool.on('error', () => {});
  pool.on('connect', (client) => client.on('error', () => {}));
  const own = new Kysely<Database>({
    dialect: new PostgresDialect({
      pool,
      // On `databaseUrl` the pool sends no timeout and the server's default (none) holds. On the
      // direct URL, where a PgBouncer deployment sets the role's (docs/operations.md,
      // "PgBouncer"), it is lifted as a statement, not a startup parameter: that URL may be a
      // session-mode PgBouncer pool, which refuses one. Never on `databaseUrl`, which may be a
      // transaction-mode pool: a session's SET would stay on a server connection others share.
      ...(directUrl !== undefined
        ? {
            onCreateConnection: async (c: DatabaseConnection) => {
              await c.executeQuery(CompiledQuery.raw('set statement_timeout = 0'));
            },
          }
        : {}),
    }),
    ...(log ? { log } : {}),
  });
  try {
    await migrateToLatest(own, onEvent);
    return directUrl === undefined ? undefined : await identityOf(own);
  } catch (err) {
    if (directUrl === undefined) throw err;
    // Name the variable: "database migration failed: connect ECONNREFUSED" says neither which.
    throw new Error(`database migration on DATABASE_DIRECT_URL failed: ${(err as Error).message}`, {
      cause: err,
    });
  } finally {
    await own.destroy();
  }
}

export { isDatabaseUnavailable } from './unavailable.js';
