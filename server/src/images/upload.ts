import { randomUUID } from 'node:crypto';
import type { Clock } from '../clock.js';
import type { Config } from '../config.js';
import type { ImagesRepo } from '../db/images-repo.js';
import type { ImageRow } from '../db/types.js';
import { AppError, badInput, fromDatabase, fromStorage, payloadTooLarge } from '../errors/index.js';
import type { Logger } from '../logger.js';
import type { Storage } from '../storage/storage.js';
import { ImageHeaderError, readDimensions } from '../uploads/dimensions.js';
import { detectFormat, FORMATS, type ImageFormat } from '../uploads/sniff.js';

export interface UploadDeps {
  config: Pick<Config, 'uploadMaxBytes' | 'uploadAllowSvg' | 'uploadMaxPixels'>;
  storage: Pick<Storage, 'put' | 'delete'>;
  images: Pick<ImagesRepo, 'insert'>;
  clock: Clock;
  logger: Logger;
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
  config: Pick<Config, 'uploadAllowSvg' | 'uploadMaxPixels'>,
): InspectedImage {
  if (bytes.length === 0) throw badInput('The file is empty');
  // SVG is not even looked for unless it is allowed: the cheapest parser is the one never run.
  const format = detectFormat(bytes, { allowSvg: config.uploadAllowSvg });
  if (!format) {
    throw new AppError(
      'UNSUPPORTED_MEDIA_TYPE',
      `The file is not a ${ACCEPTED} image (judged by its content, not its name)`,
    );
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
    throw (
      fromStorage(err, 'Object storage is unavailable; the image was not stored. Try again shortly.') ?? err
    );
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
    throw fromDatabase(err) ?? err;
  }
}
