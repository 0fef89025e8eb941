import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import type { Clock } from '../clock.js';
import type { Config } from '../config.js';
import type { ImagesRepo } from '../db/images-repo.js';
import type { ImageRow, ImageVisibility } from '../db/types.js';
import {
  AppError,
  badInput,
  forbidden,
  fromDatabase,
  fromStorageRequest,
  payloadTooLarge,
} from '../errors/index.js';
import { bytesInWords } from '../lib/byte-size.js';
import type { Logger } from '../logger.js';
import type { Storage } from '../storage/storage.js';
import { strippedAvif } from '../uploads/avif-metadata.js';
import {
  type Dimensions,
  type ExifChunkFormat,
  ExifChunkWalk,
  GifWalk,
  ImageHeaderError,
  isAnimated,
  readDimensions,
  readStoredDimensions,
  turned,
} from '../uploads/dimensions.js';
import { strippedGif } from '../uploads/gif-metadata.js';
import { strippedJpeg } from '../uploads/jpeg-metadata.js';
import { strippedPng } from '../uploads/png-metadata.js';
import { detectFormat, FORMATS, type ImageFormat, SNIFF_FIRST_BYTES } from '../uploads/sniff.js';
import { type StoredPlan, storedSize } from '../uploads/stored-bytes.js';
import { strippedWebp } from '../uploads/webp-metadata.js';
import type { ByteSource } from '../uploads/windowed-source.js';
import { isImageId } from './image-id.js';
import type { ImageJobs } from './image-jobs.js';
import type { Placeholders } from './placeholders.js';
import { acceptedInWords, quotaUsage } from './upload-limits.js';
import type { VariantCatalog } from './variants.js';

export interface UploadDeps {
  config: Pick<
    Config,
    | 'uploadMaxBytes'
    | 'uploadAllowSvg'
    | 'uploadStripMetadata'
    | 'uploadMaxPixels'
    | 'uploadQuotaBytes'
    | 'uploadQuotaFiles'
    | 'regions'
  >;
  storage: Pick<Storage, 'put' | 'delete'>;
  images: Pick<ImagesRepo, 'insert' | 'usage'>;
  /** Computes the ThumbHash from the stored object after the upload has answered. */
  placeholders: Pick<Placeholders, 'enqueue'>;
  /** Queues the derived variants' job where variants are derived objects (s3). */
  jobs: Pick<ImageJobs, 'enqueueVariants'>;
  variants: Pick<VariantCatalog, 'derivedObjects'>;
  clock: Clock;
  logger: Logger;
}

/** Every uploaded object's key starts with this (the orphan sweep lists exactly these). */
export const UPLOAD_KEY_PREFIX = 'u/';

/**
 * How far into a file the header is looked for. JPEG's frame header comes after every APPn
 * segment (EXIF with its thumbnail, ICC profiles, XMP; phone cameras put depth maps there), and
 * AVIF's `meta` box may follow other boxes, so these two are read on, doubling, up to this bound.
 * At most this much is copied per upload, beside the file the multipart parser already holds.
 */
export const SNIFF_MAX_BYTES = 1024 * 1024;

const STREAM_SLICE_BYTES = 64 * 1024;

/**
 * An upload read once, front to back: a bounded head for sniffing, then every byte (the head
 * included) as one stream for the store. The file is already in memory (the multipart parser
 * holds it in chunks); chunks read ahead are kept by reference and nothing here copies more than
 * the head or one window (`range`), so an upload is never held twice.
 * The declared size is checked against the count as the bytes go by (a declared size can lie).
 */
export class UploadBody {
  readonly size: number;
  private readonly reader: ReadableStreamDefaultReader<Uint8Array>;
  /** Chunks read for the head and not handed to the stream yet. */
  private readonly pending: Buffer[] = [];
  private pendingBytes = 0;
  private ended = false;
  private streaming = false;
  private count = 0;
  /** The file's own fault that failed the stream (a store sees only its consequence). */
  failure: AppError | undefined;

  constructor(
    file: Blob,
    private readonly maxBytes: number,
  ) {
    this.size = file.size;
    this.reader = file.stream().getReader();
  }

  /** Bytes taken from the file so far. */
  get bytesRead(): number {
    return this.count;
  }

