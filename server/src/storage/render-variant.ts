import type { Readable } from 'node:stream';
import type { Metadata, SharpOptions } from 'sharp';
import { loadSharp } from '../lib/load-sharp.js';
import { Slots } from '../lib/slots.js';
import { isAnimated, readDimensions } from '../uploads/dimensions.js';
import type { ImageFormat, VariantSpec } from './variant.js';

/**
 * Renders a variant from an original's bytes by the rules of `VariantSpec` (storage/variant.ts),
 * for the drivers that make variants themselves (local, s3). One sharp pipeline per render,
 * bounded in pixels, bytes, time and concurrency, so a flood of first requests or a hostile
 * object can neither block the event loop nor exhaust memory. See docs/architecture.md,
 * "Variants on local".
 */

export interface RenderedVariant {
  data: Buffer;
  format: ImageFormat;
  contentType: string;
  width: number;
  height: number;
  /**
   * The original is animated and `data` is the original itself, whole: a caller that knows the
   * image's row records it there (images/derived-variants.ts), so the catalog stops asking for
   * variants of it.
   */
  animated?: true;
}

/**
 * Why a variant could not be made. `unreadable` (corrupt, truncated), `unsupported` (not a raster
 * format a variant is made of) and `too_large` (more pixels or bytes than any accepted upload) are
 * the object's fault and will not change on a retry; `timeout` and `busy` are the node's load.
 */
export type VariantRenderFailure = 'unreadable' | 'unsupported' | 'too_large' | 'timeout' | 'busy';

export class VariantRenderError extends Error {
  constructor(
    readonly reason: VariantRenderFailure,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'VariantRenderError';
  }
}

export interface VariantRendererOptions {
  /**
   * Largest width × height an original may declare; checked from the header before any pixel is
   * decoded (sharp's `limitInputPixels`). UPLOAD_MAX_PIXELS: no accepted upload is larger, so a
   * larger object is not one Signet stored — a decompression bomb is refused, never decoded.
   */
  maxInputPixels: number;
  /**
   * Largest width or height of a variant (IMAGE_MAX_DIMENSION). The domain never signs a larger
   * one; checked again here because `contain` pads to its whole box, so the box alone decides
   * the pixels allocated.
   */
  maxOutputDimension: number;
  /** Largest original read into memory (UPLOAD_MAX_BYTES, for the same reason). */
  maxInputBytes: number;
  /** Wall-clock bound of one render, reading the original included (VARIANT_TIMEOUT_SECONDS). */
  timeoutSeconds: number;
  /** Renders at once (VARIANT_CONCURRENCY). */
  concurrency: number;
  /** Renders that may wait for a slot; one more is refused as `busy` (VARIANT_QUEUE_MAX). */
  maxQueue: number;
  /**
   * The node's budget of sharp work, shared with the placeholders (Config.decodeBudget): a render
   * holds one of it while sharp decodes and encodes, not while the original is read.
   */
  decodes?: Slots;
}

/** Where a render's original comes from; called once a slot is free, so waiting costs no bytes. */
export type OpenOriginal = () => Promise<Buffer | Readable>;

export interface VariantRenderer {
  render(open: OpenOriginal, spec: VariantSpec): Promise<RenderedVariant>;
  /** Renders running and waiting now (for tests and the bench). */
  readonly load: { running: number; waiting: number };
}

const CONTENT_TYPES: Record<ImageFormat, string> = {
  jpeg: 'image/jpeg',
  png: 'image/png',
  webp: 'image/webp',
  avif: 'image/avif',
};

/** sharp's name of an input format that may be animated, as the output format it is served as. */
const ANIMATABLE: Partial<Record<string, ImageFormat & ('webp' | 'png' | 'avif')>> = {
  webp: 'webp',
  png: 'png',
  heif: 'avif',
};

/** Input formats a variant is made of: the raster images uploads accept (never SVG or PDF). */
const RASTER_INPUTS = new Set(['jpeg', 'png', 'webp', 'gif', 'heif', 'avif', 'tiff']);

/**
 * The output format when the spec names none: the original's own when it is one of ours; a GIF or
 * TIFF becomes PNG (lossless, keeps transparency; an animation keeps its first frame).
 */
