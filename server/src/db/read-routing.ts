import type { Kysely } from 'kysely';
import type { ReadReplica } from './read-replica.js';
import type { Database } from './types.js';
import { isDatabaseUnavailable } from './unavailable.js';
import type { WritePins } from './write-pins.js';

/**
 * Where a read runs. Page queries and visibility lookups go to the read replica when there is one
 * that is usable and the viewer has not just written; everything else, and every write, to the
 * primary. Choosing costs no I/O: the replica's state comes from its poller, the pins are held in
 * memory (db/write-pins.ts), so a warm page stays one Redis round trip. See docs/operations.md,
 * "PostgreSQL read replica".
 */
export interface ReadRouting {
  /** Runs `run` on the replica or the primary; `viewer` is whose own writes it must see. */
  read<T>(viewer: string | undefined, run: (k: Kysely<Database>) => Promise<T>): Promise<T>;
  /** One read for several viewers at once: on the primary when any of them has just written. */
  readFor<T>(viewers: readonly string[], run: (k: Kysely<Database>) => Promise<T>): Promise<T>;
  /** The viewer has just written: their reads go to the primary for a while. */
  wrote(viewer: string): Promise<void>;
}

/** No replica: every read on the primary. */
export function primaryReads(primary: Kysely<Database>): ReadRouting {
  return {
    read: (_viewer, run) => run(primary),
    readFor: (_viewers, run) => run(primary),
    wrote: async () => {},
  };
}

export function replicaReads(d: {
  primary: Kysely<Database>;
  replica: Pick<ReadReplica, 'kysely' | 'state' | 'markDown'>;
  pins: Pick<WritePins, 'pin' | 'pinned'>;
}): ReadRouting {
  async function readOn<T>(pinned: () => boolean, run: (k: Kysely<Database>) => Promise<T>): Promise<T> {
    if (d.replica.state.usable && !pinned()) {
      try {
        return await run(d.replica.kysely);
      } catch (err) {
        // A standby cancelling this one query for a conflict with recovery (40001: replay needed
        // rows or a lock it held): the primary answers it at once; the replica stays in use.
        if ((err as { code?: unknown }).code === '40001') return run(d.primary);
        // A replica that went away between two polls: this read, and the next ones until a
        // poll finds it again, run on the primary. A bad statement fails as it would there.
        if (!isDatabaseUnavailable(err) && !/Query read timeout/i.test((err as Error).message)) throw err;
        d.replica.markDown(err as Error);
      }
    }
    return run(d.primary);
  }
  return {
    read: (viewer, run) => readOn(() => viewer !== undefined && d.pins.pinned(viewer), run),
    readFor: (viewers, run) => readOn(() => viewers.some((v) => d.pins.pinned(v)), run),
    wrote: (viewer) => d.pins.pin(viewer),
  };
}
