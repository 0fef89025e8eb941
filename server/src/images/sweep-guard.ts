import { randomUUID } from 'node:crypto';
import { text as streamText } from 'node:stream/consumers';
import type { StateRepo } from '../db/state-repo.js';
import { type Storage, StorageError } from '../storage/storage.js';

/** The bucket's half of the token: beside the uploads, never under `u/` (which the sweep walks). */
export const SWEEP_MARK_KEY = '_signet/orphan-sweep.json';

/** Bytes a mark is read up to. */
const MAX_MARK_BYTES = 4096;

/** What the bucket's mark holds. */
interface SweepMark {
  /** The token the database holds too, once a sweep's rotation is done. */
  token: string;
  /** A rotation under way: written to the bucket first, the database second. */
  pending?: string;
  at: string;
}

export type SweepVerdict = { ok: true } | { ok: false; reason: string };

/**
 * Refuses the orphan sweep a database that is not the one that last swept this bucket
 * (docs/operations.md, "Backups and restores"). The sweep deletes upload objects no row names;
 * on a database restored from a backup, the uploads made since are such objects, and so is every
 * object of the bucket when a node starts on an empty or wrong database. Each sweep that runs
 * writes a new random token to the bucket and then to the database (`signet_state`); a sweep
 * finds the two equal, or the database one rotation behind (a crash between the two writes), or
 * it is held: nothing is deleted, the log says why at error, `signet_orphan_sweep_held` is 1,
 * until an operator who has recovered what the restore lost runs `signet orphan-sweep --adopt`.
 *
 * What it cannot see: a restore to a point after the last sweep (at most one sweep interval of
 * uploads, ORPHAN_SWEEP_INTERVAL_SECONDS): the database then holds the bucket's token. Turning
 * the sweep off before a restore is still the operator's first step. What it can get wrong, on
 * the safe side: two sweeps rotating at the same moment (two workers each running a queued sweep
 * job) can leave the bucket one's token and the database the other's, a hold with nothing
 * restored, which `--adopt` releases.
 */
export class SweepGuard {
  constructor(
    private readonly d: {
      storage: Pick<Storage, 'get' | 'put'>;
      state: StateRepo;
    },
    /** The database's key for this bucket's token (one per region's bucket). */
    private readonly stateKey: string,
  ) {}

  /** Whether a sweep may run now; when it may, the tokens are rotated before it does. */
  async enter(): Promise<SweepVerdict> {
    const verdict = await this.status();
    if (!verdict.ok) return verdict;
    await this.rotate();
    return verdict;
  }

  /** The verdict without changing anything (`signet orphan-sweep`). */
  async status(): Promise<SweepVerdict> {
    const [mark, held] = await Promise.all([this.readMark(), this.d.state.get(this.stateKey)]);
    // Neither half: the first sweep of this bucket by this database (or since an adoption that
    // removed the mark by hand).
    if (!mark) return { ok: true };
    if (held === undefined) {
      return {
        ok: false,
        reason:
          'this database has never swept this bucket, which another database has: an empty or another database, or one restored from before its first sweep',
      };
    }
    if (held === mark.token || held === mark.pending) return { ok: true };
    return {
      ok: false,
      reason: `this database is not the one that last swept this bucket (its token ${held.slice(0, 8)}, the bucket's ${mark.token.slice(0, 8)} of ${mark.at}): restored from a backup, or another database`,
    };
  }

  /** Makes this database the bucket's sweeper, whatever the tokens said (`--adopt`). */
  async adopt(): Promise<void> {
    await this.rotate(true);
  }

  private async rotate(adopting = false): Promise<void> {
    const mark = adopting ? undefined : await this.readMark();
    const next = randomUUID();
    // Bucket first, the new token as pending: a crash before the database has it leaves a mark
    // that still accepts the database's old token, and one after, its new one.
    if (mark) await this.writeMark({ token: mark.token, pending: next, at: mark.at });
    await this.d.state.set(this.stateKey, next);
    await this.writeMark({ token: next, at: new Date().toISOString() });
  }

  private async readMark(): Promise<SweepMark | undefined> {
    let text: string | undefined;
    try {
      const obj = await this.d.storage.get(SWEEP_MARK_KEY);
      // A mark is ~100 bytes; anything much larger at its key is not one (and is not read).
      if (obj.size > MAX_MARK_BYTES) obj.body.destroy();
      else text = await streamText(obj.body);
    } catch (err) {
      if (err instanceof StorageError && err.kind === 'not_found') return undefined;
      throw err;
    }
    try {
      const mark = text === undefined ? undefined : (JSON.parse(text) as SweepMark);
      if (typeof mark?.token === 'string') return mark;
    } catch {}
    // Not a mark Signet wrote: held until adopted, rather than read as "no mark" (which lets a sweep run).
    return { token: 'unreadable', at: 'unknown' };
  }

  private async writeMark(mark: SweepMark): Promise<void> {
    const body = Buffer.from(JSON.stringify(mark));
    await this.d.storage.put(SWEEP_MARK_KEY, body, 'application/json', body.length);
  }
}
