import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { classify } from '../../src/errors/index.js';
import { JPEG_5x3 } from '../fixtures/images.js';
import { createTestDatabase } from '../support/database.js';
import { testRedisUrl } from '../support/env.js';
import { type Harness, startHarness } from '../support/harness.js';
import { PgBouncer } from '../support/pgbouncer.js';
import { uploadFile } from '../support/upload.js';

// A database that is there but cannot answer in time (a statement timeout, a lock, PgBouncer out
// of server connections) is a 503 with Retry-After, retried by the client, not a masked 500 and
// an "unexpected error" in the log. And nothing is left behind: an upload whose insert times out
// deletes the object it wrote.

const PAGE = 'query { images(first: 10) { totalCount edges { node { id proxyUrl } } } }';
type Page = { images: { totalCount: number; edges: { node: { id: string; proxyUrl: string } }[] } };

/** A session of its own on `url` that holds a lock on `images` until release(). */
async function lockImages(url: string, mode: 'access exclusive' | 'share') {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  await c.query('begin');
  await c.query(`lock table images in ${mode} mode`);
  return {
    client: c,
    async release() {
      await c.query('rollback');
      await c.end();
    },
  };
}

async function rowCount(url: string): Promise<number> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return Number((await c.query('select count(*)::int as n from images')).rows[0].n);
  } finally {
    await c.end();
  }
}

const unexpectedLogged = (h: Harness) => h.logs.filter((l) => l.includes('unexpected error'));

describe('a statement timeout on PostgreSQL', () => {
  let pgdb: Awaited<ReturnType<typeof createTestDatabase>>;
  let h: Harness;
  let imageIds: string[];

  beforeAll(async () => {
    pgdb = await createTestDatabase();
    // The role's or database's timeout is what a request gets when the pools send none, as they
    // do with DATABASE_DIRECT_URL set (behind PgBouncer); 1 s keeps the waits below short.
    const admin = new pg.Client({ connectionString: pgdb.url });
    await admin.connect();
    await admin.query(`alter database ${new URL(pgdb.url).pathname.slice(1)} set statement_timeout = '1s'`);
    await admin.end();
    h = await startHarness({
      redis: testRedisUrl(),
      env: { DATABASE_URL: pgdb.url, DATABASE_DIRECT_URL: pgdb.url },
    });
    imageIds = [];
    for (const name of ['a.jpg', 'b.jpg']) {
      const up = await uploadFile(h, JPEG_5x3, { type: 'image/jpeg', name });
      expect(up.errors).toBeUndefined();
      imageIds.push(up.data!.uploadImage.id);
    }
  }, 60_000);
  afterAll(async () => {
    await h?.close();
    await pgdb?.drop();
  });

  it('a page that waits out the timeout on a lock is SERVICE_UNAVAILABLE with retryAfter, and answers once the lock is gone', async () => {
    const errorsOf = async (code: string) =>
      (await h.container.metrics.requestErrors.get()).values.find((v) => v.labels['code'] === code)?.value ??
      0;
    const [unavailableBefore, internalBefore] = [
      await errorsOf('SERVICE_UNAVAILABLE'),
      await errorsOf('INTERNAL_SERVER_ERROR'),
    ];
    const lock = await lockImages(pgdb.url, 'access exclusive');
    let res: Awaited<ReturnType<typeof h.gql<Page>>>;
    try {
      res = await h.gql<Page>(PAGE);
    } finally {
      await lock.release();
    }
    expect(res.data).toBeNull();
    expect(res.errors).toHaveLength(1);
    expect(res.errors![0]).toMatchObject({
      message: 'The database is busy; retry shortly',
      extensions: { code: 'SERVICE_UNAVAILABLE', retryAfter: 5 },
    });
    expect(unexpectedLogged(h)).toEqual([]);
    // Counted by the code the client got (the runbook's signet_graphql_errors_total{code=
    // "SERVICE_UNAVAILABLE"}), not as INTERNAL_SERVER_ERROR, which is for unexpected errors.
    expect(await errorsOf('SERVICE_UNAVAILABLE')).toBe(unavailableBefore + 1);
    expect(await errorsOf('INTERNAL_SERVER_ERROR')).toBe(internalBefore);

    const again = await h.gql<Page>(PAGE);
    expect(again.errors).toBeUndefined();
    expect(again.data!.images.totalCount).toBe(2);
  });

  it('a proxy link is 503 with Retry-After while its row cannot be read', async () => {
    // The second image: no proxy hit has read its row yet, so the route must ask the database.
    const page = await h.gql<Page>(PAGE);
    const link = page.data!.images.edges.find((e) => e.node.id === imageIds[1])!.node.proxyUrl;
    const lock = await lockImages(pgdb.url, 'access exclusive');
    let res: Response;
    try {
      res = await fetch(link, { redirect: 'manual' });
    } finally {
      await lock.release();
    }
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBe('5');
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('SERVICE_UNAVAILABLE');
    expect(unexpectedLogged(h)).toEqual([]);

    expect((await fetch(link, { redirect: 'manual' })).status).toBe(302);
  });

  it('an upload whose insert times out deletes the object it stored; pages are read meanwhile', async () => {
    const objects = [...h.fixture!.objects.keys()].sort();
    const rows = await rowCount(pgdb.url);
    const deletes = h.fixture!.requests.byMethod['DELETE'] ?? 0;
    // A share lock lets reads (the quota's and the page's) through and holds inserts back.
    const lock = await lockImages(pgdb.url, 'share');
    try {
      const page = await h.gql<Page>(PAGE);
      expect(page.errors).toBeUndefined();
      const up = await uploadFile(h, JPEG_5x3, { type: 'image/jpeg', name: 'c.jpg' });
      expect(up.data?.uploadImage ?? null).toBeNull();
      expect(up.errors![0]!.extensions).toMatchObject({ code: 'SERVICE_UNAVAILABLE', retryAfter: 5 });
    } finally {
      await lock.release();
    }
    expect(h.fixture!.requests.byMethod['DELETE']).toBe(deletes + 1);
    expect([...h.fixture!.objects.keys()].sort()).toEqual(objects);
    expect(await rowCount(pgdb.url)).toBe(rows);
    expect(unexpectedLogged(h)).toEqual([]);
  });

  it("a lock not granted is classified the same way; a bad statement or PostgreSQL's own protocol violation is not", async () => {
    const lock = await lockImages(pgdb.url, 'access exclusive');
    const other = new pg.Client({ connectionString: pgdb.url });
    await other.connect();
    try {
      // 55P03: lock_not_available, raised by real PostgreSQL.
      await other.query('begin');
      const err = await other.query('lock table images in share mode nowait').then(
        () => undefined,
        (e: unknown) => e,
      );
      await other.query('rollback');
      expect((err as { code?: string }).code).toBe('55P03');
      expect(classify(err)).toMatchObject({ code: 'SERVICE_UNAVAILABLE', status: 503 });
    } finally {
      await other.end();
      await lock.release();
    }
    // A bad statement is still not the database's state: unknown to the table, masked as a 500.
    const bad = await h.db.kysely
      .selectFrom('images')
      .select((eb) => eb.fn<number>('no_such_function', []).as('x'))
      .execute()
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect((bad as { code?: string }).code).toBe('42883');
    expect(classify(bad)).toBeUndefined();
    // So is a protocol violation PostgreSQL itself reports (08P01, as PgBouncer's errors are, but
    // naming its routine): here a Bind whose 16-bit parameter count wrapped around.
    const c = new pg.Client({ connectionString: pgdb.url });
    await c.connect();
    try {
      const wrapped = await c
        .query(
          'select $1::int as x',
          Array.from({ length: 70_000 }, () => 1),
        )
        .then(
          () => undefined,
          (e: unknown) => e,
        );
      expect(wrapped).toMatchObject({ code: '08P01', routine: expect.any(String) });
      expect(classify(wrapped)).toBeUndefined();
    } finally {
      await c.end().catch(() => {});
    }
  });
});

