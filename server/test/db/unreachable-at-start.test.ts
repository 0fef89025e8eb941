import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase } from '../../src/db/connect.js';
import { StartFailure } from '../../src/lib/start-failure.js';
import { collect, spawnServer } from '../support/cli.js';
import { createTestDatabase } from '../support/database.js';
import { testDatabaseUrl } from '../support/env.js';
import { freePort } from '../support/ports.js';

// A PostgreSQL that is not there at start: one line that names the variable and where it points,
// not "database migration failed" and a stack (docs/operations.md, "Runbook").
describe('a start that cannot reach PostgreSQL', () => {
  let dataDir: string;
  beforeAll(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'signet-unreachable-'));
  });
  afterAll(async () => {
    await rm(dataDir, { recursive: true, force: true });
  });

  it('the server exits 1 with one line naming DATABASE_URL, its host, port and database, and why', async () => {
    const dead = await freePort();
    const child = await spawnServer({
      DATA_DIR: dataDir,
      STORAGE_DRIVER: 'local',
      DATABASE_URL: `postgres://signet:hunter2-secret@127.0.0.1:${dead}/signet`,
    });
    const run = await collect(child, 60_000);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(
      `signet: failed to start: cannot reach the database at DATABASE_URL (127.0.0.1:${dead}/signet): `,
    );
    expect(run.stderr).toContain('ECONNREFUSED');
    expect(run.stderr).not.toContain('    at ');
    // The URL's password is no business of a log.
    expect(run.stderr).not.toContain('hunter2');
  }, 90_000);

  it('names DATABASE_DIRECT_URL when the migrations cannot reach it', async () => {
    const pooled = await createTestDatabase();
    const dead = await freePort();
    try {
      const err = await openDatabase({
        databaseUrl: pooled.url,
        directUrl: `postgres://postgres@127.0.0.1:${dead}/elsewhere`,
        dataDir,
      }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(StartFailure);
      expect((err as Error).message).toMatch(
        new RegExp(
          `^cannot reach the database at DATABASE_DIRECT_URL \\(127\\.0\\.0\\.1:${dead}/elsewhere\\): `,
        ),
      );
    } finally {
      await pooled.drop();
    }
  });

  it('a database that does not exist is named as such', async () => {
    const url = new URL(testDatabaseUrl());
    url.pathname = '/signet_no_such_database';
    const err = await openDatabase({ databaseUrl: url.toString(), dataDir }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StartFailure);
    expect((err as Error).message).toContain(
      `cannot reach the database at DATABASE_URL (${url.hostname}:${url.port || '5432'}/signet_no_such_database): database "signet_no_such_database" does not exist`,
    );
  });
});
