import type { Clock } from '../clock.js';
import type { ImagesRepo } from '../db/images-repo.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import { type ListPage, type Storage, VariantsLeftError } from '../storage/storage.js';
import { UPLOAD_KEY_PREFIX } from './upload.js';

/** What one orphan sweep did. */
export interface OrphanSweepResult {
  listed: number;
  deleted: number;
  /** True when the run reached the end of the upload keys (the next one starts over). */
  complete: boolean;
  /** Objects' variant sets (local variants, s3 derived objects) removed: no live row names them. */
  variantSetsDeleted?: number;
  /** Files crashed writes left (local), removed. */
  debrisRemoved?: number;
}

export interface OrphanSweepDeps {
  storage: Pick<Storage, 'list' | 'delete' | 'variantSets' | 'removeDebris'>;
  images: Pick<ImagesRepo, 'keysWithLiveRows'>;
  metrics: Pick<Metrics, 'orphansDeleted'>;
  clock: Clock;
  logger: Logger;
}

export interface OrphanSweepOptions {
  /**
   * Objects, variant sets and debris younger than this are never touched (an upload may be
   * between its put and insert; a put may be writing its temporary file).
   */
  graceSeconds: number;
  /** Keys per listing page, and so per SQL statement (default 1000). */
  pageSize?: number;
  /** Pages one run walks at most; the next run goes on from there (default 20). */
  maxPages?: number;
}

/**
 * Deletes what no live image row needs, once it is older than the grace period:
 *
 * - uploaded objects no live row names: what an upload leaves when its process dies between the
 *   put and the insert, a failed clean-up delete, or the object of a deleted row (a delete removes
 *   the object before it marks the row, so such an object is one a region's bucket got back by
 *   replication, or kept when another region's delete failed);
 * - the variant sets (`Storage.variantSets`: local variants, s3 derived objects) of objects no
 *   live row names: what a delete that removed the object could not remove after it, or a crash
 *   between the two;
 * - the files crashed writes left (`Storage.removeDebris`, local), once per pass over the bucket.
 *
 * One listing page (up to 1,000 keys) costs one SQL statement for the keys old enough to judge.
 * docs/architecture.md, "Deleting an image", has the order of a delete's steps this relies on.
 *
 * The bucket's `u/` keys, and the variants Signet stores (`_signet/variants/` on s3, the local
 * variants folder), must belong to this deployment's database alone: what another deployment
 * wrote there has no live row here and would be deleted.
 */
export class OrphanSweeper {
  /** Where the next run goes on (a run walks a bounded number of pages). */
  private marker: string | undefined;
  private variantsMarker: string | undefined;

  constructor(
    private readonly d: OrphanSweepDeps,
    private readonly o: OrphanSweepOptions,
  ) {}

  async sweep(): Promise<OrphanSweepResult> {
    const { storage, metrics, clock, logger } = this.d;
    const cutoff = clock.now() - this.o.graceSeconds * 1000;
    // A pass over the bucket starts here: the debris walk runs once per pass.
    const debrisRemoved = this.marker === undefined ? await this.removeDebris(cutoff) : 0;
    let deleted = 0;
    const objects = await this.walk(
      (marker, maxKeys) => storage.list(UPLOAD_KEY_PREFIX, { ...marker, maxKeys }),
      () => this.marker,
      (m) => {
        this.marker = m;
      },
      cutoff,
      async (o) => {
        try {
          await storage.delete(o.key);
        } catch (err) {
          // The object is gone; its variants are judged by the pass below (this run or the next).
          if (!(err instanceof VariantsLeftError)) throw err;
          logger.warn(
            { key: o.key, leftover: err.leftover, err: (err.cause as Error)?.message },
            'orphan sweep left variants of a deleted object',
          );
        }
        deleted++;
        metrics.orphansDeleted.inc();
        logger.warn(
          { key: o.key, bytes: o.size, lastModified: o.lastModified.toISOString() },
          'orphan sweep deleted an object no live image row names',
        );
      },
    );
    let variantSetsDeleted = 0;
    let variantsComplete = true;
    const sets = storage.variantSets;
    if (sets) {
      const v = await this.walk(
        (marker, maxKeys) => sets.list({ ...marker, maxKeys }),
        () => this.variantsMarker,
        (m) => {
          this.variantsMarker = m;
        },
        cutoff,
        async (o) => {
          await sets.delete(o.key);
          variantSetsDeleted++;
          logger.warn(
            { key: o.key, bytes: o.size, lastModified: o.lastModified.toISOString() },
            'orphan sweep removed the variants of an object no live image row names',
          );
        },
      );
      variantsComplete = v.complete;
    }
    return {
      listed: objects.listed,
      deleted,
      complete: objects.complete && variantsComplete,
      variantSetsDeleted,
      debrisRemoved,
    };
  }

  /**
   * Walks at most `maxPages` pages from the saved marker, judging each entry older than the
   * cutoff: one SQL statement per page for the keys a live row names; `drop` gets the others.
   */
  private async walk(
    page: (marker: { marker?: string }, maxKeys: number) => Promise<ListPage>,
    getMarker: () => string | undefined,
    setMarker: (m: string | undefined) => void,
    cutoff: number,
    drop: (o: ListPage['objects'][number]) => Promise<void>,
  ): Promise<{ listed: number; complete: boolean }> {
    const pageSize = this.o.pageSize ?? 1000;
    const maxPages = this.o.maxPages ?? 20;
    let listed = 0;
    for (let n = 0; n < maxPages; n++) {
      const marker = getMarker();
      const { objects, nextMarker } = await page(marker !== undefined ? { marker } : {}, pageSize);
      listed += objects.length;
      const old = objects.filter((o) => o.lastModified.getTime() <= cutoff);
      if (old.length > 0) {
        const live = await this.d.images.keysWithLiveRows(old.map((o) => o.key));
        for (const o of old) if (!live.has(o.key)) await drop(o);
      }
      setMarker(nextMarker);
      if (nextMarker === undefined) return { listed, complete: true };
    }
    return { listed, complete: false };
  }

  /** Crashed writes' files older than the cutoff (local), each logged. */
  private async removeDebris(cutoff: number): Promise<number> {
    const { storage, logger } = this.d;
    if (!storage.removeDebris) return 0;
    const removed = await storage.removeDebris(new Date(cutoff));
    for (const r of removed) {
      logger.warn(
        { path: r.path, bytes: r.bytes, lastModified: r.lastModified.toISOString() },
        'orphan sweep removed a file a crashed write left',
      );
    }
    return removed.length;
  }
}
