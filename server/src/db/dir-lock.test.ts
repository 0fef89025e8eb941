import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DirLockedError, lockDir } from './dir-lock.js';

const here = path.dirname(fileURLToPath(import.meta.url));

/** A real second process holding `target`'s lock until killed (prints "held" once it has it). */
async function holderProcess(target: string): Promise<ChildProcess> {
  const script = `
    const { lockDir } = await import(${JSON.stringify(path.join(here, 'dir-lock.ts'))});
    await lockDir(process.argv[1], { heartbeatMs: 100 });
    process.stdout.write('held\\n');
    setInterval(() => {}, 1000);
  `;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script, target], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      if (d.toString().includes('held')) resolve();
    });
    child.on('exit', (code) => reject(new Error(`the holder exited (${code}) before taking the lock`)));
  });
  return child;
}

/** The pid of a process that has exited (free again, as far as anything here can tell). */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', '']);
  await new Promise((r) => child.on('exit', r));
  return child.pid!;
}

const holderText = (pid: number, host = os.hostname()) =>
  `${JSON.stringify({ pid, host, since: '2026-01-01T00:00:00.000Z' })}\n`;

describe('dir lock: one process at a time on an embedded database', () => {
  let root: string;
  let n = 0;
  const children: ChildProcess[] = [];
  beforeAll(async () => {
    root = await mkdtemp(path.join(os.tmpdir(), 'signet-dir-lock-'));
  });
  afterEach(() => {
    for (const c of children.splice(0)) c.kill('SIGKILL');
  });
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });
  /** A new cluster path of this file's temporary directory (nothing is made there). */
  const next = () => path.join(root, `c-${++n}`);

  it('makes <dir>.lock naming this process, and release removes it', async () => {
    const dir = next();
    const lock = await lockDir(dir);
    expect(lock.path).toBe(`${dir}.lock`);
    const holder = JSON.parse(await readFile(lock.path, 'utf8'));
    expect(holder).toMatchObject({ pid: process.pid, host: os.hostname() });
    expect(new Date(holder.since).getTime()).toBeGreaterThan(Date.now() - 60_000);
    expect((await stat(lock.path)).mode & 0o777).toBe(0o600);
    await lock.release();
    await expect(stat(lock.path)).rejects.toMatchObject({ code: 'ENOENT' });
    // Free again.
    await (await lockDir(dir)).release();
  });

  it('refuses a second open in this process', async () => {
    const dir = next();
    const lock = await lockDir(dir);
    await expect(lockDir(dir)).rejects.toThrow(/already open in this process/);
    await lock.release();
  });

  it('refuses at once while a live process on this host holds it, naming it', async () => {
    const dir = next();
    const child = await holderProcess(dir);
    children.push(child);
    const t0 = Date.now();
    const err = await lockDir(dir, { waitMs: 10_000 }).catch((e: Error) => e);
    expect(err).toBeInstanceOf(DirLockedError);
    expect((err as Error).message).toContain(`in use by process ${child.pid} on this host`);
    expect((err as Error).message).toContain('one server per DATA_DIR');
    // Not the 10 s wait a holder elsewhere gets: this host's process table says it is alive.
    expect(Date.now() - t0).toBeLessThan(5_000);
    // The holder's file is untouched.
    expect(JSON.parse(await readFile(`${dir}.lock`, 'utf8')).pid).toBe(child.pid);
  });

  it('takes over the lock of a holder that was killed (SIGKILL: no release)', async () => {
    const dir = next();
    const child = await holderProcess(dir);
    child.kill('SIGKILL');
    await new Promise((r) => child.on('exit', r));
    const lock = await lockDir(dir, { waitMs: 0 });
    expect(JSON.parse(await readFile(lock.path, 'utf8')).pid).toBe(process.pid);
    await lock.release();
  });

  it("takes over a lock naming a pid that is no process, or this process' own pid", async () => {
    for (const pid of [await deadPid(), process.pid]) {
      const dir = next();
      await writeFile(`${dir}.lock`, holderText(pid));
      const lock = await lockDir(dir, { waitMs: 0 });
      expect(JSON.parse(await readFile(lock.path, 'utf8')).pid).toBe(process.pid);
      await lock.release();
    }
  });

  it('waits for a holder on another host, then refuses while its heartbeat is fresh', async () => {
    const dir = next();
    await writeFile(`${dir}.lock`, holderText(4242, 'another-host'));
    const t0 = Date.now();
    const err = await lockDir(dir, { waitMs: 600, heartbeatMs: 100 }).catch((e: Error) => e);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(600);
    expect((err as Error).message).toContain('in use by process 4242 on host another-host');
  });

  it('takes over a holder elsewhere whose heartbeat stopped, and one whose file was cut short', async () => {
    for (const text of [holderText(4242, 'another-host'), '']) {
      const dir = next();
      await writeFile(`${dir}.lock`, text);
      const old = new Date(Date.now() - 60_000);
      await utimes(`${dir}.lock`, old, old);
      const lock = await lockDir(dir, { waitMs: 0, staleMs: 15_000 });
      expect(JSON.parse(await readFile(lock.path, 'utf8')).pid).toBe(process.pid);
      await lock.release();
    }
  });

  it('a holder turns stale while waited for, then is taken over', async () => {
    const dir = next();
    await writeFile(`${dir}.lock`, holderText(4242, 'another-host'));
    const lock = await lockDir(dir, { staleMs: 500, heartbeatMs: 100, waitMs: 5_000 });
    expect(JSON.parse(await readFile(lock.path, 'utf8')).pid).toBe(process.pid);
    await lock.release();
  });

  it('renews its mtime while held', async () => {
    const dir = next();
    const lock = await lockDir(dir, { heartbeatMs: 50 });
    const old = new Date(Date.now() - 60_000);
    await utimes(lock.path, old, old);
    await new Promise((r) => setTimeout(r, 300));
    expect(Date.now() - (await stat(lock.path)).mtimeMs).toBeLessThan(5_000);
    await lock.release();
  });

  it("tells the holder once its lock was taken over, and then leaves the other's file alone", async () => {
    const dir = next();
    const lost: Error[] = [];
    const lock = await lockDir(dir, { heartbeatMs: 50, onLost: (e) => lost.push(e) });
    // What another process does to a lock it judged stale: moves it aside and makes its own.
    await rm(lock.path);
    await writeFile(lock.path, holderText(4242, 'another-host'));
    await new Promise((r) => setTimeout(r, 400));
    expect(lost).toHaveLength(1);
    expect(lost[0]!.message).toContain('was taken over by another process (pid 4242 on another-host)');
    await lock.release();
    expect(JSON.parse(await readFile(`${dir}.lock`, 'utf8')).pid).toBe(4242);
  });

  it('of two processes started together on a stale lock, exactly one gets it', async () => {
    for (let i = 0; i < 3; i++) {
      const dir = next();
      await writeFile(`${dir}.lock`, holderText(await deadPid()));
      const racers = await Promise.all(
        [0, 1].map(() =>
          holderProcess(dir).then(
            (c) => ({ c }),
            (e: Error) => ({ e }),
          ),
        ),
      );
      for (const r of racers) if ('c' in r) children.push(r.c);
      // A process refused exits with an error before "held": one took it, the other did not.
      expect(racers.filter((r) => 'c' in r)).toHaveLength(1);
    }
  });
});