function outputFormat(spec: VariantSpec, meta: Metadata): ImageFormat {
  if (spec.format) return spec.format;
  switch (meta.format) {
    case 'jpeg':
    case 'png':
    case 'webp':
      return meta.format;
    case 'heif':
      return meta.compression === 'av1' ? 'avif' : 'jpeg';
    default:
      return 'png';
  }
}

const TRANSPARENT = { r: 0, g: 0, b: 0, alpha: 0 };
const WHITE = { r: 255, g: 255, b: 255, alpha: 1 };

/** One sharp pipeline for one spec, in the order `VariantSpec` gives. */
async function renderBuffer(
  input: Buffer,
  spec: VariantSpec,
  o: VariantRendererOptions,
): Promise<RenderedVariant> {
  // failOn 'warning' (sharp's default, said here because it matters): a truncated or corrupt
  // original is an error, not a half-grey image. The pixel limit is checked from the header.
  const inputOptions: SharpOptions = {
    limitInputPixels: o.maxInputPixels,
    sequentialRead: true,
    failOn: 'warning',
  };
  // An AVIF sequence is served whole before sharp sees it: libvips 8.18's HEIF loader refuses a
  // file whose major brand is `avis` (every sequence libavif writes) as an unknown format, so the
  // check below would never be reached and its variants would fail. Its size comes from the
  // upload's own header reader (the primary item's, as displayed).
  if (isAnimated('avif', input)) return wholeAvifSequence(input, o);
  const sharp = await loadSharp();
  let meta: Metadata;
  try {
    meta = await sharp(input, inputOptions).metadata();
  } catch (err) {
    throw classifyFailure(err, o);
  }
  if (!meta.format || !RASTER_INPUTS.has(meta.format)) {
    throw new VariantRenderError('unsupported', `A variant cannot be made of ${meta.format ?? 'this'} data`);
  }
  if (!meta.width || !meta.height || meta.width * meta.height > o.maxInputPixels) {
    throw new VariantRenderError(
      'too_large',
      `The original declares ${meta.width}×${meta.height} pixels; at most ${o.maxInputPixels} are decoded`,
    );
  }

  // An animated original: a variant would keep its first frame only, so its variants are the
  // original itself, byte for byte, as a GIF's are. The catalog hands out an animated row's own
  // URL for every variant (images/variants.ts), so this runs only for a row that does not say so:
  // one from before the column, not backfilled yet, or an APNG whose acTL lay past the head the
  // upload read. The safety net: such a row is never served as a still (docs/architecture.md,
  // "Variants"). The result says what was found, for a caller that can record it.
  const animated = meta.format === 'heif' && meta.compression !== 'av1' ? undefined : ANIMATABLE[meta.format];
  if (animated && (isAnimated(animated, input) || (animated === 'webp' && (meta.pages ?? 1) > 1))) {
    return {
      data: input,
      format: animated,
      contentType: CONTENT_TYPES[animated],
      width: meta.width,
      height: meta.pageHeight ?? meta.height,
      animated: true,
    };
  }

  const format = outputFormat(spec, meta);
  const opaque = format === 'jpeg';
  // rotate() without an angle applies the EXIF orientation; sharp writes no metadata (EXIF, XMP,
  // ICC: converted to sRGB) unless asked to keep it, so no GPS tag leaves in a variant.
  let pipeline = sharp(input, inputOptions).rotate();
  if (spec.width !== undefined || spec.height !== undefined) {
    pipeline = pipeline.resize({
      width: spec.width,
      height: spec.height,
      fit: spec.fit,
      position: 'centre',
      withoutEnlargement: true,
      background: opaque ? WHITE : TRANSPARENT,
    });
  }
  // A JPEG has no alpha: a transparent original lies on white, like the padding.
  if (opaque) pipeline = pipeline.flatten({ background: WHITE });
  // Quality is for the lossy encoders only. sharp's png({ quality }) turns on palette
  // quantisation (at most 256 colours), while COS ignores quality for PNG
  // (storage/cos-processing.ts): one variant key must give the same kind of pixels on every driver.
  const quality = spec.quality !== undefined && format !== 'png' ? { quality: spec.quality } : {};
  pipeline = pipeline.toFormat(format, quality).timeout({ seconds: o.timeoutSeconds });
  try {
    const { data, info } = await pipeline.toBuffer({ resolveWithObject: true });
    return { data, format, contentType: CONTENT_TYPES[format], width: info.width, height: info.height };
  } catch (err) {
    throw classifyFailure(err, o);
  }
}