  /** The first n bytes (all of them when the file is shorter), copied into one buffer. */
  async head(n: number): Promise<Buffer> {
    while (this.pendingBytes < n && !this.ended) await this.pull();
    const all = this.pending.length === 1 ? this.pending[0]! : Buffer.concat(this.pending);
    return all.subarray(0, n);
  }

  /**
   * Bytes start..end of the file (fewer when it is shorter), copied into one buffer: what a
   * reader that must see the whole file (GIF's frames) reads, a window at a time. Read on from
   * the stream, as the head is: the chunks are kept by reference until the store streams them
   * (the parser holds the file anyway), and only the window is copied. Not `Blob.slice`: the
   * multipart parser's File (@whatwg-node) does not implement it, and every GIF whose frames lay
   * past the head failed as an unexpected error (found by the responsiveness guard).
   */
  async range(start: number, end: number): Promise<Buffer> {
    while (this.pendingBytes < end && !this.ended) await this.pull();
    const out = Buffer.allocUnsafe(Math.max(0, Math.min(end, this.pendingBytes) - start));
    let filled = 0;
    let at = 0;
    for (const chunk of this.pending) {
      const from = Math.max(start, at) - at;
      const to = Math.min(end, at + chunk.length) - at;
      at += chunk.length;
      if (to <= from) continue;
      chunk.copy(out, filled, from, to);
      filled += to - from;
      if (at >= end) break;
    }
    return out.subarray(0, filled);
  }

  /**
   * Every byte of the file, the head included, read on demand; fails on a size that lied. With
   * `stored`, the bytes to store instead: its pieces in order, each bytes of its own or a range
   * of the file cut from the chunks as they go by (the rest is still read, so a size that lied
   * still fails).
   */
  stream(stored?: StoredPlan): Readable {
    if (this.streaming) throw new Error('an upload body streams once');
    this.streaming = true;
    const self = this;
    const pieces = stored?.pieces ?? [{ from: 0, to: Number.POSITIVE_INFINITY }];
    async function* bytes(): AsyncGenerator<Buffer> {
      try {
        let p = 0; // the next piece (or the one a chunk is in the middle of)
        let pos = 0; // the file's offset of the next chunk's first byte
        for (;;) {
          if (self.pending.length === 0) {
            if (self.ended) break;
            await self.pull();
            continue;
          }
          const chunk = self.pending.shift()!;
          self.pendingBytes -= chunk.length;
          const chunkEnd = pos + chunk.length;
          while (p < pieces.length) {
            const piece = pieces[p]!;
            if (Buffer.isBuffer(piece)) {
              if (piece.length > 0) yield piece;
              p++;
              continue;
            }
            if (piece.from >= chunkEnd) break; // starts in a later chunk
            const start = Math.max(piece.from, pos) - pos;
            const end = Math.min(piece.to, chunkEnd) - pos;
            // In slices (views), so the store's backpressure holds however large a part is.
            for (let at = start; at < end; at += STREAM_SLICE_BYTES) {
              yield chunk.subarray(at, Math.min(end, at + STREAM_SLICE_BYTES));
            }
            if (piece.to > chunkEnd) break; // goes on in the next chunk
            p++;
          }
          pos = chunkEnd;
        }
        if (self.count !== self.size) {
          throw self.fail(badInput(`The file ended after ${self.count} of its ${self.size} bytes`));
        }
        // Bytes made after the last range (a plan ending with its own bytes).
        for (; p < pieces.length; p++) {
          const piece = pieces[p]!;
          if (Buffer.isBuffer(piece) && piece.length > 0) yield piece;
        }
      } finally {
        await self.close();
      }
    }
    return Readable.from(bytes(), { objectMode: false });
  }

  /** Lets go of the file (a refused upload is never read to the end). */
  async close(): Promise<void> {
    if (this.ended) return;
    this.ended = true;
    this.pending.length = 0;
    await this.reader.cancel().catch(() => {});
  }

  private async pull(): Promise<void> {
    const { done, value } = await this.reader.read();
    if (done) {
      this.ended = true;
      return;
    }
    const chunk = Buffer.from(value.buffer, value.byteOffset, value.byteLength);
    this.count += chunk.length;
    if (this.count > this.maxBytes) throw this.fail(payloadTooLarge(this.maxBytes));
    if (this.count > this.size) {
      throw this.fail(badInput(`The file is longer than its declared ${this.size} bytes`));
    }
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
  }

