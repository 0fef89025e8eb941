import { randomBytes } from 'node:crypto';
import { link, open, readFile, rename, stat, unlink, utimes } from 'node:fs/promises';
import { hostname } from 'node:os';

/**
 * One process at a time on an embedded database (docs/architecture.md, "Embedded database").
 * PGlite takes no lock of its own: two servers (or a server and `signet import`) on one DATA_DIR
 * both open the cluster, and each one's buffers and WAL overwrite the other's writes (rows lost,
 * seen in a probe with two processes inserting). The lock is a file beside the cluster,
 * `<cluster>.lock`, made with O_EXCL, naming its holder (pid, host, since), its mtime renewed every
 * `heartbeatMs` while held.
 *
 * A holder that died leaves the file behind (no OS lock is released for us: Node has no flock),
 * so a lock is stale, and taken over, when
 * - its mtime is older than `staleMs` (a holder on another host, or a container that was
 *   recreated, stopped renewing it), or
 * - its holder is on this host and is no process, or is this process' own pid (a container's
 *   server is pid 1 again after a restart) and this process does not hold it.
 * A live holder on this host is refused at once; one elsewhere is waited for up to `waitMs` (a
 * crashed one turns stale meanwhile), then refused.
 */
export interface DirLockOptions {
  /** An mtime older than this is a dead holder's (default 15 s). */
  staleMs?: number;
  /** How often the holder renews the mtime (default 2 s). */
  heartbeatMs?: number;
  /** How long to wait for a holder on another host before refusing (default staleMs + 2 s). */
  waitMs?: number;
  /**
   * Called once if the lock is no longer this process': another process took it over (this
   * one's heartbeat stalled past `staleMs`) or it cannot be renewed. The caller must stop
   * writing; the lock is then not released by `release()`.
   */
  onLost?: (err: Error) => void;
}

export interface DirLock {
  readonly path: string;
  release(): Promise<void>;
}

interface Holder {
  pid: number;
  host: string;
  since: string;
}

/** Lock files this process holds: a second open of one in this process is refused, not stale. */
const heldHere = new Set<string>();

export class DirLockedError extends Error {}

/** Takes `<target>.lock` (`target`: the cluster directory, symlinks resolved by the caller). */
export async function lockDir(target: string, opts: DirLockOptions = {}): Promise<DirLock> {
  const staleMs = opts.staleMs ?? 15_000;
  const heartbeatMs = opts.heartbeatMs ?? 2_000;
  const waitMs = opts.waitMs ?? staleMs + 2_000;
  const file = `${target}.lock`;
  if (heldHere.has(file)) throw new DirLockedError(`${target} is already open in this process`);
  const deadline = Date.now() + waitMs;
  for (;;) {
    const mine = await tryCreate(file);
    if (mine !== undefined) return hold(file, mine, heartbeatMs, opts.onLost);
    const seen = await inspect(file);
    if (seen === undefined) continue; // released meanwhile
    if (isStale(seen, staleMs)) {
      await takeOver(file, seen);
      continue;
    }
    const liveHere = seen.holder?.host === hostname();
    if (liveHere || Date.now() >= deadline) throw lockedError(target, file, seen.holder);
    await new Promise((r) => setTimeout(r, Math.min(500, heartbeatMs)));
  }
}

function lockedError(target: string, file: string, holder: Holder | undefined): DirLockedError {
  const who = holder
    ? `process ${holder.pid} on ${holder.host === hostname() ? 'this host' : `host ${holder.host}`} (since ${holder.since})`
    : 'another process';
  return new DirLockedError(
    `the embedded database ${target} is in use by ${who}: one server per DATA_DIR (PGlite is one process' database). Stop that process, or give this one another DATA_DIR (the lock ${file} needs no removing by hand: one left by a process that died is taken over)`,
  );
}

/**
 * The text of the lock when this call made it (what identifies it later: pid, host and time to
 * the millisecond; not the inode, which a file made after ours was removed may be given again);
 * undefined when there is one already.
 */
async function tryCreate(file: string): Promise<string | undefined> {
  const holder: Holder = { pid: process.pid, host: hostname(), since: new Date().toISOString() };
  const text = `${JSON.stringify(holder)}\n`;
  let fh: Awaited<ReturnType<typeof open>>;
  try {
    fh = await open(file, 'wx', 0o600);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return undefined;
    throw err;
  }
  try {
    await fh.writeFile(text);
    return text;
  } finally {
    await fh.close();
  }
}

interface Seen {
  text: string;
  holder: Holder | undefined;
  mtimeMs: number;
}

async function inspect(file: string): Promise<Seen | undefined> {
  try {
    const [s, text] = await Promise.all([stat(file), readFile(file, 'utf8')]);
    return { text, holder: parseHolder(text), mtimeMs: s.mtimeMs };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

function parseHolder(text: string): Holder | undefined {
  try {
    const h = JSON.parse(text) as Partial<Holder>;
    return typeof h.pid === 'number' && typeof h.host === 'string'
      ? { pid: h.pid, host: h.host, since: String(h.since ?? '?') }
      : undefined;
  } catch {
    // Empty or cut short: its maker died between creating and writing it; the mtime decides.
    return undefined;
  }
}

function isStale(seen: Seen, staleMs: number): boolean {
  if (Date.now() - seen.mtimeMs > staleMs) return true;
  const h = seen.holder;
  if (!h || h.host !== hostname()) return false;
  // This pid holds nothing of this file (heldHere was checked): a previous life of this pid.
  if (h.pid === process.pid) return true;
  return !processExists(h.pid);
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

/**
 * Moves the stale lock aside and, if what was moved is not what was judged stale (another
 * process took it over first and made its own: another text), puts that one back, same inode, by
 * a hard link that fails if a third made one meanwhile. Then the caller tries to create the lock
 * again: one O_EXCL create wins.
 */
async function takeOver(file: string, stale: Seen): Promise<void> {
  const aside = `${file}.stale-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    await rename(file, aside);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  try {
    if ((await readFile(aside, 'utf8')) !== stale.text) await link(aside, file).catch(() => {});
  } finally {
    await unlink(aside).catch(() => {});
  }
}

function hold(file: string, mine: string, heartbeatMs: number, onLost?: (err: Error) => void): DirLock {
  heldHere.add(file);
  let lost = false;
  let renewing = false;
  const giveUp = (why: string) => {
    if (lost) return;
    lost = true;
    clearInterval(timer);
    heldHere.delete(file);
    onLost?.(new Error(`the embedded database's lock ${file} ${why}`));
  };
  // Renews the mtime, after checking the file is still this one (its text): never another's.
  const renew = async () => {
    if (renewing || lost) return;
    renewing = true;
    try {
      const text = await readFile(file, 'utf8').catch(() => undefined);
      if (text === undefined) return giveUp('was removed by another process');
      if (text !== mine) return giveUp(`was taken over by another process (${describe(text)})`);
      const now = new Date();
      await utimes(file, now, now);
    } catch (err) {
      giveUp(`could not be renewed: ${(err as Error).message}`);
    } finally {
      renewing = false;
    }
  };
  const timer = setInterval(() => void renew(), heartbeatMs);
  timer.unref();
  return {
    path: file,
    async release() {
      if (lost) return;
      lost = true;
      clearInterval(timer);
      heldHere.delete(file);
      const text = await readFile(file, 'utf8').catch(() => undefined);
      if (text === mine) await unlink(file).catch(() => {});
    },
  };
}

function describe(text: string): string {
  const h = parseHolder(text);
  return h ? `pid ${h.pid} on ${h.host}` : 'unknown';
}
