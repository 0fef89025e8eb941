import type { Viewer } from '../auth/viewer.js';
import type { ImagesRepo, ReadLookup } from '../db/images-repo.js';
import type { ImageRow } from '../db/types.js';
import { MAX_IDS } from './image-id.js';
import { canRead, readScope } from './visibility.js';

export interface VisibilityBatchOptions {
  /** How long the first lookup of a batch waits for others to join it. */
  windowMs: number;
  /** Ids per statement: a batch that reaches it is sent at once (bind parameters are bounded). */
  maxIds: number;
}

/**
 * 5 ms: an open costs the node about a millisecond of CPU before its lookup (yoga's request
 * handling), so a node opening subscriptions steadily brings a lookup every millisecond or so;
 * 5 ms gathers several of them (10,000 opens: 717 statements; 1,566 with 2 ms), and is little
 * against the open itself on an idle node. 2,000 ids: four subscriptions of the largest size, far
 * below PostgreSQL's 65,535 parameters.
 */
const DEFAULTS: VisibilityBatchOptions = { windowMs: 5, maxIds: 4 * MAX_IDS };

interface Waiting {
  lookup: ReadLookup;
  resolve(rows: ImageRow[]): void;
  reject(err: unknown): void;
}

/**
 * `visible(viewer, ids)` for subscriptions, which clients open in bursts (a page with a stream
 * per tile, thousands of clients reconnecting to one node): lookups share SQL statements instead
 * of running one each. A lookup waits `windowMs` for others to join it; while a statement is
 * running, the lookups that arrive meanwhile wait for it (and for the window from the first of
 * them) and then go together in the next one, so the busier the node, the larger the batches,
 * and an idle node adds only the window. Every
 * viewer still gets exactly the rows its own scope lets through (`findReadableMany`), so
 * batching changes how many statements run, never who sees what (docs/architecture.md, "Who sees
 * what"). A failed statement fails every lookup of its batch, as each would have failed alone.
 */
export class VisibilityBatch {
  private queue: Waiting[] = [];
  private queuedIds = 0;
  private timer: NodeJS.Timeout | undefined;
  private running = 0;
  /** When the first lookup of the queue arrived: the queue goes `windowMs` after it at the earliest. */
  private firstQueuedAt = 0;

  constructor(
    private readonly images: Pick<ImagesRepo, 'findReadableMany'>,
    private readonly o: VisibilityBatchOptions = DEFAULTS,
  ) {}

  /** The same rule on an image already known (a visibility change reaching a subscription). */
  canRead(viewer: Viewer, image: Pick<ImageRow, 'ownerId' | 'visibility'>): boolean {
    return canRead(viewer, image);
  }

  visible(viewer: Viewer, ids: readonly string[]): Promise<ImageRow[]> {
    if (ids.length === 0) return Promise.resolve([]);
    return new Promise<ImageRow[]>((resolve, reject) => {
      // A lookup that would push the batch past the bound goes into the next one.
      if (this.queuedIds > 0 && this.queuedIds + ids.length > this.o.maxIds) this.flush();
      if (this.queue.length === 0) this.firstQueuedAt = performance.now();
      this.queue.push({ lookup: { scope: readScope(viewer), ids }, resolve, reject });
      this.queuedIds += ids.length;
      if (this.queuedIds >= this.o.maxIds) this.flush();
      else if (this.running === 0) this.timer ??= setTimeout(() => this.flush(), this.o.windowMs);
    });
  }

  private flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    const batch = this.queue;
    this.queue = [];
    this.queuedIds = 0;
    if (batch.length === 0) return;
    this.running++;
    this.images
      .findReadableMany(batch.map((w) => w.lookup))
      .then(
        (rows) => {
          for (let i = 0; i < batch.length; i++) batch[i]!.resolve(rows[i]!);
        },
        (err) => {
          for (const w of batch) w.reject(err);
        },
      )
      .finally(() => {
        this.running--;
        if (this.running > 0 || this.queue.length === 0 || this.timer) return;
        // What arrived while the statement ran goes together, once the first of it has waited
        // the window. Sent at once instead, a node opening subscriptions steadily (each costing
        // it a millisecond or more of CPU before its lookup) sent one statement per lookup,
        // back to back: 5,725 statements for 20,000 lookups in the benchmark (scenario 9).
        const wait = this.firstQueuedAt + this.o.windowMs - performance.now();
        if (wait <= 0) this.flush();
        else this.timer = setTimeout(() => this.flush(), wait);
      });
  }
}
