import type { PGlite } from '@electric-sql/pglite';
import {
  type CompiledQuery,
  type DatabaseConnection,
  type Dialect,
  type Driver,
  type Kysely,
  PostgresAdapter,
  PostgresIntrospector,
  PostgresQueryCompiler,
  type QueryResult,
  type TransactionSettings,
} from 'kysely';

/**
 * Kysely over embedded PGlite. PGlite has one connection, so connections are handed out one at a
 * time: a transaction holds it until it commits, and other queries wait their turn.
 */
export class PGliteDialect implements Dialect {
  /**
   * `stopped`: an error once this process must no longer touch the cluster (its DATA_DIR lock was
   * lost, db/dir-lock.ts); every statement then fails with it.
   */
  constructor(
    private readonly pglite: PGlite,
    private readonly stopped: () => Error | undefined = () => undefined,
  ) {}
  createAdapter() {
    return new PostgresAdapter();
  }
  createDriver(): Driver {
    return new PGliteDriver(this.pglite, this.stopped);
  }
  createIntrospector(db: Kysely<unknown>) {
    return new PostgresIntrospector(db);
  }
  createQueryCompiler() {
    return new PostgresQueryCompiler();
  }
}

class PGliteDriver implements Driver {
  private queue: Promise<void> = Promise.resolve();
  constructor(
    private readonly pglite: PGlite,
    private readonly stopped: () => Error | undefined,
  ) {}

  async init(): Promise<void> {
    await this.pglite.waitReady;
  }

  async acquireConnection(): Promise<DatabaseConnection> {
    let release!: () => void;
    const prev = this.queue;
    this.queue = new Promise<void>((r) => {
      release = r;
    });
    await prev;
    return new PGliteConnection(this.pglite, release, this.stopped);
  }

  async beginTransaction(conn: DatabaseConnection, _settings: TransactionSettings): Promise<void> {
    await (conn as PGliteConnection).raw('begin');
  }
  async commitTransaction(conn: DatabaseConnection): Promise<void> {
    await (conn as PGliteConnection).raw('commit');
  }
  async rollbackTransaction(conn: DatabaseConnection): Promise<void> {
    await (conn as PGliteConnection).raw('rollback');
  }
  async releaseConnection(conn: DatabaseConnection): Promise<void> {
    (conn as PGliteConnection).release();
  }
  async destroy(): Promise<void> {
    // Stopped: closing would write a shutdown checkpoint into a cluster another process now owns.
    if (this.stopped()) return;
    await this.pglite.close();
  }
}

class PGliteConnection implements DatabaseConnection {
  constructor(
    private readonly pglite: PGlite,
    readonly release: () => void,
    private readonly stopped: () => Error | undefined,
  ) {}

  /** The cluster, unless this process must no longer touch it (its lock was lost). */
  private use(): PGlite {
    const stop = this.stopped();
    if (stop) throw stop;
    return this.pglite;
  }

  async raw(sqlText: string): Promise<void> {
    await this.use().exec(sqlText);
  }

  async executeQuery<R>(compiled: CompiledQuery): Promise<QueryResult<R>> {
    const res = await this.use().query<R>(compiled.sql, compiled.parameters as unknown[]);
    return {
      rows: res.rows,
      ...(res.affectedRows !== undefined ? { numAffectedRows: BigInt(res.affectedRows) } : {}),
    };
  }

  // biome-ignore lint/correctness/useYield: PGlite has no cursors; Kysely only calls this for .stream().
  async *streamQuery<R>(): AsyncIterableIterator<QueryResult<R>> {
    throw new Error('streaming queries are not supported on PGlite');
  }
}
