import type { OutputInfo } from 'sharp';
import { rgbaToThumbHash } from 'thumbhash';
import { loadSharp } from '../lib/load-sharp.js';

/** ThumbHash encodes images of at most 100×100 pixels. */
export const THUMBHASH_MAX_SIDE = 100;

export interface ThumbHashLimits {
  /** Pixels of the decoded image at most (the upload's UPLOAD_MAX_PIXELS): larger ones are refused unread. */
  maxPixels: number;
  /** libvips gives up on a pipeline running longer than this. */
  timeoutSeconds: number;
}

/** The bytes are no image sharp can decode within the limits (corrupt, truncated, too large, too slow). */
export class UndecodableImage extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'UndecodableImage';
  }
}

/**
 * The ThumbHash of an image, base64: turned as displayed (EXIF orientation), shrunk to fit
 * 100×100, as RGBA. The decode runs on libuv's thread pool (sharp never decodes on the main
 * thread); JPEG and WebP shrink while they decode, so a 12-megapixel photo is never held whole.
 * What is left on the main thread is the hash of at most 10,000 pixels (about a millisecond).
 * `failOn: 'warning'` (sharp's default, said out loud): a truncated JPEG is undecodable, not a
 * placeholder with a grey bottom.
 */
export async function thumbHashOf(input: Buffer, limits: ThumbHashLimits): Promise<string> {
  let out: { data: Buffer; info: OutputInfo };
  const sharp = await loadSharp();
  try {
    out = await sharp(input, { limitInputPixels: limits.maxPixels, failOn: 'warning', autoOrient: true })
      .resize(THUMBHASH_MAX_SIDE, THUMBHASH_MAX_SIDE, { fit: 'inside' })
      .ensureAlpha()
      .raw()
      .timeout({ seconds: limits.timeoutSeconds })
      .toBuffer({ resolveWithObject: true });
  } catch (err) {
    throw new UndecodableImage(`the image could not be decoded: ${(err as Error).message}`, { cause: err });
  }
  const { width, height, channels } = out.info;
  if (channels !== 4 || width > THUMBHASH_MAX_SIDE || height > THUMBHASH_MAX_SIDE) {
    throw new UndecodableImage(`unexpected thumbnail ${width}×${height}×${channels}`);
  }
  return Buffer.from(rgbaToThumbHash(width, height, out.data)).toString('base64');
}
