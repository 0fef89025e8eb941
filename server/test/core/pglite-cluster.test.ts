import { existsSync } from 'node:fs';
import { lstat, mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase } from '../../src/db/connect.js';
import {
  buildPgliteTemplate,
  clusterState,
  defaultPgliteTemplate,
  initPgliteCluster,
  removeOtherTemplates,
} from '../../src/db/pglite-init.js';

// The embedded database's first start (docs/architecture.md, "Embedded database"): a cluster
// copied from the build's template, or written by initdb when there is none, and made whole in a
// sibling directory before it takes its place.
describe('embedded database: the first start', () => {
  let root: string;
  let template: string;

  beforeAll(async () => {
    root = await mkdtemp(path.join(os.tmpdir(), 'signet-pglite-cluster-'));
    template = path.join(root, 'template');
    // What a build killed while removing its scratch cluster left: PG_VERSION and little else.
    await mkdir(`${template}.work`);
    await writeFile(path.join(`${template}.work`, 'PG_VERSION'), '18');
    expect(await buildPgliteTemplate(template)).toBe(true);
  });
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  /** Entries of `parent` named like a half-made cluster or template. */
  const leftovers = async (parent: string) =>
    (await readdir(parent)).filter((n) => /\.(partial|work)$/.test(n));

  it('makes the template from a new cluster shut down cleanly, once, each file gzipped, readable by all', async () => {
    expect(existsSync(path.join(template, 'PG_VERSION.gz'))).toBe(true);
    expect(existsSync(path.join(template, 'PG_VERSION'))).toBe(false);
    // PostgreSQL's DB_SHUTDOWNED in pg_control: not the stale scratch directory's PG_VERSION alone.
    const control = gunzipSync(await readFile(path.join(template, 'global', 'pg_control.gz')));
    expect(control.readInt32LE(16)).toBe(1);
    // Readable by whichever user the server runs as (the image builds as root, runs as node).
    expect((await stat(template)).mode & 0o777).toBe(0o755);
    expect((await stat(path.join(template, 'global'))).mode & 0o777).toBe(0o755);
    expect((await stat(path.join(template, 'PG_VERSION.gz'))).mode & 0o777).toBe(0o644);
    expect(await buildPgliteTemplate(template)).toBe(false);
    expect(await leftovers(root)).toEqual([]);
  });

  it("the default template is the build's, named for the installed PGlite", async () => {
    const here = path.dirname(fileURLToPath(import.meta.url));
    const manifest = path.resolve(here, '../../../node_modules/@electric-sql/pglite/package.json');
    const { version } = JSON.parse(await readFile(manifest, 'utf8')) as { version: string };
    expect(defaultPgliteTemplate()).toBe(path.resolve(here, '../../dist', `pglite-cluster-${version}`));
  });

  it("a build removes other PGlite versions' templates and nothing else", async () => {
    const dist = path.join(root, 'dist');
    await mkdir(path.join(dist, 'pglite-cluster-0.0.1'), { recursive: true });
    await mkdir(path.join(dist, 'pglite-cluster-9.9.9'));
    await writeFile(path.join(dist, 'main.js'), '');
    expect(await removeOtherTemplates(path.join(dist, 'pglite-cluster-9.9.9'))).toEqual([
      'pglite-cluster-0.0.1',
    ]);
    expect((await readdir(dist)).sort()).toEqual(['main.js', 'pglite-cluster-9.9.9']);
  });

  it('copies the template into a new data directory, which serves and keeps what is written', async () => {
    const dataDir = path.join(root, 'from-template');
    const dir = path.join(dataDir, 'pglite');
    await mkdir(dir, { recursive: true });
    // What an earlier first start that was killed half-way left beside it.
    await mkdir(`${dir}.partial`);
    await writeFile(path.join(`${dir}.partial`, 'PG_VERSION'), '18');
    const firstStarts: unknown[] = [];
    // A started server: openDatabase copies the template, runs the migrations and serves.
    let db = await openDatabase({
      databaseUrl: undefined,
      dataDir,
      onFirstStart: (i) => firstStarts.push(i),
    });
    // (openDatabase takes the build's template; this test's own is copied the same way below.)
    await db.close();
    expect(firstStarts).toHaveLength(1);
    await rm(dir, { recursive: true });
    expect(await initPgliteCluster(dir, template)).toEqual({ source: 'template' });
    expect(existsSync(`${dir}.partial`)).toBe(false);
    // The cluster as initdb left it, its files unzipped, and the server's alone.
    expect((await readFile(path.join(dir, 'PG_VERSION'), 'utf8')).trim()).toMatch(/^\d+$/);
    expect(await clusterState(dir)).toBe(1);
    expect((await stat(dir)).mode & 0o777).toBe(0o700);
    expect((await stat(path.join(dir, 'global'))).mode & 0o777).toBe(0o700);
    expect((await stat(path.join(dir, 'global', 'pg_control'))).mode & 0o777).toBe(0o600);
    db = await openDatabase({ databaseUrl: undefined, dataDir, onFirstStart: (i) => firstStarts.push(i) });
    await sql`insert into images (id, owner_id, object_key, content_type, byte_size, created_at)
      values ('00000000-0000-4000-8000-000000000001', 'alice', 'alice/a.jpg', 'image/jpeg', 3, now())`.execute(
      db.kysely,
    );
    await db.close();
    // A restart opens it as it is (no copy over it, no first start reported).
    expect(await initPgliteCluster(dir, template)).toBeUndefined();
    db = await openDatabase({ databaseUrl: undefined, dataDir, onFirstStart: (i) => firstStarts.push(i) });
    const rows = await sql<{ owner_id: string }>`select owner_id from images`.execute(db.kysely);
    await db.close();
    expect(rows.rows).toEqual([{ owner_id: 'alice' }]);
    expect(firstStarts).toHaveLength(1);
    expect(await leftovers(dataDir)).toEqual([]);
  });

  it('runs initdb in a child process when there is no template', async () => {
    const dir = path.join(root, 'no-template');
    const made = await initPgliteCluster(dir, path.join(root, 'missing-template'));
    expect(made?.source).toBe('initdb');
    expect(made?.childPeakMiB).toBeGreaterThan(0);
    expect(existsSync(path.join(dir, 'PG_VERSION'))).toBe(true);
    expect((await stat(dir)).mode & 0o777).toBe(0o700);
    expect(await leftovers(root)).toEqual([]);
  });

  it('a damaged template fails the start with an error that names it, and leaves no half-made cluster', async () => {
    const damaged = path.join(root, 'damaged');
    await mkdir(damaged);
    await writeFile(path.join(damaged, 'PG_VERSION.gz'), 'not gzip');
    const dir = path.join(root, 'from-damaged');
    await mkdir(dir);
    await expect(initPgliteCluster(dir, damaged)).rejects.toThrow(
      `could not copy the build's database template ${damaged} (incorrect header check): build again, or delete it to start with initdb`,
    );
    expect(await readdir(dir)).toEqual([]);
    expect(await leftovers(root)).toEqual([]);
  });

  it('refuses a directory that holds files but no cluster, and touches none of them', async () => {
    const dir = path.join(root, 'not-a-cluster');
    await mkdir(dir);
    await writeFile(path.join(dir, 'notes.txt'), 'mine');
    await expect(initPgliteCluster(dir, template)).rejects.toThrow(
      `${dir} holds files but no database cluster (no PG_VERSION): move it away and start again`,
    );
    expect(await readdir(dir)).toEqual(['notes.txt']);
    expect(await leftovers(root)).toEqual([]);
  });

  it('a symlinked directory gets the cluster where it points, and the link stays', async () => {
    const target = path.join(root, 'elsewhere');
    await mkdir(target);
    const dir = path.join(root, 'linked');
    await symlink(target, dir);
    expect(await initPgliteCluster(dir, template)).toEqual({ source: 'template' });
    expect((await lstat(dir)).isSymbolicLink()).toBe(true);
    expect(existsSync(path.join(target, 'PG_VERSION'))).toBe(true);
    expect(await initPgliteCluster(dir, template)).toBeUndefined();
    expect(await leftovers(root)).toEqual([]);
  });
});
