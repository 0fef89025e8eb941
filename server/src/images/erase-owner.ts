import type { DeletedRowRecords, ImagesRepo } from '../db/images-repo.js';
import type { Logger } from '../logger.js';
import { MAX_LIST_KEYS, type Storage, VariantsLeftError } from '../storage/storage.js';
import type { UrlService } from '../urls/url-service.js';
import { type DeleteDeps, deleteImage } from './delete.js';
import { isUploadKey, objectKeyFor } from './upload.js';

/** Rows one statement of the erasure reads or removes. */
const ERASE_BATCH = 100;

/**
 * How long after its last delete the erasure waits before its last step: a view counted on a
 * gateway node just before a delete reaches Redis with the node's next access flush (once a
 * second, urls/access-tracker.ts), after the delete's purge, and puts its url id back.
 */
export const ACCESS_SETTLE_MS = 2000;

export interface EraseOwnerDeps {
  /** The normal delete path's (images/delete.ts): every region's bucket, the cache, the other nodes. */
  deletion: DeleteDeps;
  images: Pick<ImagesRepo, 'keysWithRows'> &
    Pick<DeletedRowRecords, 'ownerLiveRows' | 'ownerDeletedRows' | 'ownerCounts' | 'removeDeleted'>;
  /** The home bucket, listed for what is left under the owner's upload folder. */
  listing: Pick<Storage, 'list'>;
  urls: Pick<UrlService, 'purge' | 'forgetImages'>;
  logger: Logger;
}

export interface EraseOwnerResult {
  /** Live images at the start (dry run) or deleted through the normal delete path. */
  liveImages: number;
  /** Rows removed (live ones once deleted, and rows deleted before). */
  rowsRemoved: number;
  /** Soft-deleted rows the owner had before this run (dry run: has). */
  deletedRows: number;
  /** Upload-shaped objects under the owner's upload folder that no row named (removed, or found in a dry run). */
  leftoverObjects: number;
}

/** The owner's upload folder, `u/<escaped owner>/`, in the one form uploads write it. */
export function uploadFolderOf(ownerId: string): string {
  const key = objectKeyFor(ownerId, 'id', 'ext');
  return key.slice(0, key.lastIndexOf('/') + 1);
}

/**
 * Erases everything Signet keeps of one owner (`signet erase-owner`; docs/operations.md, "Erasing
 * a user's data"):
 *
 * 1. Every live image through the normal delete path (images/delete.ts): its object and what the
 *    store kept of it on every region's bucket, then its row is soft-deleted, its cached URLs
 *    purged and the other nodes told (their proxy memory and subscriptions forget it).
 * 2. Every soft-deleted row of the owner (those of step 1 and earlier deletes): its object is
 *    deleted again (a region's bucket may have got it back by replication, a failed delete may have
 *    left variants that the orphan sweep recognises only while the row is there), its cached URLs
 *    purged again, then the row is removed.
 * 3. What is left under the owner's upload folder (an upload killed between its put and its row):
 *    upload-shaped keys only, as the orphan sweep judges them.
 * 4. Every url id of the erased images left in the refresh schedule and the access counters (the
 *    variants' too, which no row can name any more), once the views counted before the deletes
 *    have been flushed (ACCESS_SETTLE_MS after the last delete).
 *
 * Every step is idempotent and works on what is there when it runs, so a run that failed midway
 * (the bucket or the database away) is finished by running it again.
 */
export async function eraseOwner(
  d: EraseOwnerDeps,
  ownerId: string,
  o: { dryRun: boolean },
): Promise<EraseOwnerResult> {
  const result: EraseOwnerResult = { liveImages: 0, rowsRemoved: 0, deletedRows: 0, leftoverObjects: 0 };
  if (o.dryRun) {
    const counts = await d.images.ownerCounts(ownerId);
    result.liveImages = counts.live;
    result.deletedRows = counts.deleted;
    await walkUploadFolder(d, ownerId, () => {
      result.leftoverObjects++;
    });
    return result;
  }
  result.deletedRows = (await d.images.ownerCounts(ownerId)).deleted;

  // 1. Live images, through the normal delete path. A row this run tried already and still finds
  // live means the delete did not take (it never should: a failure throws); stop rather than loop.
  const tried = new Set<string>();
  let lastDeleteAt = 0;
  for (;;) {
    const rows = await d.images.ownerLiveRows(ownerId, ERASE_BATCH);
    if (rows.length === 0) break;
    for (const row of rows) {
      if (tried.has(row.id)) throw new Error(`image ${row.id} is still live after its delete`);
      tried.add(row.id);
      await deleteImage(d.deletion, row);
      lastDeleteAt = Date.now();
      result.liveImages++;
    }
  }

  // 2. Every deleted row: its object once more, its cached URLs, then the row.
  const removing = new Set<string>();
  for (;;) {
    const rows = await d.images.ownerDeletedRows(ownerId, ERASE_BATCH);
    if (rows.length === 0) break;
    for (const row of rows) {
      if (removing.has(row.id))
        throw new Error(`the deleted row of image ${row.id} is still there after its removal`);
      removing.add(row.id);
      try {
        await d.deletion.storage.delete(row.objectKey);
      } catch (err) {
        if (!(err instanceof VariantsLeftError)) throw err;
        // The object is gone; the rest is what the orphan sweep removes for upload keys.
        d.logger.warn(
          { imageId: row.id, key: row.objectKey, leftover: err.leftover },
          'erasure: an image was deleted but not all of its variants',
        );
      }
    }
    // The variants' url ids need the row's size, which the delete cleared: the preset ones were
    // purged by the delete; these are the original's (and whatever expires by its step's end).
    await d.urls.purge(rows.map((r) => r.id));
    const removed = await d.images.removeDeleted(
      ownerId,
      rows.map((r) => r.id),
    );
    result.rowsRemoved += removed;
  }

  // 3. Leftovers under the owner's upload folder (no row names them any more).
  const leftovers: string[] = [];
  await walkUploadFolder(d, ownerId, (key) => {
    leftovers.push(key);
  });
  for (const key of leftovers) {
    try {
      await d.deletion.storage.delete(key);
    } catch (err) {
      if (!(err instanceof VariantsLeftError)) throw err;
    }
    result.leftoverObjects++;
  }

  // 4. What the access flushes put back after the purges above.
  const erased = [...new Set([...tried, ...removing])];
  if (erased.length > 0) {
    const wait = lastDeleteAt + ACCESS_SETTLE_MS - Date.now();
    if (lastDeleteAt > 0 && wait > 0) await sleep(wait);
    await d.urls.forgetImages(erased);
  }
  return result;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Every upload-shaped key under the owner's upload folder that no row names, a listing page (and
 * one statement) at a time.
 */
async function walkUploadFolder(
  d: Pick<EraseOwnerDeps, 'listing' | 'images'>,
  ownerId: string,
  visit: (key: string) => void,
): Promise<void> {
  const folder = uploadFolderOf(ownerId);
  let marker: string | undefined;
  do {
    const page = await d.listing.list(folder, {
      ...(marker !== undefined ? { marker } : {}),
      maxKeys: MAX_LIST_KEYS,
    });
    // Only this owner's uploads: the folder's name is the owner's, in the one escaped form.
    const keys = page.objects
      .map((o) => o.key)
      .filter((key) => isUploadKey(key) && key.startsWith(folder) && !key.includes('/', folder.length));
    const named = await d.images.keysWithRows(keys);
    for (const key of keys) if (!named.has(key)) visit(key);
    marker = page.nextMarker;
  } while (marker !== undefined);
}
