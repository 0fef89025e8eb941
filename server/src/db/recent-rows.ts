import type { Clock } from '../clock.js';
import { BoundedMap } from '../lib/bounded-map.js';
import type { MaybePromise } from '../lib/maybe-promise.js';
import type { ImagesRepo } from './images-repo.js';
import type { ImageRow } from './types.js';

/** How long a looked-up row answers for itself: the longest a delete elsewhere goes unseen here. */
export const RECENT_ROW_MS = 5000;
const MAX_ROWS = 10_000;

/**
 * Live image rows remembered for a few seconds, for `/proxy/:id`: a hot link (one image on many
 * pages, a mail opened by thousands) costs one SQL lookup per few seconds, not one per hit. A row
 * changes only by its deletion or a visibility change; the node making either forgets it at once,
 * and every other node forgets it when the change reaches it on the event bus (container.ts). If
 * that message is lost (Redis pub/sub is at most once), the change goes unseen here for at most
 * RECENT_ROW_MS; a deleted object is already gone from storage by then (deleteImage removes it
 * before marking the row), so a stale redirect ends in a 404.
 * Unknown ids are not remembered: a new upload is reachable at once.
 */
export class RecentRows {
  private readonly rows = new BoundedMap<string, { row: ImageRow; at: number }>(MAX_ROWS);

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

  /** The live row: remembered, or looked up (and remembered). */
  find(id: string): MaybePromise<ImageRow | undefined> {
    return this.recent(id) ?? this.lookUp(id);
  }

  private async lookUp(id: string): Promise<ImageRow | undefined> {
    const now = this.clock.now();
    const [row] = await this.images.findLive([id]);
    if (!row) {
      this.rows.delete(id);
      return undefined;
    }
    this.rows.set(id, { row, at: now });
    return row;
  }

  forget(id: string): void {
    this.rows.delete(id);
  }
}
