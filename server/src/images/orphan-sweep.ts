import type { Clock } from '../clock.js';
import type { ImagesRepo } from '../db/images-repo.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import { type ListedObject, type ListPage, type Storage, VariantsLeftError } from '../storage/storage.js';
import type { SweepGuard } from './sweep-guard.js';
import { isUploadKey, UPLOAD_KEY_PREFIX } from './upload.js';

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
  /** Why nothing was swept: the database is not the one that last swept this bucket (SweepGuard). */
  held?: string;
  /**
   * Keys under `u/` this run listed that are not of an upload's shape (`isUploadKey`): an
   * operator's objects that were there before Signet, never Signet's, never deleted. Present when
   * there were any.
   */
  leftAlone?: number;
}

export interface OrphanSweepDeps {
  storage: Pick<Storage, 'list' | 'delete' | 'variantSets' | 'removeDebris'>;
  images: Pick<ImagesRepo, 'keysWithLiveRows' | 'keysWithRows'>;
  /** Refuses a database restored from a backup, or another one (images/sweep-guard.ts). */
  guard: Pick<SweepGuard, 'enter'>;
  metrics: Pick<Metrics, 'orphansDeleted' | 'orphanSweepHeld'>;
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
 * Only what is provably Signet's is deleted. Under `u/` that is a key of exactly the shape uploads
 * write (`isUploadKey`: `u/<escaped owner>/<uuid>.<ext>`); any other key there (an operator's
 * `u/legacy/avatar.png`, in the bucket before Signet) is left alone, counted (`leftAlone`) and
 * named in one info line per pass over the bucket. A variant set is removed only when its
 * object's key is of the upload shape or a deleted row names it (so Signet made those variants);
 * a set of some other key without any row is left alone.
 *
 * The bucket's upload-shaped `u/` keys, and the variants Signet stores (`_signet/variants/` on
 * s3, the local variants folder), must belong to this deployment's database alone: what another
 * deployment wrote there has no live row here and would be deleted.
 */
export class OrphanSweeper {
  /** Where the next run goes on (a run walks a bounded number of pages). */
  private marker: string | undefined;
  private variantsMarker: string | undefined;
  /** Keys under `u/` not of the upload shape seen in this pass over the bucket, and the first one. */
  private leftAloneInPass = 0;
  private leftAloneExample: string | undefined;

  constructor(
    private readonly d: OrphanSweepDeps,
    private readonly o: OrphanSweepOptions,
  ) {}

  async sweep(): Promise<OrphanSweepResult> {
    const { storage, metrics, clock, logger } = this.d;
    // First, whether this database may judge this bucket at all: after a restore, every upload
    // since the backup is an object without a row.
    const verdict = await this.d.guard.enter();
    metrics.orphanSweepHeld.set(verdict.ok ? 0 : 1);
    if (!verdict.ok) {
      logger.error(
        { reason: verdict.reason },
        'orphan sweep held: nothing is deleted until an operator runs `signet orphan-sweep --adopt` (docs/operations.md, "Backups and restores")',
      );
      return { listed: 0, deleted: 0, complete: false, held: verdict.reason };
    }
    const cutoff = clock.now() - this.o.graceSeconds * 1000;
    // A pass over the bucket starts here: the debris walk runs once per pass.
    const debrisRemoved = this.marker === undefined ? await this.removeDebris(cutoff) : 0;
    let deleted = 0;
    let leftAlone = 0;
    const objects = await this.walk(
      (marker, maxKeys) => storage.list(UPLOAD_KEY_PREFIX, { ...marker, maxKeys }),
      () => this.marker,
      (m) => {
        this.marker = m;
      },
      cutoff,
      async (old, all) => {
        // Only what an upload writes is judged; anything else under u/ is not Signet's.
        for (const o of all) {
          if (isUploadKey(o.key)) continue;
          leftAlone++;
          this.leftAloneExample ??= o.key;
        }
        const ours = old.filter((o) => isUploadKey(o.key));
        if (ours.length === 0) return [];
        const live = await this.d.images.keysWithLiveRows(ours.map((o) => o.key));
        return ours.filter((o) => !live.has(o.key));
      },
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
        async (old) => {
          // A set of an upload-shaped key no live row names, or of a key a deleted row names:
          // Signet made those variants. A set of any other key (no row ever named it here) is
          // left alone.
          const rows = await this.d.images.keysWithRows(old.map((o) => o.key));
          return old.filter((o) => {
            const state = rows.get(o.key);
            return state !== 'live' && (state === 'deleted' || isUploadKey(o.key));
          });
        },
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
    this.leftAloneInPass += leftAlone;
    if (objects.complete) {
      // The end of a pass over u/: one line for what it left alone, however many runs it took.
      if (this.leftAloneInPass > 0) {
        logger.info(
          { keys: this.leftAloneInPass, example: this.leftAloneExample, prefix: UPLOAD_KEY_PREFIX },
          "orphan sweep left alone keys under u/ that are not of Signet's upload shape (not Signet's objects)",
        );
      }
      this.leftAloneInPass = 0;
      this.leftAloneExample = undefined;
    }
    return {
      listed: objects.listed,
      deleted,
      complete: objects.complete && variantsComplete,
      variantSetsDeleted,
      debrisRemoved,
      ...(leftAlone > 0 ? { leftAlone } : {}),
    };
  }

  /**
   * Walks at most `maxPages` pages from the saved marker: `judge` gets each page's entries older
   * than the cutoff (and the whole page) and returns those to remove, with at most one SQL
   * statement per page; `drop` gets each of them.
   */
  private async walk(
    page: (marker: { marker?: string }, maxKeys: number) => Promise<ListPage>,
    getMarker: () => string | undefined,
    setMarker: (m: string | undefined) => void,
    cutoff: number,
    judge: (old: ListedObject[], all: readonly ListedObject[]) => Promise<ListedObject[]>,
    drop: (o: ListedObject) => Promise<void>,
  ): Promise<{ listed: number; complete: boolean }> {
    const pageSize = this.o.pageSize ?? 1000;
    const maxPages = this.o.maxPages ?? 20;
    let listed = 0;
    for (let n = 0; n < maxPages; n++) {
      const marker = getMarker();
      const { objects, nextMarker } = await page(marker !== undefined ? { marker } : {}, pageSize);
      listed += objects.length;
      const old = objects.filter((o) => o.lastModified.getTime() <= cutoff);
      const gone = objects.length > 0 ? await judge(old, objects) : [];
      for (const o of gone) await drop(o);
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
