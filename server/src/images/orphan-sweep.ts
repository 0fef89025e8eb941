import type { Clock } from '../clock.js';
import type { ImagesRepo } from '../db/images-repo.js';
import type { OrphanSweepResult } from '../jobs/job-engine.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import type { Storage } from '../storage/storage.js';
import { UPLOAD_KEY_PREFIX } from './upload.js';

export interface OrphanSweepDeps {
  storage: Pick<Storage, 'list' | 'delete'>;
  images: Pick<ImagesRepo, 'keysWithRows'>;
  metrics: Pick<Metrics, 'orphansDeleted'>;
  clock: Clock;
  logger: Logger;
}

export interface OrphanSweepOptions {
  /** Objects younger than this are never touched (an upload may be between its put and insert). */
  graceSeconds: number;
  /** Keys per listing page, and so per SQL statement (default 1000). */
  pageSize?: number;
  /** Pages one run walks at most; the next run goes on from there (default 20). */
  maxPages?: number;
}

/**
 * Deletes uploaded objects that no image row names: what an upload leaves when its process dies
 * between the put and the insert, or when a clean-up delete failed. One listing page (up to 1,000
 * keys) costs one SQL statement for the keys old enough to judge. A row that names the key, live
 * or deleted, keeps the object: a delete removes the object before it marks the row.
 *
 * The bucket's `u/` keys must belong to this deployment's database alone: a key another
 * deployment wrote has no row here and would be deleted.
 */
export class OrphanSweeper {
  /** Where the next run goes on (a run walks a bounded number of pages). */
  private marker: string | undefined;

  constructor(
    private readonly d: OrphanSweepDeps,
    private readonly o: OrphanSweepOptions,
  ) {}

  async sweep(): Promise<OrphanSweepResult> {
    const { storage, images, metrics, clock, logger } = this.d;
    const pageSize = this.o.pageSize ?? 1000;
    const maxPages = this.o.maxPages ?? 20;
    const cutoff = clock.now() - this.o.graceSeconds * 1000;
    let listed = 0;
    let deleted = 0;
    for (let page = 0; page < maxPages; page++) {
      const { objects, nextMarker } = await storage.list(UPLOAD_KEY_PREFIX, {
        ...(this.marker !== undefined ? { marker: this.marker } : {}),
        maxKeys: pageSize,
      });
      listed += objects.length;
      const old = objects.filter((o) => o.lastModified.getTime() <= cutoff);
      if (old.length > 0) {
        const named = await images.keysWithRows(old.map((o) => o.key));
        for (const o of old) {
          if (named.has(o.key)) continue;
          await storage.delete(o.key);
          deleted++;
          metrics.orphansDeleted.inc();
          logger.warn(
            { key: o.key, bytes: o.size, lastModified: o.lastModified.toISOString() },
            'orphan sweep deleted an object no image row names',
          );
        }
      }
      this.marker = nextMarker;
      if (nextMarker === undefined) return { listed, deleted, complete: true };
    }
    return { listed, deleted, complete: false };
  }
}
