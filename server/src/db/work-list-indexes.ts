import { type Kysely, sql } from 'kysely';
import pg from 'pg';
import type { Logger } from '../logger.js';
import type { Database, Db } from './types.js';
import { isDatabaseUnavailable } from './unavailable.js';

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
 * The purge's work list: soft-deleted rows, by when (images/deleted-row-purge.ts, and `signet
 * erase-owner`'s walk of an owner's deleted rows). It holds only the rows deleted within
 * DELETED_ROW_RETENTION_DAYS (and a backlog the purge has not reached yet), so it stays small;
 * without it every purge run would scan the whole table. Its predicate is the one
 * `DeletedRowRecords.purgeDeleted` writes.
 */
export const DELETED_ROWS_INDEX: WorkListIndex = {
  name: 'images_deleted',
  definition: 'images (deleted_at, id) where deleted_at is not null',
};

const WORK_LIST_INDEXES: readonly WorkListIndex[] = [ANIMATION_UNKNOWN_INDEX, DELETED_ROWS_INDEX];

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
  logger?: Pick<Logger, 'info' | 'warn'> | undefined;
}

/**
 * The build itself failed (PostgreSQL's log says why: a full disk, a temp_file_limit, a wait for
 * an older transaction past BUILD_LOCK_TIMEOUT), as opposed to the database being away or the
 * lookups around it failing: what a caller backs off from (images/animation-backfill.ts).
 */
export class WorkListIndexBuildError extends Error {
  constructor(
    readonly index: string,
    cause: unknown,
  ) {
    super(`the work-list index ${index} could not be built: ${(cause as Error).message}`, { cause });
    this.name = 'WorkListIndexBuildError';
  }
}

/**
 * How long a build waits for one lock: a concurrent build waits for every transaction older than
 * it, holding a lock that keeps (auto)vacuum and DDL off the table meanwhile, so a session left
 * idle in a transaction must not hold it for ever. Long, since the wait itself holds back no
 * read or write.
 */
const BUILD_LOCK_TIMEOUT = '30min';

/**
 * Embedded (PGlite: one process, a small table): every work list's index, plainly, at start
 * before anything is served (db/connect.ts). Then `ensureWorkListIndex` finds each ready.
 */
export async function createWorkListIndexesInPlace(db: Kysely<Database>): Promise<void> {
  for (const index of WORK_LIST_INDEXES) await createInPlace(db, index);
}

/** A plain build: it blocks writes to the table while it scans (embedded, or no own connection). */
async function createInPlace(db: Kysely<Database>, index: WorkListIndex): Promise<void> {
  await sql.raw(`create index if not exists ${index.name} on ${index.definition}`).execute(db);
}

/**
 * Makes sure `index` is there and valid, building it if not. On PostgreSQL the build is
 * `create index concurrently`, so uploads, deletes and pages go on while it scans. It runs on a
 * connection of its own, outside the pool: the build needs one session for its statements (an
 * advisory lock so that one process of a deployment builds at a time, its pid for a cancel)
 * and no statement timeout (a build of millions of rows takes minutes), and neither may leak
 * into a pooled connection that then serves requests; closing the connection ends both. A
 * build that failed or was stopped leaves an invalid index, which the next call drops and
 * builds again.
 */
export async function ensureWorkListIndex(
  db: Db,
  index: WorkListIndex,
  o: EnsureOptions = {},
): Promise<IndexReadiness> {
  // Valid already (every run once it is built): one lookup on the pool, no lock.
  if ((await validity(db.kysely, index)) === true) return 'ready';
  if (db.kind === 'pglite' || db.connectionString === undefined) {
    await createInPlace(db.kysely, index);
    return 'ready';
  }
  // One build at a time per database handle (the purge and the animation backfill of one node
  // both start at once): two concurrent builds on one table each wait for the other's
  // transaction, a deadlock PostgreSQL ends by failing one of them. Across processes, the lock
  // of every build (BUILD_LOCK below) does the same.
  const connectionString = db.connectionString;
  const run = (builds.get(db) ?? Promise.resolve()).then(() => buildLocked(db, connectionString, index, o));
  builds.set(
    db,
    run.catch(() => {}),
  );
  return run;
}

/** The build of each database handle in progress, in line (see `ensureWorkListIndex`). */
const builds = new WeakMap<Db, Promise<unknown>>();

/**
 * The advisory lock every build holds besides its index's own: any two builds of work-list
 * indexes, of the same index or not, in one process or several, never run at once.
 */
const BUILD_LOCK = 'signet.work-list-index';

/** The build under the locks, on a session of its own (`ensureWorkListIndex`). */
async function buildLocked(
  db: Db,
  connectionString: string,
  index: WorkListIndex,
  o: EnsureOptions,
): Promise<IndexReadiness> {
  if (o.signal?.aborted) return 'stopped';
  // Built meanwhile by the build this one waited for (the same index asked for twice).
  if ((await validity(db.kysely, index)) === true) return 'ready';
  const session = new pg.Client({ connectionString, connectionTimeoutMillis: 2000 });
  // A connection lost mid-build is an error of the build's query; without a listener the
  // client's 'error' event would crash the process.
  session.on('error', () => {});
  await session.connect();
  try {
    for (const lock of [BUILD_LOCK, `${BUILD_LOCK}.${index.name}`]) {
      const got = await session.query<{ got: boolean }>('select pg_try_advisory_lock(hashtext($1)) as got', [
        lock,
      ]);
      if (!got.rows[0]?.got) return 'building elsewhere';
    }
    // Built by another process between the lookup above and the lock.
    const valid = await validity(db.kysely, index);
    if (valid === true) return 'ready';
    return await build(connectionString, session, index, valid === false, o);
  } finally {
    // Ends the session: its lock and its settings go with it.
    await session.end().catch(() => {});
  }
}

/** true: valid; false: there, invalid (a failed or stopped build); undefined: not there. */
async function validity(db: Kysely<Database>, index: WorkListIndex): Promise<boolean | undefined> {
  const r = await sql<{ valid: boolean }>`
    select indisvalid as valid from pg_index where indexrelid = to_regclass(${index.name})`.execute(db);
  return r.rows[0]?.valid;
}

/** The build, on `session`, which holds the lock. */
async function build(
  connectionString: string,
  session: pg.Client,
  index: WorkListIndex,
  invalid: boolean,
  { signal, logger }: EnsureOptions,
): Promise<IndexReadiness> {
  const pid = (await session.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0]!.pid;
  // From a connection of its own too, so a cancel cannot reach a pooled connection's request.
  const cancel = () => {
    const c = new pg.Client({ connectionString, connectionTimeoutMillis: 2000 });
    c.on('error', () => {});
    c.connect()
      .then(() => c.query('select pg_cancel_backend($1)', [pid]))
      .catch((err: Error) =>
        logger?.warn({ index: index.name, err: err.message }, 'could not stop the index build'),
      )
      .finally(() => void c.end().catch(() => {}));
  };
  signal?.addEventListener('abort', cancel, { once: true });
  try {
    // Whatever the role's or database's defaults: this session builds, then closes. Its lock
    // timeout is its own too: a concurrent build waits for every transaction older than it (a
    // report of minutes, say) and for autovacuum to yield, and its waits hold back no write or
    // read, so a role's short one (set for requests) would fail it for nothing.
    await session.query('set statement_timeout = 0');
    await session.query(`set lock_timeout = '${BUILD_LOCK_TIMEOUT}'`);
    // Left by a build that failed or was stopped (no one else builds: this session holds the lock).
    if (invalid) await session.query(`drop index concurrently if exists ${index.name}`);
    if (signal?.aborted) return 'stopped';
    const started = Date.now();
    logger?.info({ index: index.name }, 'work-list index being built');
    await session.query(`create index concurrently if not exists ${index.name} on ${index.definition}`);
    logger?.info({ index: index.name, ms: Date.now() - started }, 'work-list index built');
    return 'ready';
  } catch (err) {
    // 57014: query_canceled, by the cancel above.
    if (signal?.aborted && (err as { code?: string }).code === '57014') return 'stopped';
    throw isDatabaseUnavailable(err) ? err : new WorkListIndexBuildError(index.name, err);
  } finally {
    signal?.removeEventListener('abort', cancel);
  }
}

/** The longest wait between two failed builds of a work list's index. */
export const BUILD_RETRY_MAX_MS = 6 * 3600_000;

/**
 * A recurring job's way past its work-list index (the animation backfill's, the deleted-row
 * purge's): before each run the index is made sure of, and after a build that failed the runs of
 * the next `retryMs` (5 min by default, doubled at each failure in a row, up to 6 h) skip it, so
 * a build PostgreSQL refuses (a full disk, a temp_file_limit) is not tried again at every run.
 */
export class WorkListGate {
  private failures = 0;
  private againAt = 0;

  constructor(
    private readonly o: {
      /** The job, as its log lines name it. */
      job: string;
      now: () => number;
      logger: Pick<Logger, 'info' | 'warn'>;
      retryMs?: number | undefined;
    },
  ) {}

  /** Whether this run may walk its work list: the index is there, and valid. */
  async open(prepare: (o: EnsureOptions) => Promise<IndexReadiness>, signal: AbortSignal): Promise<boolean> {
    const { job, logger } = this.o;
    if (this.o.now() < this.againAt) return false;
    let index: IndexReadiness;
    try {
      index = await prepare({ signal, logger });
    } catch (err) {
      // Only the build's own failure: the database away, or a lookup around the build failing,
      // is no reason to wait longer than the job's interval.
      if (!(err instanceof WorkListIndexBuildError)) throw err;
      this.failures++;
      const retryInMs = Math.min((this.o.retryMs ?? 300_000) * 2 ** (this.failures - 1), BUILD_RETRY_MAX_MS);
      this.againAt = this.o.now() + retryInMs;
      logger.warn(
        { err: (err.cause as Error).message, failures: this.failures, retryInMs },
        `${job}: its work-list index could not be built (PostgreSQL's log says why); runs skip it until the retry`,
      );
      return false;
    }
    if (index !== 'ready') {
      if (index === 'building elsewhere') {
        logger.info(`${job} skipped this run: its work-list index is being built elsewhere`);
      }
      // A run that found another worker building, or was stopped, says nothing of whether a
      // build would fail again: the series goes on.
      return false;
    }
    this.failures = 0;
    return true;
  }
}