  private fail(err: AppError): AppError {
    this.failure = err;
    return err;
  }
}

/**
 * What the inspector reads: a size, the first n bytes on demand, and a window anywhere in the
 * file (for GIF's frames). An upload body is one; an object already in the bucket is another
 * (ranged GETs, images/bucket-import.ts).
 */
export type HeadSource = Pick<UploadBody, 'size' | 'head' | 'range'>;

export interface InspectedImage {
  format: ImageFormat;
  contentType: string;
  ext: string;
  width: number | null;
  height: number | null;
  /**
   * An animated WebP, APNG or AVIF sequence, told from the first read (`isAnimated`): recorded on
   * the row, so the catalog hands out its variants as the original (docs/architecture.md,
   * "Variants"). False for every other format.
   */
  animated: boolean;
}

type InspectConfig = Pick<Config, 'uploadAllowSvg' | 'uploadMaxPixels'>;

/** The format by magic bytes, refusing what is not accepted. */
function identify(bytes: Buffer, config: InspectConfig): ImageFormat {
  if (bytes.length === 0) throw badInput('The file is empty');
  // SVG is not even looked for unless it is allowed: the cheapest parser is the one never run.
  const format = detectFormat(bytes, { allowSvg: config.uploadAllowSvg });
  if (!format) {
    throw new AppError(
      'UNSUPPORTED_MEDIA_TYPE',
      `The file is not a ${acceptedInWords(config)} image (judged by its content, not its name)`,
    );
  }
  return format;
}

function described(
  format: ImageFormat,
  dims: Dimensions | null,
  config: InspectConfig,
  animated: boolean,
): InspectedImage {
  if (dims && dims.width * dims.height > config.uploadMaxPixels) {
    throw badInput(
      `The image is ${dims.width}×${dims.height} pixels; at most ${config.uploadMaxPixels} pixels are accepted`,
    );
  }
  const { contentType, ext } = FORMATS[format];
  return { format, contentType, ext, width: dims?.width ?? null, height: dims?.height ?? null, animated };
}

function headerError(err: unknown): unknown {
  return err instanceof ImageHeaderError ? badInput(err.message) : err;
}

/** Type by magic bytes, size from the header, both checked against the configured limits. */
export function inspectImage(bytes: Buffer, config: InspectConfig): InspectedImage {
  const format = identify(bytes, config);
  try {
    return described(format, readDimensions(format, bytes), config, isAnimated(format, bytes));
  } catch (err) {
    throw headerError(err);
  }
}

/**
 * Where AVIF's top-level `meta` box ends (all its header reader needs), or how many bytes must be
 * read to know; null when the boxes make no sense (the reader then says what is wrong).
 */
function avifMetaEnd(b: Buffer, fileSize: number): { end: number } | { need: number } | null {
  let at = 0;
  for (;;) {
    if (at >= fileSize) return null; // no meta box at all
    if (at + 16 > b.length) return { need: Math.min(at + 16, fileSize) };
    let size = b.readUInt32BE(at);
    if (size === 1) {
      const big = b.readBigUInt64BE(at + 8);
      if (big > BigInt(Number.MAX_SAFE_INTEGER)) return null;
      size = Number(big);
    } else if (size === 0) {
      size = fileSize - at; // to the end of the file
    }
    if (size < 8) return null;
    if (b.toString('latin1', at + 4, at + 8) === 'meta') {
      return at + size <= b.length ? { end: at + size } : { need: at + size };
    }
    at += size;
  }
}

/**
 * The EXIF orientation of a PNG or WebP larger than its head: its EXIF chunk may lie past the head
 * (a WebP's comes after the image data, so near the end), so the chunks are walked (ExifChunkWalk)
 * reading on in windows of at most SNIFF_MAX_BYTES, as GIF's frames are; only the chunk headers
 * and the EXIF chunk are looked at.
 */
async function exifOrientation(format: ExifChunkFormat, head: Buffer, body: HeadSource): Promise<number> {
  const walk = new ExifChunkWalk(format, head, body.size);
  let need = walk.walk(head, 0);
  while (need) {
    const to = Math.min(body.size, Math.max(need.to, need.from + SNIFF_MAX_BYTES));
    const window = await body.range(need.from, to);
    // A window shorter than asked for: the file is shorter than its size said.
    if (window.length < need.to - need.from) throw new ImageHeaderError(format, 'truncated');
    need = walk.walk(window, need.from);
  }
  return walk.orientation;
}

