import { mkdtemp, readFile, rename, rm, utimes, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase } from '../../src/db/connect.js';
import { isDatabaseUnavailable } from '../../src/db/unavailable.js';
import { collect, runCli, spawnServer } from '../support/cli.js';
import { GatewayProcess } from '../support/gateway-process.js';

/** A lock as a holder on another host writes it. */
const elsewhere = () =>
  `${JSON.stringify({ pid: 4242, host: 'another-host', since: new Date().toISOString() })}\n`;

/** Replaces a file in one step (what a lock taken over looks like to its old holder). */
async function replace(file: string, text: string): Promise<void> {
  await writeFile(`${file}.new`, text);
  await rename(`${file}.new`, file);
}

// One process at a time on an embedded database (docs/architecture.md, "Embedded database"):
// PGlite takes no lock of its own, and two processes writing one cluster lose rows.
describe('embedded database: one process per DATA_DIR', () => {
  let dataDir: string;
  const env = () => ({ DATA_DIR: dataDir, STORAGE_DRIVER: 'local', SEED_DEMO: 'false' });
  const lockFile = () => path.join(dataDir, 'pglite.lock');

  beforeAll(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'signet-embedded-lock-'));
  });
  afterAll(async () => {
    await rm(dataDir, { recursive: true, force: true });
  });

  it('a second server, and the CLI, are refused while a server runs; the first keeps serving', async () => {
    const first = await GatewayProcess.start(env(), 60_000);
    try {
      const holder = JSON.parse(await readFile(lockFile(), 'utf8'));
      expect(holder).toMatchObject({ pid: first.pid, host: os.hostname() });

      const second = await collect(await spawnServer(env()), 60_000);
      expect(second.code).toBe(1);
      expect(second.stderr).toContain(`in use by process ${first.pid} on this host`);
      expect(second.stderr).not.toContain('    at ');
      expect(second.stderr).toContain('one server per DATA_DIR');

      const check = await runCli(['check'], env());
      expect(check.code).toBe(1);
      const row = check.stdout.split('\n').find((l) => l.startsWith('database'));
      expect(row).toMatch(/^database\s+down\b/);
      expect(row).toContain(`in use by process ${first.pid} on this host`);

      // The first one's lock and service are untouched.
      expect(JSON.parse(await readFile(lockFile(), 'utf8')).pid).toBe(first.pid);
      expect((await fetch(`${first.url}/readyz`)).status).toBe(200);
    } finally {
      await first.stop();
    }
    // A graceful stop releases it.
    await expect(readFile(lockFile())).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('a server killed with SIGKILL leaves its lock, and the next start takes it over at once', async () => {
    const first = await GatewayProcess.start(env(), 60_000);
    await first.kill('SIGKILL');
    expect(JSON.parse(await readFile(lockFile(), 'utf8')).pid).toBe(first.pid);
    // An mtime an hour ahead: judged by its age, as a holder elsewhere is, the lock would never
    // turn stale. Taken over all the same: the process table says its holder is gone.
    const ahead = new Date(Date.now() + 3_600_000);
    await utimes(lockFile(), ahead, ahead);
    const next = await spawnServer(env());
    try {
      await expect
        .poll(async () => JSON.parse(await readFile(lockFile(), 'utf8')).pid, { timeout: 30_000 })
        .toBe(next.pid);
    } finally {
      next.kill('SIGKILL');
      await new Promise((r) => next.once('exit', r));
    }
  });

  it('a server whose lock is taken over stops (exit 1), saying why', async () => {
    const gw = await GatewayProcess.start(env(), 60_000);
    await replace(lockFile(), elsewhere());
    const exit = await gw.exited;
    expect(exit.code).toBe(1);
    expect(gw.logs.join('\n')).toContain('lost its DATA_DIR lock');
    // It left the other's lock alone.
    expect(JSON.parse(await readFile(lockFile(), 'utf8')).pid).toBe(4242);
    await rm(lockFile());
  });

  it('a process whose lock was taken over stops using the cluster, and never checkpoints it', async () => {
    const lost: Error[] = [];
    const db = await openDatabase({
      databaseUrl: undefined,
      dataDir,
      lock: { heartbeatMs: 50, onLost: (e) => lost.push(e) },
    });
    await sql`select 1`.execute(db.kysely);
    const control = await readFile(path.join(dataDir, 'pglite', 'global', 'pg_control'));
    const other = elsewhere();
    await replace(lockFile(), other);
    await expect.poll(() => lost.length, { timeout: 5_000 }).toBe(1);
    expect(lost[0]!.message).toContain('taken over by another process (pid 4242 on another-host)');
    const err = await sql`select 1`.execute(db.kysely).catch((e: unknown) => e);
    expect(isDatabaseUnavailable(err)).toBe(true);
    expect((err as Error).message).toContain('no longer uses it');
    await db.close();
    // No shutdown checkpoint was written into the cluster the other process now owns.
    expect(await readFile(path.join(dataDir, 'pglite', 'global', 'pg_control'))).toEqual(control);
    expect(await readFile(lockFile(), 'utf8')).toBe(other);
    await rm(lockFile());
  });

  it('a cluster PGlite cannot start fails the open and releases the lock', async () => {
    const broken = await mkdtemp(path.join(os.tmpdir(), 'signet-embedded-broken-'));
    try {
      await (await openDatabase({ databaseUrl: undefined, dataDir: broken })).close();
      await writeFile(path.join(broken, 'pglite', 'global', 'pg_control'), Buffer.alloc(8192));
      for (let i = 0; i < 2; i++) {
        const err = await openDatabase({ databaseUrl: undefined, dataDir: broken }).catch((e: Error) => e);
        expect(err).toBeInstanceOf(Error);
        // The second attempt fails as the first did, not as "already open in this process".
        expect((err as Error).message).not.toMatch(/already open|in use/);
        await expect(readFile(path.join(broken, 'pglite.lock'))).rejects.toMatchObject({ code: 'ENOENT' });
      }
    } finally {
      await rm(broken, { recursive: true, force: true });
    }
  });
});
