import { crc32 } from '../crc32.js';
import { chunkExifOrientation, EXIF_MAX_BYTES } from './dimensions.js';
import { ImageHeaderError } from './header-error.js';
import { orientationOnlyTiff } from './jpeg-metadata.js';
import { PlanBuilder, type StoredPlan } from './stored-bytes.js';
import { type ByteSource, nextTurn, Pacer, Windowed } from './windowed-source.js';

/**
 * What of a PNG upload is stored when UPLOAD_STRIP_METADATA is on (docs/architecture.md, "The
 * upload pipeline", step 2; README, "What an original keeps"): the image as it was encoded, without what describes where, when
 * and with what it was made. Lossless: every kept chunk is copied byte for byte, its CRC included.
 *
 * Kept, in their order: the critical chunks (IHDR, PLTE, IDAT, IEND) and the ancillary chunks a
 * decoder needs or that change how the pixels look (KEPT_ANCILLARY: transparency, colour space
 * and ICC profile, gamma, significant bits, pixel aspect, background, HDR colour and light
 * levels, and APNG's animation chunks, so an APNG still plays).
 * Dropped: eXIf (GPS, times, camera serials), tEXt, zTXt and iTXt (comments, software, times,
 * and XMP, which libvips and Photoshop write as an iTXt), tIME, every other ancillary chunk (known
 * ones such as sPLT or hIST change nothing shown; unknown ones, private or not, may carry
 * anything), and whatever follows IEND.
 * An unknown critical chunk (first letter upper-case) is kept: by the PNG specification a
 * decoder that does not know it must not show the image, so it cannot be dropped without
 * changing what the file is, and the file stays the client's as it was, as a corrupt JPEG does
 * (the ThumbHash marks it undecodable).
 * An EXIF orientation other than 1 (the one libvips applies: the first eXIf before IDAT, as
 * ExifChunkWalk in uploads/dimensions.ts reads it) is kept, in an eXIf chunk holding nothing else
 * in the place of that chunk, so the image is shown as the upload recorded its size.
 *
 * Malformed structure (a chunk running past the end of the file, a length over 2^31-1, a type
 * that is not four letters, no IDAT, no IEND) is an ImageHeaderError: the upload is refused
 * (BAD_USER_INPUT), never stored with its metadata. CRCs are not checked (decoders' business).
 */

/** Ancillary chunks kept (the first letter of an ancillary chunk's type is lower-case). */
const KEPT_ANCILLARY: ReadonlySet<string> = new Set([
  'tRNS', // transparency
  'iCCP', // ICC profile
  'sRGB',
  'gAMA',
  'cHRM',
  'sBIT',
  'pHYs', // pixel aspect ratio
  'bKGD',
  'acTL', // APNG: animation control, frame control, frame data
  'fcTL',
  'fdAT',
  'cICP', // coding-independent code points (HDR), PNG third edition
  'mDCV', // mastering display colour volume, and its earlier spelling
  'mDCv',
  'cLLI', // content light level, and its earlier spelling
  'cLLi',
]);

/**
 * Chunks walked at most. A PNG has a handful besides its image data, which encoders split into
 * chunks of 8 to 64 KB (libpng: 8 KB, so a 1 GB PNG has some 130,000); an APNG has two or so per
 * frame. Every chunk is at least 12 bytes: without a bound, 20 MB of empty ones is 1.7 million
 * steps and a plan of as many pieces.
 */
export const PNG_MAX_CHUNKS = 1 << 18;

const SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

const isLetter = (c: number) => (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);

/**
 * The bytes to store for a PNG upload: the signature, then its kept chunks through IEND. The
 * header reader (uploads/dimensions.ts) has checked the signature and IHDR.
 */
export async function strippedPng(src: ByteSource): Promise<StoredPlan> {
  const file = new Windowed(src);
  const sig = await file.at(0, 8);
  if (!sig?.b.subarray(sig.i, sig.i + 8).equals(SIGNATURE))
    throw new ImageHeaderError('png', 'malformed (signature)');
  const plan = new PlanBuilder();
  plan.keep(0, 8);
  const pacer = new Pacer();
  let at = 8;
  let imageData = false;
  let exifSeen = false;
  for (let chunks = 0; chunks < PNG_MAX_CHUNKS; chunks++) {
    const h = file.peek(at, 8) ?? (await file.at(at, 8));
    if (!h) throw new ImageHeaderError('png', 'truncated (no IEND chunk)');
    const length = h.b.readUInt32BE(h.i);
    if (length > 0x7fffffff) throw new ImageHeaderError('png', 'malformed (chunk length)');
    for (let k = 4; k < 8; k++) {
      if (!isLetter(h.b[h.i + k]!)) throw new ImageHeaderError('png', 'malformed (chunk type)');
    }
    const type = h.b.toString('latin1', h.i + 4, h.i + 8);
    const end = at + 12 + length;
    if (end > src.size) throw new ImageHeaderError('png', `truncated (the ${type} chunk runs past the end)`);
    const critical = (h.b[h.i + 4]! & 0x20) === 0;
    if (type === 'eXIf') {
      // libvips applies the first eXIf before the image data only (ExifChunkWalk).
      if (!exifSeen && !imageData) {
        exifSeen = true;
        const orientation = await orientationOf(file, at + 8, length);
        if (orientation !== 1) plan.add(chunk('eXIf', orientationOnlyTiff(orientation)));
      }
    } else if (critical || KEPT_ANCILLARY.has(type)) {
      plan.keep(at, end);
    }
    if (type === 'IDAT') imageData = true;
    if (type === 'IEND') {
      if (!imageData) throw new ImageHeaderError('png', 'malformed (no IDAT before IEND)');
      return plan.plan(); // what follows IEND is not the image's
    }
    at = end;
    if (pacer.due(at)) await nextTurn();
  }
  throw new ImageHeaderError('png', `malformed (no IEND in ${PNG_MAX_CHUNKS} chunks)`);
}

/** The orientation in the eXIf chunk whose data is at `data`, as ExifChunkWalk reads it. */
async function orientationOf(file: Windowed, data: number, length: number): Promise<number> {
  const n = Math.min(length, EXIF_MAX_BYTES);
  const w = await file.at(data, n);
  return w ? chunkExifOrientation(w.b.subarray(w.i, w.i + n), 'png') : 1; // w: the chunk is in the file
}

/** A PNG chunk of `type` and `data`, with its CRC. */
function chunk(type: string, data: Buffer): Buffer {
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  out.write(type, 4, 'latin1');
  data.copy(out, 8);
  out.writeUInt32BE(crc32(out.subarray(4, 8 + data.length)), 8 + data.length);
  return out;
}
