import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { openDatabase } from '../../server/src/db/connect.js';
import { encodeCursor } from '../../server/src/schema/validate.js';

export const baseDatabaseUrl = () =>
  process.env.BENCH_DATABASE_URL ??
  process.env.TEST_DATABASE_URL ??
  'postgres://postgres@127.0.0.1:5432/test';

/** A fresh database for the run (dropped at the end), migrated by the product's own migrations. */
export async function createBenchDatabase(): Promise<{
  url: string;
  name: string;
  drop: () => Promise<void>;
}> {
  const base = new URL(baseDatabaseUrl());
  const name = `signet_bench_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: base.toString() });
  try {
    await admin.connect();
  } catch (err) {
    throw new Error(
      `PostgreSQL is not reachable at ${base.host} (set BENCH_DATABASE_URL): ${(err as Error).message}`,
    );
  }
  await admin.query(`create database ${name}`);
  await admin.end();
  const url = new URL(base.toString());
  url.pathname = `/${name}`;
  const db = await openDatabase({ databaseUrl: url.toString(), dataDir: '/tmp' });
  await db.close();
  return {
    url: url.toString(),
    name,
    async drop() {
      const c = new pg.Client({ connectionString: base.toString() });
      await c.connect();
      await c.query(`drop database if exists ${name} with (force)`);
      await c.end();
    },
  };
}

export async function withClient<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

export async function serverVersion(url: string): Promise<string> {
  return withClient(
    url,
    async (c) => (await c.query<{ v: string }>("select current_setting('server_version') as v")).rows[0]!.v,
  );
}

/**
 * Inserts `count` rows for `owner` in one statement. Keys are `b/<owner>/<n>.png`, so the object
 * store can be filled without a list of ids; created_at is whole milliseconds apart (newest = n).
 * Rows carry their placeholder and say they are stills, as in a deployment whose backfills have
 * run: otherwise every worker a scenario starts spends its first minutes computing 111,000
 * ThumbHashes (and reading as many heads for animation) beside what is measured.
 */
export async function seedRows(
  url: string,
  owner: string,
  count: number,
  object: { byteSize: number; etag: string; contentType: string; suffix: string; placeholder: string },
): Promise<void> {
  await withClient(url, async (c) => {
    await c.query(
      `insert into images (owner_id, object_key, content_type, byte_size, width, height, etag, placeholder, animated, created_at)
       select $1::text, 'b/' || $1::text || '/' || g || $6::text, $2, $3, 24, 16, $4, $7, false,
              date_trunc('second', now()) - interval '1 day' + g * interval '1 millisecond'
       from generate_series(1, $5::int) g`,
      [owner, object.contentType, object.byteSize, object.etag, count, object.suffix, object.placeholder],
    );
  });
}

export async function analyze(url: string): Promise<void> {
  await withClient(url, async (c) => {
    await c.query('analyze images');
  });
}

export interface OwnerRows {
  /** Newest first, as the page query orders them. */
  ids: string[];
  keys: string[];
  /** cursors[i] is the `after` cursor that starts a page right after row i. */
  cursors: string[];
}

export async function ownerRows(url: string, owner: string): Promise<OwnerRows> {
  return withClient(url, async (c) => {
    const { rows } = await c.query<{ id: string; object_key: string; created_at: Date }>(
      `select id, object_key, created_at from images where owner_id = $1 and deleted_at is null
       order by created_at desc, id desc`,
      [owner],
    );
    return {
      ids: rows.map((r) => r.id),
      keys: rows.map((r) => r.object_key),
      cursors: rows.map((r) => encodeCursor({ createdAt: r.created_at, id: r.id })),
    };
  });
}