describe('behind PgBouncer, a query that waits too long for a server connection', () => {
  let bouncer: PgBouncer;
  let pgdb: Awaited<ReturnType<typeof createTestDatabase>>;
  let h: Harness;
  let name: string;

  beforeAll(async () => {
    // One server connection per pool, and a query waits for it at most 1 s.
    bouncer = await PgBouncer.start({ poolMode: 'transaction', poolSize: 1, queryWaitTimeout: 1 });
    pgdb = await createTestDatabase();
    name = new URL(pgdb.url).pathname.slice(1);
    h = await startHarness({
      redis: testRedisUrl(),
      env: { DATABASE_URL: bouncer.url(name), DATABASE_DIRECT_URL: pgdb.url },
    });
    const up = await uploadFile(h, JPEG_5x3, { type: 'image/jpeg', name: 'a.jpg' });
    expect(up.errors).toBeUndefined();
  }, 60_000);
  afterAll(async () => {
    await h?.close();
    await bouncer?.stop();
    await pgdb?.drop();
  });

  it("PgBouncer's query_wait_timeout (08P01) is SERVICE_UNAVAILABLE, and the next page is served", async () => {
    // A transaction through the pooler holds its one server connection.
    const holder = new pg.Client({ connectionString: bouncer.url(name) });
    await holder.connect();
    await holder.query('begin');
    await holder.query('select 1');
    let res: Awaited<ReturnType<typeof h.gql<Page>>>;
    try {
      res = await h.gql<Page>(PAGE);
    } finally {
      await holder.query('rollback');
      await holder.end();
    }
    expect(res.data).toBeNull();
    expect(res.errors![0]!.extensions).toMatchObject({ code: 'SERVICE_UNAVAILABLE', retryAfter: 5 });
    expect(unexpectedLogged(h)).toEqual([]);

    const again = await h.gql<Page>(PAGE);
    expect(again.errors).toBeUndefined();
    expect(again.data!.images.totalCount).toBe(1);
  });
});