/**
 * Type and size from a bounded head of the upload. A file that fits in the first read is judged
 * exactly as a whole; for a larger one, each header reader gets what it needs, which ends where
 * the file does not: the WebP reader checks the RIFF size against its buffer (so it is checked
 * against the file's size here, and the reader gets a copy of the head whose RIFF size is the
 * head's), and the AVIF reader walks the top-level boxes to the end of its buffer (so it gets the
 * head cut after the `meta` box).
 */
export async function inspectUpload(body: HeadSource, config: InspectConfig): Promise<InspectedImage> {
  const size = body.size;
  const max = Math.min(size, SNIFF_MAX_BYTES);
  let head = await body.head(Math.min(size, SNIFF_FIRST_BYTES));
  if (head.length >= size) return inspectImage(head, config);
  const format = identify(head, config);
  // From the first read, as the whole-file path above: a WebP's VP8X flags and an AVIF's ftyp
  // open the file, and an APNG's acTL comes before its image data (so within the first 64 KB
  // unless other chunks fill them; the renderer's own check is the safety net for such a file:
  // docs/architecture.md, "Variants").
  const animated = isAnimated(format, head);
  const notWithin = (err?: ImageHeaderError) =>
    badInput(
      err
        ? `${err.message} in the first ${head.length} bytes (a header is not looked for further in)`
        : `The ${FORMATS[format].label} header is not within the first ${SNIFF_MAX_BYTES} bytes`,
    );

  try {
    switch (format) {
      case 'webp': {
        const view = Buffer.from(head.subarray(0, Math.min(head.length, 4096)));
        // RIFF size covers the whole file: a cut-off upload still shows, against the real size.
        if (view.length >= 8 && view.readUInt32LE(4) + 8 <= size) view.writeUInt32LE(view.length - 8, 4);
        const stored = readStoredDimensions(format, view);
        return described(format, turned(stored, await exifOrientation(format, head, body)), config, animated);
      }
      case 'png': {
        const stored = readStoredDimensions(format, head);
        return described(format, turned(stored, await exifOrientation(format, head, body)), config, animated);
      }
      case 'avif': {
        for (;;) {
          const at = avifMetaEnd(head, size);
          if (!at) return described(format, readDimensions(format, head), config, animated);
          if ('end' in at)
            return described(format, readDimensions(format, head.subarray(0, at.end)), config, animated);
          if (at.need > size) throw new ImageHeaderError('avif', 'truncated');
          if (at.need > max) throw notWithin();
          head = await body.head(Math.max(at.need, Math.min(max, head.length * 2)));
        }
      }
      case 'gif': {
        // libvips grows a GIF's canvas to fit its frames, which may lie anywhere in the file: the
        // walk goes through all of it, one window (at most SNIFF_MAX_BYTES) at a time.
        const walk = new GifWalk();
        let need = walk.walk(head, 0, size);
        while (need !== null) {
          const window = await body.range(need, Math.min(size, need + SNIFF_MAX_BYTES));
          const next = walk.walk(window, need, size);
          // A window that moved the walk on not at all is shorter than the size said.
          if (next === need) throw new ImageHeaderError('gif', 'truncated');
          need = next;
        }
        const dims = walk.dimensions();
        if (!(dims.width >= 1) || !(dims.height >= 1))
          throw new ImageHeaderError('gif', 'malformed (zero size)');
        return described(format, dims, config, animated);
      }
      case 'jpeg': {
        for (;;) {
          try {
            return described(format, readDimensions(format, head), config, animated);
          } catch (err) {
            // The frame header may simply lie beyond this head: read on, up to the bound.
            if (!(err instanceof ImageHeaderError)) throw err;
            if (head.length >= max) throw head.length < size ? notWithin(err) : err;
            head = await body.head(Math.min(max, head.length * 2));
          }
        }
      }
      default:
        return described(format, readDimensions(format, head), config, animated);
    }
  } catch (err) {
    throw headerError(err);
  }
}

