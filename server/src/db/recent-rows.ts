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

/**
 * Live image rows remembered for a few seconds, for `/proxy/:id`: a hot link (one image on many
 * pages, a mail opened by thousands) costs one SQL lookup per few seconds, not one per hit. A row
 * changes only by its deletion or a visibility change; the node making either forgets it at once,
 * and every other node forgets it when the change reaches it on the event bus (container.ts). If
 * that message is lost (Redis pub/sub is at most once), the change goes unseen here for at most
 * RECENT_ROW_MS; a deleted object is already gone from storage by then (deleteImage removes it
 * before marking the row), so a stale redirect ends in a 404.
 * Unknown ids are not remembered: a new upload is reachable at once.
 *
 * Lookups are shared: hits on an id whose row is being looked up wait for that lookup, and the
 * misses of one event-loop turn go out as one statement. Without this, every hit that arrived
 * while a remembered row was being looked up again sent a statement of its own: under a steady
 * load of 100 hot links the proxy sent 10-19 times the statements it needed, all in bursts when the
 * rows ran out together (docs/benchmarks.md, finding 30).
 */
export class RecentRows {
  private readonly rows = new BoundedMap<string, { row: ImageRow; at: number }>(MAX_ROWS);
  /** Ids being looked up, with the answer their hits share. */
  private readonly pending = new Map<string, Promise<ImageRow | undefined>>();
  /**
   * The misses of one event-loop turn as one statement: sent on setImmediate, after the poll
   * phase, so the hits of every request read in the turn join. No DataLoader cache: `pending`
   * shares a lookup with the hits of later turns too, and `rows` remembers its answer.
   */
  private readonly loader: DataLoader<string, ImageRow | undefined>;

  constructor(
    private readonly images: Pick<ImagesRepo, 'findLive'>,
    private readonly clock: Clock,
    private readonly ttlMs = RECENT_ROW_MS,
  ) {
    this.loader = new DataLoader(
      async (ids: readonly string[]) => {
        const found = new Map((await this.images.findLive(ids)).map((r) => [r.id, r]));
        return ids.map((id) => found.get(id));
      },
      { cache: false, maxBatchSize: LOOKUP_BATCH, batchScheduleFn: (send) => setImmediate(send) },
    );
  }

  /** The row as looked up within the last few seconds, without I/O; undefined: `find` must ask. */
  recent(id: string): ImageRow | undefined {
    const known = this.rows.get(id);
    return known && this.clock.now() - known.at < this.ttlMs ? known.row : undefined;
  }

  /** The live row: remembered, being looked up, or looked up now (and remembered). */
  find(id: string): MaybePromise<ImageRow | undefined> {
    return this.recent(id) ?? this.pending.get(id) ?? this.lookUp(id);
  }

  private lookUp(id: string): Promise<ImageRow | undefined> {
    // Remembered from when it was asked for, not from its answer.
    const at = this.clock.now();
    const answer: Promise<ImageRow | undefined> = this.loader.load(id).then(
      (row) => {
        // Forgotten meanwhile (a delete or a visibility change on this node): the answer may
        // predate the change, so it serves the hits that were waiting and is not remembered.
        if (this.pending.get(id) === answer) {
          this.pending.delete(id);
          if (row) this.rows.set(id, { row, at });
          else this.rows.delete(id);
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

  forget(id: string): void {
    this.rows.delete(id);
    this.pending.delete(id);
  }
}