/** An AVIF sequence as its own variant (see renderBuffer), within the same pixel limit. */
function wholeAvifSequence(input: Buffer, o: VariantRendererOptions): RenderedVariant {
  let size: { width: number; height: number } | null;
  try {
    size = readDimensions('avif', input);
  } catch (err) {
    throw new VariantRenderError('unreadable', 'The original is not a readable image', { cause: err });
  }
  if (!size || size.width * size.height > o.maxInputPixels) {
    throw new VariantRenderError(
      'too_large',
      `The original declares ${size?.width}×${size?.height} pixels; at most ${o.maxInputPixels} are decoded`,
    );
  }
  return { data: input, format: 'avif', contentType: CONTENT_TYPES.avif, ...size, animated: true };
}

/** sharp reports every failure as a plain Error; its message tells them apart. */
function classifyFailure(err: unknown, o: VariantRendererOptions): VariantRenderError {
  const message = err instanceof Error ? err.message : String(err);
  if (message.includes('timeout')) {
    return new VariantRenderError('timeout', `The variant took longer than ${o.timeoutSeconds} s`, {
      cause: err,
    });
  }
  if (message.includes('pixel limit')) {
    return new VariantRenderError('too_large', `The original declares more than ${o.maxInputPixels} pixels`, {
      cause: err,
    });
  }
  return new VariantRenderError('unreadable', 'The original is not a readable image', { cause: err });
}

/** Reads a stream into one buffer, refusing more than `max` bytes or a stream that ends late. */
function collect(body: Readable, max: number, signal: AbortSignal): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const fail = (err: Error) => {
      body.destroy();
      reject(err);
    };
    const onAbort = () => fail(signal.reason as Error);
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    body.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > max) {
        signal.removeEventListener('abort', onAbort);
        fail(new VariantRenderError('too_large', `The original is larger than ${max} bytes`));
        return;
      }
      chunks.push(chunk);
    });
    body.once('error', (err) => {
      signal.removeEventListener('abort', onAbort);
      reject(err);
    });
    body.once('end', () => {
      signal.removeEventListener('abort', onAbort);
      resolve(Buffer.concat(chunks, size));
    });
  });
}

export function createVariantRenderer(o: VariantRendererOptions): VariantRenderer {
  const slots = new Slots(o.concurrency);

  /** A slot of the pool: at most `concurrency` renders hold one; up to `maxQueue` wait in order. */
  async function acquire(): Promise<void> {
    if (slots.full && slots.queued >= o.maxQueue) {
      throw new VariantRenderError('busy', 'Too many variants are being made; retry shortly');
    }
    await slots.acquire();
  }

  async function renderInSlot(open: OpenOriginal, spec: VariantSpec): Promise<RenderedVariant> {
    if ((spec.width ?? 0) > o.maxOutputDimension || (spec.height ?? 0) > o.maxOutputDimension) {
      throw new VariantRenderError(
        'too_large',
        `A variant may be at most ${o.maxOutputDimension} pixels wide and high`,
      );
    }
    // The deadline covers reading the original too: a stalled read must not hold a slot forever.
    // sharp's own timeout bounds the pixel work, which cannot be interrupted from here.
    const deadline = AbortSignal.timeout(o.timeoutSeconds * 1000);
    const timedOut = () =>
      new VariantRenderError('timeout', `The original was not read within ${o.timeoutSeconds} s`);
    const source = await open();
    let input: Buffer;
    if (Buffer.isBuffer(source)) {
      if (source.length > o.maxInputBytes) {
        throw new VariantRenderError('too_large', `The original is larger than ${o.maxInputBytes} bytes`);
      }
      input = source;
    } else {
      try {
        input = await collect(source, o.maxInputBytes, deadline);
      } catch (err) {
        if (deadline.aborted) throw timedOut();
        throw err;
      }
    }
    return o.decodes ? o.decodes.run(() => renderBuffer(input, spec, o)) : renderBuffer(input, spec, o);
  }

  return {
    async render(open, spec) {
      await acquire();
      try {
        return await renderInSlot(open, spec);
      } finally {
        slots.release();
      }
    },
    get load() {
      return { running: slots.held, waiting: slots.queued };
    },
  };
}
