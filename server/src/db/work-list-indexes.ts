import { type Kysely, sql } from 'kysely';
import type { Logger } from '../logger.js';
import type { Db } from './connect.js';
import type { Database } from './types.js';

/**
 * A partial index that is a backfill's work list over rows a migration found. It is built by its
 * backfill when that first runs, not by the migration (docs/architecture.md, "Data"): a migration
 * runs in one transaction with the migrations before it, so an index built there holds the lock
 * of the migration's `alter table` (no reads of `images` at all) while it scans every row, and
 * fails at the pool's statement timeout on a table of millions, leaving no node able to start.
 */
export interface WorkListIndex {
  name: string;
  /** What follows `on`: the table, the columns and the predicate. */
  definition: string;
}

/**
 * The animation backfill's work list (migration 006). Its predicate is the one
 * `ImagesRepo.animationUnknown` writes, word for word, so the planner matches them.
 */
export const ANIMATION_UNKNOWN_INDEX: WorkListIndex = {
  name: 'images_animation_unknown',
  definition:
    "images (created_at, id) where animated is null and deleted_at is null and content_type in ('image/webp', 'image/png', 'image/avif')",
};

/**
 * `ready`: the index is there and valid. `building elsewhere`: another process is building it
 * now (its backfill runs once it is done). `stopped`: the signal stopped the build (shutdown); a
 * later call builds it again.
 */
export type IndexReadiness = 'ready' | 'building elsewhere' | 'stopped';

export interface EnsureOptions {
  /** Stops a build in progress (shutdown): the call then resolves `stopped`. */
  signal?: AbortSignal | undefined;
  /** Told when a build begins and ends (a build of millions of rows takes minutes). */
  logger?: Pick<Logger, 'info'> | undefined;
}

/**
 * Makes sure `index` is there and valid, building it if not. On PostgreSQL the build is
 * `create index concurrently`, so uploads, deletes and pages go on while it scans; one process of
 * a deployment builds at a time (a session advisory lock), free of the pool's statement timeout
 * (a build of millions of rows takes minutes). A build that failed or was stopped leaves an
 * invalid index, which the next call drops and builds again. Embedded (PGlite, one process, a
 * small table): a plain `create index`.
 */
export async function ensureWorkListIndex(
  db: Db,
  index: WorkListIndex,
  o: EnsureOptions = {},
): Promise<IndexReadiness> {
  if (db.kind === 'pglite') {
    await sql.raw(`create index if not exists ${index.name} on ${index.definition}`).execute(db.kysely);
    return 'ready';
  }
  const lock = `signet.work-list-index.${index.name}`;
  return db.kysely.connection().execute(async (c) => {
    const got = await sql<{ got: boolean }>`select pg_try_advisory_lock(hashtext(${lock})) as got`.execute(c);
    if (!got.rows[0]?.got) return 'building elsewhere';
    try {
      return await build(db.kysely, c, index, o);
    } finally {
      // A cancel meant for the build can land on this statement instead: once more, then. A lock
      // left held would keep every other process from building, until this connection closes.
      const unlock = () => sql`select pg_advisory_unlock(hashtext(${lock}))`.execute(c);
      await unlock().catch(unlock);
    }
  });
}

/** The build itself, on the connection `c` that holds the lock. */
async function build(
  db: Kysely<Database>,
  c: Kysely<Database>,
  index: WorkListIndex,
  { signal, logger }: EnsureOptions,
): Promise<IndexReadiness> {
  const state = await sql<{ valid: boolean }>`
    select indisvalid as valid from pg_index where indexrelid = to_regclass(${index.name})`.execute(c);
  if (state.rows[0]?.valid) return 'ready';
  if (signal?.aborted) return 'stopped';
  const pid = (await sql<{ pid: number }>`select pg_backend_pid() as pid`.execute(c)).rows[0]!.pid;
  // From another connection of the pool: this one is busy building.
  const cancel = () => {
    sql`select pg_cancel_backend(${pid})`.execute(db).catch(() => {});
  };
  signal?.addEventListener('abort', cancel, { once: true });
  // The pool's statement timeout (10 s) is for requests; the session's own setting goes back to it below.
  await sql`set statement_timeout = 0`.execute(c);
  try {
    // Left invalid by a build that failed or was stopped (no one else builds: this holds the lock).
    if (state.rows.length > 0) await sql.raw(`drop index concurrently if exists ${index.name}`).execute(c);
    if (signal?.aborted) return 'stopped';
    const started = Date.now();
    logger?.info({ index: index.name }, 'work-list index being built');
    await sql.raw(`create index concurrently if not exists ${index.name} on ${index.definition}`).execute(c);
    logger?.info({ index: index.name, ms: Date.now() - started }, 'work-list index built');
    return 'ready';
  } catch (err) {
    // 57014: query_canceled, by the cancel above.
    if (signal?.aborted && (err as { code?: string }).code === '57014') return 'stopped';
    throw err;
  } finally {
    signal?.removeEventListener('abort', cancel);
    const reset = () => sql`reset statement_timeout`.execute(c);
    await reset().catch(reset);
  }
}