/**
 * `u/<owner>/<id>.<ext>`: immutable (a new upload is a new id) and built only from values the
 * server chose. The owner is escaped so no viewer id can form a path segment like `..`.
 */
export function objectKeyFor(ownerId: string, id: string, ext: string): string {
  const owner = encodeURIComponent(ownerId).replace(/^\.+$/, (dots) => '%2E'.repeat(dots.length));
  return `${UPLOAD_KEY_PREFIX}${owner}/${id}.${ext}`;
}

/** The extensions uploads write (`FORMATS`' `ext`: jpg, png, gif, webp, avif, svg). */
const UPLOAD_EXTS: ReadonlySet<string> = new Set(Object.values(FORMATS).map((f) => f.ext));

/** An image id's length (a UUID: 36 characters). */
const UPLOAD_ID_LENGTH = 36;

/**
 * Whether `key` is exactly what `objectKeyFor` writes for an upload: `u/<escaped owner>/<id>.<ext>`
 * with `<id>` a UUID as `randomUUID` makes it (lower-case, version 4, RFC 4122 variant), `<ext>`
 * one of `FORMATS`' extensions and the owner segment in the one form `objectKeyFor` escapes it
 * to (decoded and escaped again, it must give the same key). Any other key under `u/` (one an
 * operator's bucket held before Signet, `u/legacy/avatar.png`) is not Signet's: the orphan
 * sweep never deletes it and `signet import` reports it as `reserved-prefix`.
 *
 * Linear on any input: indexOf, one decode, and fixed-length patterns only (`isImageId`'s on
 * the 36 characters of the id, `objectKeyFor`'s own).
 */
export function isUploadKey(key: string): boolean {
  if (!key.startsWith(UPLOAD_KEY_PREFIX)) return false;
  const ownerStart = UPLOAD_KEY_PREFIX.length;
  const slash = key.indexOf('/', ownerStart);
  if (slash <= ownerStart) return false; // no owner segment, or an empty one
  const idStart = slash + 1;
  const dot = idStart + UPLOAD_ID_LENGTH;
  if (key.length <= dot + 1 || key.charCodeAt(dot) !== 0x2e) return false;
  const id = key.slice(idStart, dot);
  const ext = key.slice(dot + 1); // a listed extension holds no `/`, so nothing follows the file
  if (!isUploadId(id) || !UPLOAD_EXTS.has(ext)) return false;
  try {
    const owner = decodeURIComponent(key.slice(ownerStart, slash));
    return owner.length > 0 && objectKeyFor(owner, id, ext) === key;
  } catch {
    // A malformed escape (`%zz`, `%C0`) or a lone surrogate: objectKeyFor never writes those.
    return false;
  }
}

/**
 * `randomUUID`'s form: an image id (`isImageId`) in lower case, version 4, RFC 4122 variant
 * (`xxxxxxxx-xxxx-4xxx-[89ab]xxx-xxxxxxxxxxxx`).
 */
function isUploadId(id: string): boolean {
  return isImageId(id) && id === id.toLowerCase() && id[14] === '4' && '89ab'.includes(id[19]!);
}

/**
 * The optional per-viewer quota over live images (deleted ones free their share). Checked before
 * the put, not atomically with the insert: uploads of one viewer running at the same time may
 * each pass, so the quota can be overshot by at most the per-viewer concurrency minus one.
 */
async function checkQuota(deps: UploadDeps, ownerId: string, bytes: number): Promise<void> {
  const { uploadQuotaBytes: quotaBytes, uploadQuotaFiles: quotaFiles } = deps.config;
  if (quotaBytes === undefined && quotaFiles === undefined) return;
  const used = await quotaUsage(deps.images, ownerId);
  if (quotaFiles !== undefined && used.files >= quotaFiles) {
    // FORBIDDEN rather than RATE_LIMITED: waiting frees nothing (only deleting an image does),
    // and a client honouring Retry-After would retry for ever.
    throw forbidden(
      `The upload quota of ${quotaFiles} ${quotaFiles === 1 ? 'image' : 'images'} is used up; delete an image to upload another`,
      { details: { quotaFiles } },
    );
  }
  if (quotaBytes !== undefined && used.bytes + bytes > quotaBytes) {
    // PAYLOAD_TOO_LARGE: this file is too large for what is left, and a smaller one may still
    // fit. maxBytes says how much is left, in the shape the per-file limit already uses.
    const left = Math.max(0, quotaBytes - used.bytes);
    throw payloadTooLarge(
      left,
      `The file is ${bytesInWords(bytes)}, more than what is left of the upload quota: ${bytesInWords(left)} of ${bytesInWords(quotaBytes)}`,
    );
  }
}

