import { randomUUID } from 'node:crypto';
import { isDatabaseUnavailable } from '../db/connect.js';
import type { ImageRow } from '../db/types.js';
import { AppError, badInput, unavailable } from '../errors.js';
import type { Services } from '../services.js';
import { StorageError } from '../storage/storage.js';
import { ImageHeaderError, readDimensions } from './dimensions.js';
import { detectFormat, FORMATS, type ImageFormat } from './sniff.js';

export type UploadDeps = Pick<
  Services,
  'config' | 'storage' | 'images' | 'recentRows' | 'urls' | 'clock' | 'logger'
>;

export function payloadTooLarge(maxBytes: number, http = false): AppError {
  return new AppError(
    'PAYLOAD_TOO_LARGE',
    `The file is larger than the upload limit of ${maxBytes} bytes`,
    http ? { maxBytes, http: { status: 413 } } : { maxBytes },
  );
}

const ACCEPTED = 'JPEG, PNG, GIF, WebP or AVIF';

/**
 * Reads a file into memory, never holding more than maxBytes: the declared size is checked
 * first, and the bytes are counted as they come (a declared size can lie).
 */
export async function readBounded(file: Blob, maxBytes: number): Promise<Buffer> {
  if (file.size > maxBytes) throw payloadTooLarge(maxBytes);
  const reader = file.stream().getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.byteLength;
      if (total > maxBytes) {
        await reader.cancel();
        throw payloadTooLarge(maxBytes);
      }
      chunks.push(value);
    }
  } finally {
    reader.releaseLock();
  }
  return Buffer.concat(chunks, total);
}

export interface InspectedImage {
  format: ImageFormat;
  contentType: string;
  ext: string;
  width: number | null;
  height: number | null;
}

/** Type by magic bytes, size from the header, both checked against the configured limits. */
export function inspectImage(
  bytes: Buffer,
  config: Pick<UploadDeps['config'], 'uploadAllowSvg' | 'uploadMaxPixels'>,
): InspectedImage {
  if (bytes.length === 0) throw badInput('The file is empty');
  const format = detectFormat(bytes);
  if (!format) {
    throw new AppError(
      'UNSUPPORTED_MEDIA_TYPE',
      `The file is not a ${ACCEPTED} image (judged by its content, not its name)`,
    );
  }
  if (format === 'svg' && !config.uploadAllowSvg) {
    throw new AppError('UNSUPPORTED_MEDIA_TYPE', `SVG uploads are not accepted; send a ${ACCEPTED} image`);
  }
  let dims: { width: number; height: number } | null;
  try {
    dims = readDimensions(format, bytes);
  } catch (err) {
    if (err instanceof ImageHeaderError) throw badInput(err.message);
    throw err;
  }
  if (dims && dims.width * dims.height > config.uploadMaxPixels) {
    throw badInput(
      `The image is ${dims.width}×${dims.height} pixels; at most ${config.uploadMaxPixels} pixels are accepted`,
    );
  }
  const { contentType, ext } = FORMATS[format];
  return { format, contentType, ext, width: dims?.width ?? null, height: dims?.height ?? null };
}

/**
 * `u/<owner>/<id>.<ext>`: immutable (a new upload is a new id) and built only from values the
 * server chose. The owner is escaped so no viewer id can form a path segment like `..`.
 */
export function objectKeyFor(ownerId: string, id: string, ext: string): string {
  const owner = encodeURIComponent(ownerId).replace(/^\.+$/, (dots) => '%2E'.repeat(dots.length));
  return `u/${owner}/${id}.${ext}`;
}

/** A storage failure the client may retry, or undefined for one that is our bug. */
function storageUnavailable(err: unknown, what: string): AppError | undefined {
  if (err instanceof StorageError && (err.kind === 'unavailable' || err.kind === 'timeout')) {
    return unavailable(`Object storage is unavailable; ${what}. Try again shortly.`);
  }
  return undefined;
}

/**
 * Stores an upload with no partial state: the object first, then the row. A failed put leaves
 * no row; a failed insert deletes the object it just wrote (and says loudly when it cannot).
 */
export async function uploadImage(deps: UploadDeps, ownerId: string, file: Blob): Promise<ImageRow> {
  const { config, storage, images, clock, logger } = deps;
  const bytes = await readBounded(file, config.uploadMaxBytes);
  const image = inspectImage(bytes, config);
  const id = randomUUID();
  const key = objectKeyFor(ownerId, id, image.ext);

  let etag: string;
  try {
    ({ etag } = await storage.put(key, bytes, image.contentType));
  } catch (err) {
    // A put that timed out may still land; deleting is idempotent, so make sure.
    await storage.delete(key).catch((e: unknown) => {
      logger.warn({ key, err: (e as Error).message }, 'could not clean up after a failed upload put');
    });
    throw storageUnavailable(err, 'the image was not stored') ?? err;
  }

  try {
    const row = await images.insert({
      id,
      ownerId,
      objectKey: key,
      contentType: image.contentType,
      byteSize: bytes.length,
      width: image.width,
      height: image.height,
      etag,
      createdAt: new Date(clock.now()),
    });
    logger.info({ imageId: id, key, bytes: bytes.length, contentType: image.contentType }, 'image uploaded');
    return row;
  } catch (err) {
    try {
      await storage.delete(key);
    } catch (cleanupErr) {
      logger.error(
        { key, imageId: id, err: (err as Error).message, cleanupErr: (cleanupErr as Error).message },
        `ORPHANED OBJECT: the image row could not be written and deleting object "${key}" failed; delete it by hand`,
      );
    }
    if (isDatabaseUnavailable(err))
      throw unavailable('The database is unavailable; the image was not stored.');
    throw err;
  }
}

/**
 * Deletes one of the owner's images: the object first (a failure changes nothing and can be
 * retried), then the row is soft-deleted, so the proxy stops honouring its tokens, then the cached
 * URL is purged. If the row update fails after the object went, a retry converges (deleting a
 * missing object succeeds). Missing, already deleted and another owner's images all answer false.
 */
export async function deleteImage(deps: UploadDeps, ownerId: string, id: string): Promise<boolean> {
  const { storage, images, recentRows, urls, clock, logger } = deps;
  const [row] = await images.findVisible(ownerId, [id]);
  if (!row) return false;
  try {
    await storage.delete(row.objectKey);
  } catch (err) {
    throw storageUnavailable(err, 'the image was not deleted') ?? err;
  }
  const deleted = await images.softDelete(ownerId, id, new Date(clock.now()));
  recentRows.forget(id);
  try {
    await urls.purge([id]);
  } catch (err) {
    // Harmless: a deleted image's row is never read again, and its URL now answers 404.
    logger.warn(
      { imageId: id, err: (err as Error).message },
      'could not purge the cached URL of a deleted image',
    );
  }
  if (deleted) logger.info({ imageId: id, key: row.objectKey }, 'image deleted');
  return deleted !== null;
}
