import DataLoader from 'dataloader';
import type { Clock } from '../clock.js';
import { BoundedMap } from '../lib/bounded-map.js';
import type { MaybePromise } from '../lib/maybe-promise.js';
import type { ImagesRepo } from './images-repo.js';
import type { ImageRow } from './types.js';

/** How long a looked-up row answers for itself: the longest a delete elsewhere goes unseen here. */
export const RECENT_ROW_MS = 5000;
const MAX_ROWS = 10_000;
/** Ids in one lookup statement at most (`where id in (…)`, one parameter each). */
export const LOOKUP_BATCH = 500;

export interface RecentRowsOptions {
  /** How long a looked-up row answers for itself (default RECENT_ROW_MS). */
  ttlMs?: number;
  /**
   * How long after `forget(id)` the id is looked up on the primary: the longest a read replica
   * in use may still have the row as it was (its lag bound plus two polls, the write pins' time:
   * docs/operations.md, "PostgreSQL read replica"). 0 (the default): no replica.
   */
  primaryAfterForgetMs?: number;
}

/**
 * Live image rows remembered for a few seconds, for `/proxy/:id`: a hot link (one image on many
 * pages, a mail opened by thousands) costs one SQL lookup per few seconds, not one per hit. A row
 * changes by its deletion or a visibility change, which the node making either forgets at once,
 * and once by a worker recording a row from before migration 006 as animated (a proxy link's
 * preset then goes to the original). Every other node forgets the row when the change reaches
 * it on the event bus (container.ts). If that message is lost (Redis pub/sub is at most once),
 * the change goes unseen here for at most RECENT_ROW_MS; a deleted object is already gone from
 * storage by then (deleteImage removes it before marking the row), so a stale redirect ends in a
 * 404, and a preset link goes to the variant that long.
 * With a read replica, the lookup after a forget goes to the primary for a while
 * (`primaryAfterForgetMs`): the replica may not have replayed the change yet, and a row read
 * from it would keep a revoked public link working for its lag and then for RECENT_ROW_MS more.
 * An id the replica does not have is looked up on the primary (`ImagesRepo.findLive`): a new
 * upload is reachable at once. An id the lookup did not find (deleted, or never an image) is
 * remembered as absent for as long as a row is: a hot link to a deleted image, or a stream of
 * made-up ids, would otherwise cost a statement on the replica and one on the primary at every
 * turn. That is safe because an id is random (images/upload.ts) and reaches a client only once
 * its row is committed: an id absent on the primary never becomes a row later.
 *
 * Lookups are shared: hits on an id whose row is being looked up wait for that lookup, and the
 * misses of one event-loop turn go out as one statement. Without this, every hit that arrived
 * while a remembered row was being looked up again sent a statement of its own: under a steady
 * load of 100 hot links the proxy sent 10-19 times the statements it needed, all in bursts when the
 * rows ran out together (docs/benchmarks.md, finding 30).
 */
export class RecentRows {
  /** Each looked-up id's answer (undefined: no live row), with when it was asked for. */
  private readonly rows = new BoundedMap<string, { row: ImageRow | undefined; at: number }>(MAX_ROWS);
  /** Ids being looked up, with the answer their hits share. */
  private readonly pending = new Map<string, Promise<ImageRow | undefined>>();
  /**
   * The misses of one event-loop turn as one statement: sent on setImmediate, after the poll
   * phase, so the hits of every request read in the turn join. No DataLoader cache: `pending`
   * shares a lookup with the hits of later turns too, and `rows` remembers its answer.
   */
  private readonly loader: DataLoader<string, ImageRow | undefined>;
  /** The same, on the primary: ids forgotten within `primaryAfterForgetMs`. */
  private readonly primaryLoader: DataLoader<string, ImageRow | undefined>;
  /**
   * When each id was forgotten, oldest first, while that is within `primaryAfterForgetMs`
   * (bounded like `rows`: past MAX_ROWS changes in that time, the oldest go back to the replica).
   */
  private readonly forgotten = new BoundedMap<string, number>(MAX_ROWS);
  private readonly ttlMs: number;
  private readonly primaryAfterForgetMs: number;

  constructor(
    private readonly images: Pick<ImagesRepo, 'findLive'>,
    private readonly clock: Clock,
    o: RecentRowsOptions = {},
  ) {
    this.ttlMs = o.ttlMs ?? RECENT_ROW_MS;
    this.primaryAfterForgetMs = o.primaryAfterForgetMs ?? 0;
    const loader = (primary: boolean) =>
      new DataLoader(
        async (ids: readonly string[]) => {
          const rows = await this.images.findLive(ids, { primary });
          const found = new Map(rows.map((r) => [r.id, r]));
          return ids.map((id) => found.get(id));
        },
        { cache: false, maxBatchSize: LOOKUP_BATCH, batchScheduleFn: (send) => setImmediate(send) },
      );
    this.loader = loader(false);
    this.primaryLoader = loader(true);
  }

  /** The row remembered from a lookup of the last few seconds, without I/O (undefined: none). */
  recent(id: string): ImageRow | undefined {
    return this.known(id)?.row;
  }

  /** The live row (undefined: none): remembered, being looked up, or looked up now (and remembered). */
  find(id: string): MaybePromise<ImageRow | undefined> {
    const known = this.known(id);
    if (known) return known.row;
    return this.pending.get(id) ?? this.lookUp(id);
  }

  private known(id: string): { row: ImageRow | undefined } | undefined {
    const k = this.rows.get(id);
    return k && this.clock.now() - k.at < this.ttlMs ? k : undefined;
  }

  private lookUp(id: string): Promise<ImageRow | undefined> {
    // Remembered from when it was asked for, not from its answer.
    const at = this.clock.now();
    const loader = this.loaderFor(id, at);
    const answer: Promise<ImageRow | undefined> = loader.load(id).then(
      (row) => {
        // Forgotten meanwhile (a delete or a visibility change on this node): the answer may
        // predate the change, so it serves the hits that were waiting and is not remembered.
        if (this.pending.get(id) === answer) {
          this.pending.delete(id);
          this.rows.set(id, { row, at });
        }
        return row;
      },
      (err: unknown) => {
        if (this.pending.get(id) === answer) this.pending.delete(id);
        throw err;
      },
    );
    this.pending.set(id, answer);
    return answer;
  }

  /** The primary's loader for an id forgotten within `primaryAfterForgetMs`, else the usual one. */
  private loaderFor(id: string, now: number): DataLoader<string, ImageRow | undefined> {
    const forgottenAt = this.forgotten.get(id);
    if (forgottenAt === undefined) return this.loader;
    if (now - forgottenAt < this.primaryAfterForgetMs) return this.primaryLoader;
    this.forgotten.delete(id);
    return this.loader;
  }

  forget(id: string): void {
    this.rows.delete(id);
    this.pending.delete(id);
    if (this.primaryAfterForgetMs > 0) {
      // Deleted first: the map stays in order of forgetting, so a full one drops the oldest.
      this.forgotten.delete(id);
      this.forgotten.set(id, this.clock.now());
    }
  }
}