/**
 * What of an upload is stored when UPLOAD_STRIP_METADATA is on, per format (docs/architecture.md,
 * "The upload pipeline"). An AVIF's EXIF and XMP items are blanked in place (their offsets stay);
 * SVG is stored as it came.
 */
const STRIPPED: Partial<Record<ImageFormat, (src: ByteSource) => Promise<StoredPlan>>> = {
  jpeg: strippedJpeg,
  png: strippedPng,
  gif: strippedGif,
  avif: strippedAvif,
  webp: strippedWebp,
};

/**
 * Stores an upload with no partial state: the object first, then the row. A failed put leaves
 * no row (and the driver removes whatever the put may still have stored); a failed insert
 * deletes the object it just wrote (and says loudly when it cannot).
 */
export async function uploadImage(
  deps: UploadDeps,
  ownerId: string,
  file: Blob,
  visibility: ImageVisibility = 'private',
): Promise<ImageRow> {
  const { config, storage, images, clock, logger } = deps;
  if (file.size > config.uploadMaxBytes) throw payloadTooLarge(config.uploadMaxBytes);
  if (file.size === 0) throw badInput('The file is empty');
  const body = new UploadBody(file, config.uploadMaxBytes);
  let image: InspectedImage;
  // What is stored: the file as it came (SVG), or the image without its metadata (losslessly).
  let stored: StoredPlan | undefined;
  let size = body.size;
  try {
    image = await inspectUpload(body, config);
    const strip = config.uploadStripMetadata ? STRIPPED[image.format] : undefined;
    if (strip) {
      stored = await strip(body).catch((err) => {
        throw headerError(err);
      });
      size = storedSize(stored);
    }
    await checkQuota(deps, ownerId, size);
  } catch (err) {
    await body.close();
    throw err;
  }
  const id = randomUUID();
  const key = objectKeyFor(ownerId, id, image.ext);

  let etag: string;
  try {
    ({ etag } = await storage.put(key, body.stream(stored), image.contentType, size));
  } catch (err) {
    // No clean-up here: a delete sent now could overtake a put still in flight. The driver
    // deletes once its request has settled.
    if (body.failure) throw body.failure;
    throw (
      fromStorageRequest(
        err,
        'Object storage is unavailable; the image was not stored. Try again shortly.',
      ) ?? err
    );
  }

  try {
    const row = await images.insert({
      id,
      ownerId,
      objectKey: key,
      contentType: image.contentType,
      byteSize: size,
      width: image.width,
      height: image.height,
      animated: image.animated,
      etag,
      visibility,
      // The bucket the object went to; other regions sign this one's URLs until theirs has it.
      homeRegion: config.regions?.self ?? null,
      createdAt: new Date(clock.now()),
    });
    logger.info(
      {
        imageId: id,
        key,
        bytes: size,
        contentType: image.contentType,
        ...(stored && { uploadedBytes: body.size }),
      },
      'image uploaded',
    );
    // Not awaited: decoding never holds up (or fails) the upload, and it reads the stored object
    // once this request has let go of the multipart body. docs/architecture.md, "The upload pipeline".
    deps.placeholders.enqueue(row);
    // Likewise not awaited (it never throws): the job renders every preset on a worker; until it
    // has, a preset's URL is the original's. docs/architecture.md, "Variants on s3".
    if (deps.variants.derivedObjects) void deps.jobs.enqueueVariants(row.id);
    return row;
  } catch (err) {
    try {
      await storage.delete(key);
    } catch (cleanupErr) {
      logger.error(
        { key, imageId: id, err: (err as Error).message, cleanupErr: (cleanupErr as Error).message },
        `ORPHANED OBJECT: the image row could not be written and deleting object "${key}" failed; the orphan sweep removes it once it is older than ORPHAN_SWEEP_GRACE_SECONDS`,
      );
    }
    throw fromDatabase(err) ?? err;
  }
}
