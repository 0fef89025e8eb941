import { randomBytes } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { link, open, readFile, realpath, rename, stat, unlink, utimes, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import path from 'node:path';
import { StartFailure } from '../lib/start-failure.js';

/**
 * One process at a time on an embedded database (docs/architecture.md, "Embedded database").
 * PGlite takes no lock of its own: two servers (or a server and `signet import`) on one DATA_DIR
 * both open the cluster, and each one's buffers and WAL overwrite the other's writes (rows lost,
 * seen in a probe with two processes inserting). Node has no flock, so the lock is a file beside
 * the cluster, `<cluster>.lock`, naming its holder; nothing releases it when the holder dies, so
 * whether a holder lives is found out:
 * - on the same machine and in the same pid namespace (the hostname, the kernel's boot id and the
 *   pid namespace all match), from the process table: the holder's pid is a live process that
 *   started when the holder did (a pid given again to another process is not the holder). A live
 *   holder there is refused at once however long it has not renewed the file (a server busy in a
 *   long statement is alive);
 * - anywhere else (another host on a shared volume, another container), from the file's mtime,
 *   which the holder renews every `heartbeatMs`: older than `staleMs` is dead. Such a holder is
 *   waited for up to `waitMs`, then refused.
 * The lock also names the directory it is of (its real path, device and inode): a copy of a
 * running node's whole DATA_DIR (a backup) carries the lock along, naming a live process of this
 * host that holds the original, not the copy. A live holder on this host whose directory is
 * another one (both its path and its device and inode differ from this one's) holds nothing
 * here: its lock is taken over, and `onCopied` told.
 */
export interface DirLockOptions {
  /** An mtime older than this is a dead holder's, for a holder elsewhere (default 15 s). */
  staleMs?: number;
  /** How often the holder renews the mtime (default 2 s). */
  heartbeatMs?: number;
  /** How long to wait for a holder elsewhere before refusing (default staleMs + 2 s). */
  waitMs?: number;
  /**
   * Called once if the lock is no longer this process': its file was removed or replaced by
   * another process, or could not be renewed for `staleMs - heartbeatMs`. The caller must stop
   * using the directory; `release()` then leaves the file alone.
   */
  onLost?: (err: Error) => void;
  /** Told once when a holder elsewhere is waited for (its description), so a slow start says why. */
  onWait?: (holder: string) => void;
  /**
   * Told when the lock found names a live process of this host holding another directory (it
   * came with a copy of that one), before it is taken over: what it says, for a log line.
   * Without it, a process warning (`process.emitWarning`) says so.
   */
  onCopied?: (message: string) => void;
}

export interface DirLock {
  readonly path: string;
  /** Throws unless the file is still this lock's (checked before a cluster is opened). */
  check(): Promise<void>;
  release(): Promise<void>;
}

/** Who holds a lock: enough to tell whether that process still lives, and from where. */
interface Holder {
  pid: number;
  host: string;
  /** The kernel's boot id and the pid namespace (Linux): the pid means something only there. */
  boot?: string;
  pidns?: number;
  /** The process' start time in clock ticks since boot (/proc/<pid>/stat, field 22). */
  start?: string;
  /** The directory it locks (absent in a lock of an earlier version). */
  dir?: string;
  dev?: string;
  ino?: string;
  since: string;
}

/**
 * A locked directory: its real path, and (where it exists) its device and inode, which say it is
 * the same directory under another path (moved, a bind mount, another mount namespace).
 */
interface Place {
  dir: string;
  dev?: string;
  ino?: string;
}

async function placeOf(target: string): Promise<Place> {
  let dir: string;
  try {
    dir = await realpath(target);
  } catch {
    // Not made yet: where it will be.
    dir = await realpath(path.dirname(target)).then(
      (parent) => path.join(parent, path.basename(target)),
      () => path.resolve(target),
    );
  }
  try {
    const s = await stat(dir, { bigint: true });
    return { dir, dev: String(s.dev), ino: String(s.ino) };
  } catch {
    return { dir };
  }
}

/**
 * Whether a lock's holder holds another directory than `here`: its path differs, and its device
 * and inode are not known to be this one's. An earlier version's lock, naming no directory, is
 * taken for this one's.
 */
function ofAnotherDir(h: Holder, here: Place): boolean {
  if (h.dir === undefined || h.dir === here.dir) return false;
  const known =
    h.dev !== undefined && h.ino !== undefined && here.dev !== undefined && here.ino !== undefined;
  return !(known && h.dev === here.dev && h.ino === here.ino);
}

/**
 * Lock files this process holds or is taking: a second open in this process is refused. One set
 * per process, not per copy of this module (the sources and the build loaded side by side).
 */
const heldHere: Set<string> = (() => {
  const registry = globalThis as Record<symbol, Set<string> | undefined>;
  const key = Symbol.for('signet.dirLocks');
  registry[key] ??= new Set<string>();
  return registry[key];
})();

export class DirLockedError extends StartFailure {}

/** Takes `<target>.lock` (`target`: the cluster directory, symlinks resolved by the caller). */
export async function lockDir(target: string, opts: DirLockOptions = {}): Promise<DirLock> {
  const staleMs = opts.staleMs ?? 15_000;
  const heartbeatMs = opts.heartbeatMs ?? 2_000;
  const waitMs = opts.waitMs ?? staleMs + 2_000;
  const file = `${target}.lock`;
  // Taken before the first await: two opens started together in this process see each other.
  if (heldHere.has(file)) throw new DirLockedError(`${target} is already open in this process`);
  heldHere.add(file);
  try {
    const here = await placeOf(target);
    const deadline = Date.now() + waitMs;
    let told = false;
    let toldCopied = false;
    for (;;) {
      const mine = await tryCreate(file, here);
      if (mine !== undefined) return hold(file, mine, staleMs, heartbeatMs, opts.onLost);
      const seen = await inspect(file);
      if (seen === undefined) continue; // released meanwhile
      const verdict = judge(seen, staleMs, here);
      if (verdict === 'copied' && !toldCopied) {
        toldCopied = true;
        const message = copiedMessage(file, seen.holder!, here);
        if (opts.onCopied) opts.onCopied(message);
        else process.emitWarning(message, { code: 'SIGNET_DIR_LOCK_COPIED' });
      }
      // A dead holder's lock, or a copied one, is taken over (or another taker is, and this one
      // looks again), but not past the deadline: a takeover that keeps failing must not spin for
      // ever.
      if ((verdict === 'dead' || verdict === 'copied') && Date.now() < deadline + TAKEOVER_STALE_MS) {
        await takeOver(file, seen.text, here);
        continue;
      }
      if (verdict !== 'unknown' || Date.now() >= deadline) throw lockedError(target, file, seen.holder);
      if (!told) opts.onWait?.(seen.holder ? describeHolder(seen.holder) : 'unknown');
      told = true;
      await sleep(Math.min(500, heartbeatMs));
    }
  } catch (err) {
    heldHere.delete(file);
    throw err;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function copiedMessage(file: string, holder: Holder, here: Place): string {
  return `embedded database: the lock ${file} names process ${holder.pid} of this host, which holds ${holder.dir}, not this directory (${here.dir}): it came with a copy of that DATA_DIR, and is taken over`;
}

function lockedError(target: string, file: string, holder: Holder | undefined): DirLockedError {
  const who = holder
    ? `process ${holder.pid} on ${sameMachine(holder) ? 'this host' : `host ${holder.host}`} (since ${holder.since})`
    : 'another process';
  return new DirLockedError(
    `the embedded database is in use by ${who}: one server per DATA_DIR (PGlite is one process' database; this one is ${target}). Stop that process, or give this one another DATA_DIR (the lock ${file} needs no removing by hand: one left by a process that died is taken over)`,
  );
}

/** This process, as a lock names it; the Linux parts are left out where /proc does not have them. */
const self: Omit<Holder, 'since'> = (() => {
  const optional = <T>(read: () => T): T | undefined => {
    try {
      return read();
    } catch {
      return undefined;
    }
  };
  const boot = optional(() => readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim());
  const pidns = optional(() => statSync('/proc/self/ns/pid').ino);
  const start = procStat(process.pid)?.start;
  return {
    pid: process.pid,
    host: hostname(),
    ...(boot ? { boot } : {}),
    ...(pidns ? { pidns } : {}),
    ...(start ? { start } : {}),
  };
})();

/**
 * A process' state and start time (fields 3 and 22 of /proc/<pid>/stat); undefined where /proc
 * does not show it (not Linux, or hidden).
 */
function procStat(pid: number): { state: string; start: string } | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // After the command name, which is in parentheses and may hold anything.
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return fields[19] === undefined ? undefined : { state: fields[0]!, start: fields[19] };
  } catch {
    return undefined;
  }
}

/** Whether a pid in `h` names a process of this machine's, and this pid namespace's, table. */
function sameMachine(h: Holder): boolean {
  return h.host === self.host && h.boot === self.boot && h.pidns === self.pidns;
}

/**
 * The lock (or the takeover guard), made whole in one step: its text is written to a file of
 * this process' own, then hard-linked to the lock's name, which fails if there is one. So a lock is never seen empty or
 * half-written. Returns the text (what identifies it later: pid, host, time to the millisecond
 * and a random token; not the inode, which a file made after a removal may be given again), or
 * undefined when there is a lock already.
 */
function tryCreate(file: string, here: Place): Promise<string | undefined> {
  return createWhole(
    file,
    `${JSON.stringify({ ...self, ...here, since: new Date().toISOString(), token: token() })}\n`,
  );
}

const token = () => randomBytes(6).toString('hex');

/**
 * Makes `file` holding `text` unless it exists (then undefined). On a file system without hard
 * links (some FUSE, SMB and VM shared folders), an O_EXCL create and a write: such a file can be
 * seen empty for a moment, which `judge` takes for a holder elsewhere and waits on.
 */
async function createWhole(file: string, text: string): Promise<string | undefined> {
  const tmp = `${file}.${process.pid}-${token()}.tmp`;
  await writeFile(tmp, text, { mode: 0o600, flag: 'wx' });
  try {
    await link(tmp, file);
    return text;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return undefined;
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP' && code !== 'ENOSYS') throw err;
  } finally {
    await unlink(tmp).catch(() => {});
  }
  try {
    await writeFile(file, text, { mode: 0o600, flag: 'wx' });
    return text;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return undefined;
    throw err;
  }
}

interface Seen {
  text: string;
  holder: Holder | undefined;
  mtimeMs: number;
}

/** The lock's text and mtime, read through one handle (the same file for both). */
async function inspect(file: string): Promise<Seen | undefined> {
  let fh: Awaited<ReturnType<typeof open>>;
  try {
    fh = await open(file, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  try {
    const [s, text] = await Promise.all([fh.stat(), fh.readFile('utf8')]);
    return { text, holder: parseHolder(text), mtimeMs: s.mtimeMs };
  } finally {
    await fh.close();
  }
}

function parseHolder(text: string): Holder | undefined {
  try {
    const h = JSON.parse(text) as Partial<Holder>;
    if (!Number.isSafeInteger(h.pid) || (h.pid as number) <= 0 || typeof h.host !== 'string')
      return undefined;
    return {
      pid: h.pid as number,
      host: h.host,
      ...(typeof h.boot === 'string' ? { boot: h.boot } : {}),
      ...(typeof h.pidns === 'number' ? { pidns: h.pidns } : {}),
      ...(typeof h.start === 'string' ? { start: h.start } : {}),
      ...(typeof h.dir === 'string' ? { dir: h.dir } : {}),
      ...(typeof h.dev === 'string' ? { dev: h.dev } : {}),
      ...(typeof h.ino === 'string' ? { ino: h.ino } : {}),
      since: String(h.since ?? '?'),
    };
  } catch {
    // Not a lock this code wrote (they are written whole): the mtime decides.
    return undefined;
  }
}

/**
 * `alive`: refuse now; `dead`: take it over; `copied`: a live holder on this host of another
 * directory (`here` is this one), so none of this one: take it over; `unknown`: a holder
 * elsewhere that renewed the file lately, waited for. Only on this host is a directory told from
 * another by its path: another host may mount the same volume elsewhere, and a copy there is
 * taken over once its mtime, which nobody renews, is stale.
 */
function judge(seen: Seen, staleMs: number, here: Place): 'alive' | 'dead' | 'copied' | 'unknown' {
  const h = seen.holder;
  if (h && sameMachine(h)) {
    // This pid's lock, not held here (heldHere was checked): a previous life of this pid.
    if (h.pid === process.pid) return 'dead';
    if (!processExists(h.pid)) return 'dead';
    // The pid lives; it is the holder unless it started at another time (the pid was given again
    // since), or it is a zombie (the holder exited, and its parent has not reaped it yet).
    const now = procStat(h.pid);
    if (now?.state === 'Z') return 'dead';
    if (h.start !== undefined && now !== undefined && now.start !== h.start) return 'dead';
    return ofAnotherDir(h, here) ? 'copied' : 'alive';
  }
  return Date.now() - seen.mtimeMs > staleMs ? 'dead' : 'unknown';
}

function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists, as another user.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** A takeover guard whose owner is elsewhere and has not touched it for this long is dead. */
const TAKEOVER_STALE_MS = 10_000;

/**
 * Removes a dead holder's lock, one taker at a time, under `<lock>.takeover`: a guard made and
 * judged as a lock is (whole, naming its owner; an owner on this machine dead only when the
 * process table says so, one elsewhere after 10 s without a touch). Under it, the lock is read
 * again and removed only if it is still the one judged dead, and only if the guard is still this
 * taker's (a taker elsewhere stalled past 10 s may have lost it). Only a taker removes a lock and
 * only an absent one is made, so a live lock is not removed. A dead guard (or one that came with
 * a copy) is moved aside, and put back if what was moved is not the one judged so.
 */
async function takeOver(file: string, deadText: string, here: Place): Promise<void> {
  const guard = `${file}.takeover`;
  const mine = await tryCreate(guard, here);
  if (mine === undefined) {
    const seen = await inspect(guard);
    const verdict = seen && judge(seen, TAKEOVER_STALE_MS, here);
    if (seen && (verdict === 'dead' || verdict === 'copied')) await moveAsideIf(guard, seen.text);
    else await sleep(20);
    return; // the caller looks again
  }
  try {
    const now = await inspect(file);
    if (now?.text !== deadText) return;
    if ((await readFile(guard, 'utf8').catch(() => undefined)) !== mine) return;
    await unlink(file).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err;
    });
  } finally {
    if ((await readFile(guard, 'utf8').catch(() => undefined)) === mine) await unlink(guard).catch(() => {});
  }
}

/** Moves `file` aside if it holds `text`; what was moved otherwise goes back (not over a newer one). */
async function moveAsideIf(file: string, text: string): Promise<void> {
  const aside = `${file}.${process.pid}-${token()}.dead`;
  try {
    await rename(file, aside);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  try {
    if ((await readFile(aside, 'utf8')) !== text) await link(aside, file).catch(() => {});
  } finally {
    await unlink(aside).catch(() => {});
  }
}

function hold(
  file: string,
  mine: string,
  staleMs: number,
  heartbeatMs: number,
  onLost?: (err: Error) => void,
): DirLock {
  let lost: Error | undefined;
  let renewing = false;
  let renewedAt = Date.now();
  const giveUp = (why: string) => {
    if (lost) return;
    lost = new Error(`the embedded database's lock ${file} ${why}`);
    clearInterval(timer);
    heldHere.delete(file);
    onLost?.(lost);
  };
  /** The file's text, undefined when it is gone; other errors are thrown. */
  const current = () =>
    readFile(file, 'utf8').catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return undefined;
      throw err;
    });
  // Renews the mtime, after checking the file is still this one (its text): never another's. A
  // failed read or renewal (a busy or remote file system) is tried again; only when it has failed
  // for long enough that others may take the lock for dead is the lock given up.
  const renew = async () => {
    if (renewing || lost) return;
    renewing = true;
    try {
      const text = await current();
      if (text === undefined) return giveUp('was removed by another process');
      if (text !== mine) return giveUp(`was taken over by another process (${describe(text)})`);
      const now = new Date();
      await utimes(file, now, now);
      renewedAt = Date.now();
    } catch (err) {
      if (Date.now() - renewedAt > staleMs - heartbeatMs)
        giveUp(
          `could not be renewed for ${Math.round((Date.now() - renewedAt) / 1000)} s: ${(err as Error).message}`,
        );
    } finally {
      renewing = false;
    }
  };
  const timer = setInterval(() => void renew(), heartbeatMs);
  timer.unref();
  return {
    path: file,
    async check() {
      if (!lost && (await current()) !== mine)
        giveUp('was taken over by another process before the database was opened');
      if (lost) throw lost;
    },
    async release() {
      if (lost) return;
      lost = new Error(`the embedded database's lock ${file} was released`);
      clearInterval(timer);
      heldHere.delete(file);
      if ((await current().catch(() => undefined)) === mine) await unlink(file).catch(() => {});
    },
  };
}

function describe(text: string): string {
  const h = parseHolder(text);
  return h ? describeHolder(h) : 'unknown';
}

function describeHolder(h: Holder): string {
  return `pid ${h.pid} on ${h.host}`;
}
