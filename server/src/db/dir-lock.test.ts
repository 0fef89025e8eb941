import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import {
  copyFile,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  realpath,
  rename,
  rm,
  stat,
  utimes,
  writeFile,
} from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DirLockedError, lockDir } from './dir-lock.js';

const here = path.dirname(fileURLToPath(import.meta.url));

/**
 * A real second process that tries to take `target`'s lock once `go` exists (so several start
 * together), prints "held" or "refused", then keeps it and prints "lost" if it is taken from it.
 */
function contender(target: string, go?: string): ChildProcess {
  const script = `
    const { existsSync } = await import('node:fs');
    const { lockDir } = await import(${JSON.stringify(path.join(here, 'dir-lock.ts'))});
    const go = process.argv[2];
    if (go) process.stdout.write('ready\\n');
    while (go && !existsSync(go)) await new Promise((r) => setTimeout(r, 2));
    try {
      await lockDir(process.argv[1], { heartbeatMs: 50, waitMs: 0, onLost: () => process.stdout.write('lost\\n') });
      process.stdout.write('held\\n');
      setInterval(() => {}, 1000);
    } catch (err) {
      process.stdout.write('refused\\n');
    }
  `;
  return spawn(
    process.execPath,
    ['--import', 'tsx', '--input-type=module', '-e', script, target, ...(go ? [go] : [])],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
}

/**
 * What a contender says: `ready` once loaded (when it waits for a go), its first other word
 * ("held" or "refused"), and everything it says.
 */
function outcome(child: ChildProcess): { ready: Promise<void>; first: Promise<string>; said: string[] } {
  const said: string[] = [];
  let ready!: () => void;
  const readyP = new Promise<void>((r) => {
    ready = r;
  });
  const first = new Promise<string>((resolve, reject) => {
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      for (const w of d.split('\n').filter(Boolean)) {
        if (w === 'ready') ready();
        else said.push(w);
      }
      if (said.length > 0) resolve(said[0]!);
    });
    child.on('exit', (code) => reject(new Error(`the contender exited (${code}) without a word`)));
  });
  return { ready: readyP, first, said };
}

/** The pid of a process that has exited (free again, as far as anything here can tell). */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', '']);
  await new Promise((r) => child.on('exit', r));
  return child.pid!;
}

/** A lock as this host's process `pid` would write it (boot id and pid namespace as ours). */
function holderText(pid: number, extra: Record<string, unknown> = {}): string {
  const boot = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  const pidns = statSync('/proc/self/ns/pid').ino;
  return `${JSON.stringify({ pid, host: os.hostname(), boot, pidns, since: '2026-01-01T00:00:00.000Z', ...extra })}\n`;
}
const elsewhereText = (pid: number) =>
  `${JSON.stringify({ pid, host: 'another-host', since: '2026-01-01T00:00:00.000Z' })}\n`;

/** Replaces a file in one step (what a lock taken over looks like to its old holder). */
async function replace(file: string, text: string): Promise<void> {
  await writeFile(`${file}.new`, text);
  await rename(`${file}.new`, file);
}

