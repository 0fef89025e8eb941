import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase } from '../../src/db/connect.js';
import type { Db } from '../../src/db/types.js';
import { isDatabaseUnavailable } from '../../src/db/unavailable.js';
import { createTestDatabase } from '../support/database.js';

// Readiness must tell "PostgreSQL is down" from "this node is too busy to hand out a connection":
// through the requests' pool, an overloaded node's probe timed out waiting for a connection and
// /readyz said the database was down, on every node of a fleet at once (docs/operations.md,
// "Overload").
describe('the database readiness ping', () => {
  let dir: string;
  let pg: Awaited<ReturnType<typeof createTestDatabase>>;
  let db: Db;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'signet-ping-'));
    pg = await createTestDatabase();
    db = await openDatabase({ databaseUrl: pg.url, dataDir: dir, migrate: false, poolSize: 2 });
  });
  afterAll(async () => {
    await db?.close();
    await pg?.drop();
    await rm(dir, { recursive: true, force: true });
  });

  it("answers on a connection of its own while every connection of the requests' pool is taken", async () => {
    // Both of the pool's connections held for 3 s, and a third request waiting for one of them.
    const held = [1, 2].map(() => sql`select pg_sleep(3)`.execute(db.kysely));
    await new Promise((r) => setTimeout(r, 200));
    const waiting = sql`select 1`.execute(db.kysely).then(
      () => 'served',
      (err: unknown) => err,
    );
    // PostgreSQL's clock (epoch ms), which the probe measures this node's against.
    expect(Math.abs((await db.ping())! - Date.now())).toBeLessThan(5000);
    // The pool really was full: the waiting request gave up after its 2 s (a 503 for a client).
    const outcome = await waiting;
    expect(outcome).toBeInstanceOf(Error);
    expect((outcome as Error).message).toBe('timeout exceeded when trying to connect');
    expect(isDatabaseUnavailable(outcome)).toBe(true);
    await Promise.all(held);
    expect(Math.abs((await db.ping())! - Date.now())).toBeLessThan(5000);
  });
});
