import type { Clock } from '../clock.js';
import type { ImagesRepo } from '../db/images-repo.js';
import type { ImageRow } from '../db/types.js';
import { fromStorageRequest } from '../errors/index.js';
import type { EventBus } from '../events/event-bus.js';
import type { Logger } from '../logger.js';
import { type Storage, VariantsLeftError } from '../storage/storage.js';
import type { UrlService } from '../urls/url-service.js';
import type { VariantCatalog } from './variants.js';

export interface DeleteDeps {
  storage: Pick<Storage, 'delete'>;
  images: Pick<ImagesRepo, 'softDelete'>;
  /** This node's memory of recent rows (the proxy's), forgotten at once. */
  recentRows: { forget(id: string): void };
  /** Other nodes forget the row too (their proxy's memory, their subscriptions). */
  events: Pick<EventBus, 'publishAccessChanges'>;
  urls: Pick<UrlService, 'purge'>;
  /** The url ids of an image's preset variants (purged with the original's). */
  variants: Pick<VariantCatalog, 'presetUrlIds'>;
  clock: Clock;
  logger: Logger;
}

/**
 * Deletes an image whose row the caller has read and may manage (images/visibility.ts decides).
 * The order, and why (docs/architecture.md, "Deleting an image"):
 *
 * 1. The object. A failure before it is gone changes nothing (BAD_GATEWAY, retry). Once it is
 *    gone the delete has happened for the user: what the store kept of it (variants, derived
 *    objects) that it could not remove (VariantsLeftError) is logged with the key and left to the
 *    orphan sweep, which removes the variants of keys no live row names.
 * 2. The row is soft-deleted, so pages and the proxy stop showing it, and what describes the
 *    photo (placeholder, dimensions, ETag) is cleared; the purge removes the row itself after
 *    DELETED_ROW_RETENTION_DAYS (images/deleted-row-purge.ts). Object before row, because
 *    the other order cannot keep step 1's promise: a failed object delete would leave a deleted
 *    row, already announced, to be put back. The price is the window between the two: a crash (or
 *    a failed update) there leaves a live row without its object, which a retry of the delete
 *    completes (deleting a missing object succeeds).
 * 3. The cached URLs are purged and other nodes told, best effort.
 *
 * False when the row was deleted meanwhile.
 */
export async function deleteImage(deps: DeleteDeps, row: ImageRow): Promise<boolean> {
  const { storage, images, recentRows, events, urls, variants, clock, logger } = deps;
  const id = row.id;
  let left: VariantsLeftError | undefined;
  try {
    await storage.delete(row.objectKey);
  } catch (err) {
    if (!(err instanceof VariantsLeftError)) {
      throw (
        fromStorageRequest(
          err,
          'Object storage is unavailable; the image was not deleted. Try again shortly.',
        ) ?? err
      );
    }
    left = err;
  }
  const deleted = await images.softDelete(row.ownerId, id, new Date(clock.now()));
  if (left) {
    logger.warn(
      {
        imageId: id,
        key: row.objectKey,
        leftover: left.leftover,
        err: (left.cause as Error | undefined)?.message,
      },
      'deleted an image but not all it left in storage (its variants, or its copy in a region whose bucket did not answer); the orphan sweep removes them after ORPHAN_SWEEP_GRACE_SECONDS',
    );
  }
  recentRows.forget(id);
  try {
    // A client's own transforms are not tracked: their URLs answer 404 from now on and leave
    // the cache by their step's end.
    await urls.purge([id, ...variants.presetUrlIds(row)]);
  } catch (err) {
    // Harmless: a deleted image's row is never read again, and its URL now answers 404.
    logger.warn(
      { imageId: id, err: (err as Error).message },
      'could not purge the cached URL of a deleted image',
    );
  }
  // Best effort: another node's proxy forgets the row within seconds anyway (db/recent-rows.ts).
  await events
    .publishAccessChanges([{ imageId: id, ownerId: row.ownerId, visibility: null }])
    .catch((err: Error) => logger.warn({ imageId: id, err: err.message }, 'could not announce a delete'));
  if (deleted) logger.info({ imageId: id, key: row.objectKey }, 'image deleted');
  return deleted !== null;
}