const age = async (file: string, ms: number) => {
  const t = new Date(Date.now() - ms);
  await utimes(file, t, t);
};

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
  /** A new cluster path in this file's temporary directory (nothing is made there). */
  const next = () => path.join(root, `c-${++n}`);
  const holderPid = async (dir: string) => JSON.parse(await readFile(`${dir}.lock`, 'utf8')).pid as number;
  /** A contender that took the lock (its "held" awaited). */
  const heldBy = async (dir: string) => {
    const child = contender(dir);
    children.push(child);
    expect(await outcome(child).first).toBe('held');
    return child;
  };

  it('makes <dir>.lock naming this process whole, and release removes it', async () => {
    const dir = next();
    const lock = await lockDir(dir);
    expect(lock.path).toBe(`${dir}.lock`);
    const holder = JSON.parse(await readFile(lock.path, 'utf8'));
    expect(holder).toMatchObject({ pid: process.pid, host: os.hostname() });
    expect(holder.start).toMatch(/^\d+$/);
    expect((await stat(lock.path)).mode & 0o777).toBe(0o600);
    await lock.check();
    await lock.release();
    await expect(stat(lock.path)).rejects.toMatchObject({ code: 'ENOENT' });
    // Nothing else is left beside it (the file it was written to first is gone).
    expect((await readdir(root)).filter((f) => f.startsWith(path.basename(dir)))).toEqual([]);
    await (await lockDir(dir)).release();
  });

  it('refuses a second open in this process, also one started at the same time', async () => {
    const dir = next();
    const both = await Promise.allSettled([lockDir(dir), lockDir(dir)]);
    expect(both.map((r) => r.status).sort()).toEqual(['fulfilled', 'rejected']);
    const rejected = both.find((r) => r.status === 'rejected') as PromiseRejectedResult;
    expect(rejected.reason.message).toMatch(/already open in this process/);
    await (
      both.find((r) => r.status === 'fulfilled') as PromiseFulfilledResult<{ release(): Promise<void> }>
    ).value.release();
  });

  it('refuses at once while a live process on this host holds it, however old its mtime', async () => {
    const dir = next();
    const child = await heldBy(dir);
    // A holder busy in a long statement renews nothing: it is alive all the same.
    await age(`${dir}.lock`, 60_000);
    for (const opts of [{ waitMs: 10_000 }, { staleMs: 1_000, waitMs: 10_000 }]) {
      const t0 = Date.now();
      const err = await lockDir(dir, opts).catch((e: Error) => e);
      expect(err).toBeInstanceOf(DirLockedError);
      expect((err as Error).message).toContain(`in use by process ${child.pid} on this host`);
      expect((err as Error).message).toContain('one server per DATA_DIR');
      // Not the 10 s wait a holder elsewhere gets: the process table says it is alive.
      expect(Date.now() - t0).toBeLessThan(5_000);
    }
    expect(await holderPid(dir)).toBe(child.pid);
  });

  it('takes over at once the lock of a holder that was killed (SIGKILL: no release)', async () => {
    const dir = next();
    const child = await heldBy(dir);
    child.kill('SIGKILL');
    await new Promise((r) => child.on('exit', r));
    const lock = await lockDir(dir, { waitMs: 0 });
    expect(await holderPid(dir)).toBe(process.pid);
    await lock.release();
  });

  it("takes over a lock naming no process, this process' own pid, or a pid now another process'", async () => {
    const other = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)']);
    children.push(other);
    const texts = [
      // A start time no process has: were the pid given again meanwhile, still not the holder.
      holderText(await deadPid(), { start: '1' }),
      holderText(process.pid),
      // A live pid that started at another time than the lock's holder: given again since.
      holderText(other.pid!, { start: '1' }),
    ];
    for (const text of texts) {
      const dir = next();
      await writeFile(`${dir}.lock`, text);
      const lock = await lockDir(dir, { waitMs: 0 });
      expect(await holderPid(dir)).toBe(process.pid);
      await lock.release();
    }
  });

  it('waits for a holder on another host, then refuses while its mtime is fresh', async () => {
    const dir = next();
    await writeFile(`${dir}.lock`, elsewhereText(4242));
    const t0 = Date.now();
    const err = await lockDir(dir, { waitMs: 600, heartbeatMs: 100 }).catch((e: Error) => e);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(600);
    expect((err as Error).message).toContain('in use by process 4242 on host another-host');
  });

  it('takes over a holder elsewhere whose mtime is stale, and a file no lock of ours', async () => {
    for (const text of [elsewhereText(4242), '', 'not json']) {
      const dir = next();
      await writeFile(`${dir}.lock`, text);
      await age(`${dir}.lock`, 60_000);
      const lock = await lockDir(dir, { waitMs: 0, staleMs: 15_000 });
      expect(await holderPid(dir)).toBe(process.pid);
      await lock.release();
    }
  });

  it('a holder elsewhere turns stale while waited for, then is taken over', async () => {
    const dir = next();
    await writeFile(`${dir}.lock`, elsewhereText(4242));
    const lock = await lockDir(dir, { staleMs: 500, heartbeatMs: 100, waitMs: 5_000 });
    expect(await holderPid(dir)).toBe(process.pid);
    await lock.release();
  });

  it('renews its mtime while held', async () => {
    const dir = next();
    const lock = await lockDir(dir, { heartbeatMs: 50 });
    await age(lock.path, 60_000);
    await expect
      .poll(async () => Date.now() - (await stat(lock.path)).mtimeMs, { timeout: 5_000 })
      .toBeLessThan(5_000);
    await lock.release();
  });

  it("tells the holder once its lock was taken over, and leaves the other's file alone", async () => {
    const dir = next();
    const lost: Error[] = [];
    const lock = await lockDir(dir, { heartbeatMs: 50, onLost: (e) => lost.push(e) });
    await replace(lock.path, elsewhereText(4242));
    await expect.poll(() => lost.length, { timeout: 5_000 }).toBe(1);
    expect(lost[0]!.message).toContain('was taken over by another process (pid 4242 on another-host)');
    await expect(lock.check()).rejects.toThrow(/taken over/);
    await lock.release();
    expect(await holderPid(dir)).toBe(4242);
    expect(lost).toHaveLength(1);
  });

  it('a dead lock is not taken over while a live taker on this host holds the takeover guard', async () => {
    const dir = next();
    await writeFile(`${dir}.lock`, holderText(await deadPid(), { start: '1' }));
    // A taker stalled inside the guard (its mtime old): alive by the process table.
    const taker = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)']);
    children.push(taker);
    await writeFile(`${dir}.lock.takeover`, holderText(taker.pid!));
    await age(`${dir}.lock.takeover`, 60_000);
    let done = false;
    const taking = lockDir(dir, { waitMs: 0 }).finally(() => {
      done = true;
    });
    await new Promise((r) => setTimeout(r, 500));
    expect(done).toBe(false);
    expect(await holderPid(dir)).not.toBe(process.pid);
    taker.kill('SIGKILL');
    await new Promise((r) => taker.on('exit', r));
    const lock = await taking;
    expect(await holderPid(dir)).toBe(process.pid);
    await lock.release();
  });

  it('clears a takeover guard left by a taker elsewhere that has not touched it for 10 s', async () => {
    const dir = next();
    await writeFile(`${dir}.lock`, holderText(await deadPid(), { start: '1' }));
    await writeFile(`${dir}.lock.takeover`, elsewhereText(4242));
    await age(`${dir}.lock.takeover`, 11_000);
    const lock = await lockDir(dir, { waitMs: 0 });
    expect(await holderPid(dir)).toBe(process.pid);
    // Nothing is left beside the lock: the guard, the files written first, the moved-aside guard.
    expect((await readdir(root)).filter((f) => f.startsWith(`${path.basename(dir)}.lock.`))).toEqual([]);
    await lock.release();
  });

  it("takes over, and says so, a live holder's lock that came with a copy of its directory; the original stays refused", async () => {
    // A running node's whole DATA_DIR copied (a backup), a second server started on the copy.
    const a = next();
    const b = next();
    await mkdir(a);
    await mkdir(b);
    // What the locks name: the real paths (the temporary directory may be under a symlink).
    const [realA, realB] = [await realpath(a), await realpath(b)];
    const child = contender(a);
    children.push(child);
    const { first, said } = outcome(child);
    expect(await first).toBe('held');
    const original = await readFile(`${a}.lock`, 'utf8');
    expect(JSON.parse(original)).toMatchObject({
      dir: realA,
      dev: expect.any(String),
      ino: expect.any(String),
    });
    await copyFile(`${a}.lock`, `${b}.lock`);
    const copied: string[] = [];
    const t0 = Date.now();
    const lock = await lockDir(b, { waitMs: 10_000, onCopied: (m) => copied.push(m) });
    // At once: the holder is alive, of another directory.
    expect(Date.now() - t0).toBeLessThan(5_000);
    expect(await holderPid(b)).toBe(process.pid);
    expect(JSON.parse(await readFile(`${b}.lock`, 'utf8'))).toMatchObject({ dir: realB });
    expect(copied).toHaveLength(1);
    expect(copied[0]).toContain(
      `names process ${child.pid} of this host, which holds ${realA}, not this directory (${realB})`,
    );
    // The original is still the child's, refused as before, and the child kept it.
    const err = await lockDir(a, { waitMs: 0 }).catch((e: Error) => e);
    expect(err).toBeInstanceOf(DirLockedError);
    expect((err as Error).message).toContain(`in use by process ${child.pid} on this host`);
    expect(await readFile(`${a}.lock`, 'utf8')).toBe(original);
    await new Promise((r) => setTimeout(r, 200));
    expect(said).toEqual(['held']);
    await lock.release();
  });

  it('tells this directory from another by path and by device and inode', async () => {
    const live = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)']);
    children.push(live);
    const made = next();
    await mkdir(made);
    const dir = await realpath(made);
    const s = await stat(dir, { bigint: true });
    const same = { dev: String(s.dev), ino: String(s.ino) };
    const cases: [string, Record<string, unknown>, 'refused' | 'taken over'][] = [
      // The same directory under another path (moved while held, a bind mount): still held.
      ['another path, this inode', { dir: `${root}/elsewhere`, ...same }, 'refused'],
      ['this path and inode', { dir, ...same }, 'refused'],
      // This path, another inode: the path decides for this directory (never a false takeover).
      ['this path, another inode', { dir, dev: same.dev, ino: '1' }, 'refused'],
      // A lock of an earlier version, naming no directory.
      ['no directory', {}, 'refused'],
      ['another path and inode', { dir: `${root}/elsewhere`, dev: same.dev, ino: '1' }, 'taken over'],
      ['another path, no inode', { dir: `${root}/elsewhere` }, 'taken over'],
    ];
    for (const [name, place, expected] of cases) {
      await writeFile(`${dir}.lock`, holderText(live.pid!, place));
      const copied: string[] = [];
      const got = await lockDir(dir, { waitMs: 0, onCopied: (m) => copied.push(m) }).catch((e: Error) => e);
      if (expected === 'refused') {
        expect(got, name).toBeInstanceOf(DirLockedError);
        expect(copied, name).toEqual([]);
      } else {
        expect(got, name).not.toBeInstanceOf(Error);
        expect(copied, name).toHaveLength(1);
        await (got as { release(): Promise<void> }).release();
      }
    }
  });

  it('a copied lock of a holder on another host is not judged by its directory: its mtime decides', async () => {
    const dir = next();
    await mkdir(dir);
    // Another host may mount the same volume at another path.
    await writeFile(
      `${dir}.lock`,
      `${JSON.stringify({ pid: 4242, host: 'another-host', dir: '/mnt/elsewhere', dev: '1', ino: '1', since: '2026-01-01T00:00:00.000Z' })}\n`,
    );
    const err = await lockDir(dir, { waitMs: 300, heartbeatMs: 100, onCopied: () => {} }).catch(
      (e: Error) => e,
    );
    expect((err as Error).message).toContain('in use by process 4242 on host another-host');
  });

  it('of four processes started together on a dead lock, exactly one gets it and keeps it', async () => {
    for (const stale of ['dead pid', 'empty file'] as const) {
      for (let round = 0; round < 3; round++) {
        const dir = next();
        const go = `${dir}.go`;
        if (stale === 'dead pid') await writeFile(`${dir}.lock`, holderText(await deadPid(), { start: '1' }));
        else {
          await writeFile(`${dir}.lock`, '');
          await age(`${dir}.lock`, 60_000);
        }
        const racers = [0, 1, 2, 3].map(() => contender(dir, go));
        children.push(...racers);
        const outcomes = racers.map(outcome);
        // All four loaded and polling for the go (every 2 ms), then started together.
        await Promise.all(outcomes.map((o) => o.ready));
        await writeFile(go, '');
        const firsts = await Promise.all(outcomes.map((o) => o.first));
        expect(
          firsts.filter((f) => f === 'held'),
          `${stale}, round ${round}: ${firsts}`,
        ).toHaveLength(1);
        // The winner's heartbeats (every 50 ms) find its lock its own: a winner whose lock
        // another racer removed says "lost" at its next one.
        await new Promise((r) => setTimeout(r, 1_000));
        expect(outcomes.flatMap((o) => o.said).filter((s) => s === 'lost')).toEqual([]);
        const winner = racers[firsts.indexOf('held')]!;
        expect(await holderPid(dir)).toBe(winner.pid);
        for (const c of racers) c.kill('SIGKILL');
      }
    }
  }, 180_000);
});
