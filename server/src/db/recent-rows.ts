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

/** The misses of one event-loop turn, looked up together once the turn's I/O has been read. */
interface Lookup {
  ids: string[];
  /** When the statement was asked for: a row is remembered from then, not from its answer. */
  at: number;
  found: Promise<Map<string, ImageRow>>;
}

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
 * load of 100 hot links the proxy sent ~16 times the statements it needed, all in bursts when the
 * rows ran out together (docs/benchmarks.md, finding 30).
 */
export class RecentRows {
  private readonly rows = new BoundedMap<string, { row: ImageRow; at: number }>(MAX_ROWS);
  /** Ids being looked up, with the answer their hits share. */
  private readonly pending = new Map<string, Promise<ImageRow | undefined>>();
  /** The lookup that this turn's misses join, until it is sent (or full). */
  private open: Lookup | undefined;

  constructor(
    private readonly images: Pick<ImagesRepo, 'findLive'>,
    private readonly clock: Clock,
    private readonly ttlMs = RECENT_ROW_MS,
  ) {}

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
    const lookup = this.open ?? this.openLookup();
    lookup.ids.push(id);
    // A full statement is sent as it is; the next miss opens another.
    if (lookup.ids.length >= LOOKUP_BATCH) this.open = undefined;
    const answer: Promise<ImageRow | undefined> = lookup.found.then(
      (found) => {
        const row = found.get(id);
        // Forgotten meanwhile (a delete or a visibility change on this node): the answer may
        // predate the change, so it serves the hits that were waiting and is not remembered.
        if (this.pending.get(id) === answer) {
          this.pending.delete(id);
          if (row) this.rows.set(id, { row, at: lookup.at });
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

  private openLookup(): Lookup {
    const ids: string[] = [];
    const at = this.clock.now();
    // setImmediate: after the poll phase, so the hits of every request read in this turn join.
    const found = new Promise<Map<string, ImageRow>>((resolve, reject) => {
      setImmediate(() => {
        if (this.open?.ids === ids) this.open = undefined;
        Promise.resolve(ids)
          .then((asked) => this.images.findLive(asked))
          .then((rows) => resolve(new Map(rows.map((r) => [r.id, r]))), reject);
      });
    });
    this.open = { ids, at, found };
    return this.open;
  }

  forget(id: string): void {
    this.rows.delete(id);
    this.pending.delete(id);
  }
}
