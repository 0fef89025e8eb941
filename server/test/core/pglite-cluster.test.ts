import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase } from '../../src/db/connect.js';
import { buildPgliteTemplate, initPgliteCluster } from '../../src/db/pglite-init.js';

// The embedded database's first start (docs/architecture.md, "Embedded database"): a cluster
// copied from the build's template, or written by initdb when there is none, and made whole in a
// sibling directory before it takes its place.
describe('embedded database: the first start', () => {
  let root: string;
  let template: string;

  beforeAll(async () => {
    root = await mkdtemp(path.join(os.tmpdir(), 'signet-pglite-cluster-'));
    template = path.join(root, 'template');
    expect(await buildPgliteTemplate(template)).toBe(true);
  });
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  /** Entries of the test's directory named like a half-made cluster or template. */
  const leftovers = async () => (await readdir(root)).filter((n) => /\.(partial|work)$/.test(n));

  it('makes the template once: each file gzipped, nothing left beside it', async () => {
    expect(existsSync(path.join(template, 'PG_VERSION.gz'))).toBe(true);
    expect(existsSync(path.join(template, 'PG_VERSION'))).toBe(false);
    // Readable by whichever user the server runs as (the image builds as root, runs as node).
    expect((await stat(template)).mode & 0o777).toBe(0o755);
    expect((await stat(path.join(template, 'PG_VERSION.gz'))).mode & 0o777).toBe(0o644);
    expect(await buildPgliteTemplate(template)).toBe(false);
    expect(await leftovers()).toEqual([]);
  });

  it('copies the template into a new data directory, which serves and keeps what is written', async () => {
    const dataDir = path.join(root, 'from-template');
    const dir = path.join(dataDir, 'pglite');
    await mkdir(dir, { recursive: true });
    // What an earlier first start that died half-way left beside it.
    await mkdir(`${dir}.partial`);
    await writeFile(path.join(`${dir}.partial`, 'PG_VERSION'), '18');
    expect(await initPgliteCluster(dir, template)).toEqual({ source: 'template' });
    expect(existsSync(`${dir}.partial`)).toBe(false);
    // The cluster as initdb left it, its files unzipped, and the server's alone.
    expect((await readFile(path.join(dir, 'PG_VERSION'), 'utf8')).trim()).toMatch(/^\d+$/);
    expect((await stat(dir)).mode & 0o777).toBe(0o700);
    expect((await stat(path.join(dir, 'PG_VERSION'))).mode & 0o777).toBe(0o600);
    // A started server: openDatabase finds the cluster, runs the migrations and serves.
    let db = await openDatabase({ databaseUrl: undefined, dataDir });
    await sql`insert into images (id, owner_id, object_key, content_type, byte_size, created_at)
      values ('00000000-0000-4000-8000-000000000001', 'alice', 'alice/a.jpg', 'image/jpeg', 3, now())`.execute(
      db.kysely,
    );
    await db.close();
    // A restart opens it as it is (no copy over it).
    expect(await initPgliteCluster(dir, template)).toBeUndefined();
    db = await openDatabase({ databaseUrl: undefined, dataDir });
    const rows = await sql<{ owner_id: string }>`select owner_id from images`.execute(db.kysely);
    await db.close();
    expect(rows.rows).toEqual([{ owner_id: 'alice' }]);
    expect(await leftovers()).toEqual([]);
  });

  it('runs initdb in a child process when there is no template', async () => {
    const dir = path.join(root, 'no-template');
    const made = await initPgliteCluster(dir, path.join(root, 'missing-template'));
    expect(made?.source).toBe('initdb');
    expect(made?.childPeakMiB).toBeGreaterThan(0);
    expect(existsSync(path.join(dir, 'PG_VERSION'))).toBe(true);
    expect((await stat(dir)).mode & 0o777).toBe(0o700);
    expect(await leftovers()).toEqual([]);
  });

  it('a damaged template fails the start with a clear error and leaves no half-made cluster', async () => {
    const damaged = path.join(root, 'damaged');
    await mkdir(damaged);
    await writeFile(path.join(damaged, 'PG_VERSION.gz'), 'not gzip');
    const dir = path.join(root, 'from-damaged');
    await mkdir(dir);
    await expect(initPgliteCluster(dir, damaged)).rejects.toThrow(/header|gzip|incorrect/i);
    expect(await readdir(dir)).toEqual([]);
    expect(await leftovers()).toEqual([]);
  });

  it('refuses a directory that holds files but no cluster, and touches none of them', async () => {
    const dir = path.join(root, 'not-a-cluster');
    await mkdir(dir);
    await writeFile(path.join(dir, 'notes.txt'), 'mine');
    await expect(initPgliteCluster(dir, template)).rejects.toThrow(
      `${dir} holds files but no database cluster (no PG_VERSION): move it away and start again`,
    );
    expect(await readdir(dir)).toEqual(['notes.txt']);
    expect(await leftovers()).toEqual([]);
  });
});
