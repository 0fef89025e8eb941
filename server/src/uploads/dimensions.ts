import { crc32 } from '../crc32.js';
import { avifSize } from './avif.js';
import { type Dimensions, ImageHeaderError } from './header-error.js';
import { type ImageFormat, isXmlSpace, skipXmlSpace, svgPrefix, svgRootAt } from './sniff.js';

export { type Dimensions, ImageHeaderError };

/**
 * Width and height as the image is displayed, read from the header alone (nothing is decoded).
 * SVG may have none (null). Throws ImageHeaderError when the header is truncated or malformed.
 */
export function readDimensions(format: ImageFormat, b: Buffer): Dimensions | null {
  return nonZero(format, READERS[format](b));
}

/**
 * A PNG's or WebP's size as stored, before its EXIF orientation, from a head of the file (the
 * orientation lies in a chunk that may be past it: see ExifChunkWalk, and `turned`).
 */
export function readStoredDimensions(format: ExifChunkFormat, b: Buffer): Dimensions {
  return nonZero(format, format === 'png' ? pngSize(b) : webpSize(b));
}

function nonZero<D extends Dimensions | null>(format: ImageFormat, d: D): D {
  if (d && (!(d.width >= 1) || !(d.height >= 1))) throw new ImageHeaderError(format, 'malformed (zero size)');
  return d;
}

/** An EXIF orientation of 5 to 8 turns the image a quarter: it is shown with its sides swapped. */
export function turned(d: Dimensions, orientation: number): Dimensions {
  return orientation >= 5 ? { width: d.height, height: d.width } : d;
}

/** The whole file is at hand: its EXIF chunk, if any, is in it. */
function wholeFileTurned(format: ExifChunkFormat, b: Buffer): Dimensions {
  const d = format === 'png' ? pngSize(b) : webpSize(b);
  const walk = new ExifChunkWalk(format, b, b.length);
  walk.walk(b, 0); // never asks for more: the walk stops where the file does
  return turned(d, walk.orientation);
}

const READERS: Record<ImageFormat, (b: Buffer) => Dimensions | null> = {
  png: (b) => wholeFileTurned('png', b),
  gif: gifSize,
  jpeg: jpegSize,
  webp: (b) => wholeFileTurned('webp', b),
  avif: avifSize,
  svg: svgSize,
};

/** Signature, then IHDR (length 13) with a CRC that must match, as every decoder checks. */
function pngSize(b: Buffer): Dimensions {
  if (b.length < 33) throw new ImageHeaderError('png', 'truncated');
  if (b.readUInt32BE(8) !== 13 || b.toString('latin1', 12, 16) !== 'IHDR') {
    throw new ImageHeaderError('png', 'malformed (IHDR must come first)');
  }
  if (crc32(b.subarray(12, 29)) !== b.readUInt32BE(29))
    throw new ImageHeaderError('png', 'corrupt (bad CRC)');
  const width = b.readUInt32BE(16);
  const height = b.readUInt32BE(20);
  if (width > 0x7fffffff || height > 0x7fffffff) throw new ImageHeaderError('png', 'malformed (size)');
  return { width, height };
}

/** A whole GIF's size: see GifWalk. */
function gifSize(b: Buffer): Dimensions {
  const walk = new GifWalk();
  walk.walk(b, 0, b.length); // the whole file is at hand: the walk ends
  return walk.dimensions();
}

/** The bytes of the colour table a GIF's screen or frame descriptor flags (`packed`), 0 for none. */
export const gifColourTableBytes = (packed: number) => (packed & 0x80 ? 3 << ((packed & 7) + 1) : 0);

/**
 * Blocks walked in one GIF at most (extensions, frames, and the sub-blocks of their data). An
 * encoder writes data in sub-blocks of 255 bytes, so this covers some 260 MB of them; sub-blocks
 * of one byte (a hostile file) are refused after 2 MB rather than walked a byte pair at a time.
 */
export const GIF_MAX_BLOCKS = 1 << 20;

/**
 * A GIF's size as libvips decodes it: the logical screen grown to hold its frames. The screen
 * alone is no bound: libvips grows the canvas to fit a frame, so a 1×1 screen with a 20,000 ×
 * 20,000 frame decodes to 400 MP (libvips 8.18 grows it for the first frame; every frame counts
 * here, to be safe whatever the decoder). Frames may sit anywhere in the file, so the walk goes
 * through every block, skipping data by its sub-block lengths: linear, bounded by GIF_MAX_BLOCKS.
 * It is fed the file in windows (docs/architecture.md, "The upload pipeline") and says which
 * offset it needs next; the file ending before the trailer ends it (a cut GIF shows the frames
 * it has).
 */
export class GifWalk {
  private width = 0;
  private height = 0;
  private at = 0;
  private state: 'header' | 'block' | 'data' | 'done' = 'header';
  private blocks = 0;

  /**
   * Walks the blocks of b, the file's bytes from offset `start`, as far as they go. Returns the
   * offset of the next byte the walk needs, or null once it has seen every frame.
   */
  walk(b: Buffer, start: number, fileSize: number): number | null {
    const end = start + b.length;
    const u16 = (at: number) => b.readUInt16LE(at - start);
    for (;;) {
      if (this.state === 'done') return null;
      if (this.state === 'header') {
        if (fileSize < 13) throw new ImageHeaderError('gif', 'truncated');
        if (this.at + 13 > end || this.at < start) return this.at;
        this.width = u16(6);
        this.height = u16(8);
        const packed = b[10 - start]!;
        // The global colour table, when there is one: 3 × 2^(n+1) bytes.
        this.at = 13 + gifColourTableBytes(packed);
        this.state = 'block';
        continue;
      }
      if (this.at >= fileSize) {
        this.state = 'done';
        continue;
      }
      if (this.at >= end || this.at < start) return this.at;
      if (++this.blocks > GIF_MAX_BLOCKS) {
        throw new ImageHeaderError('gif', `malformed (more than ${GIF_MAX_BLOCKS} blocks)`);
      }
      const byte = b[this.at - start]!;
      if (this.state === 'data') {
        // A sub-block: its length, then that many bytes; length 0 ends the chain.
        this.at += 1 + byte;
        if (byte === 0) this.state = 'block';
      } else if (byte === 0x3b) {
        this.state = 'done'; // the trailer
      } else if (byte === 0x21) {
        // An extension: introducer and label, then sub-blocks.
        if (this.at + 2 > fileSize) this.state = 'done';
        else if (this.at + 2 > end) return this.at;
        else {
          this.at += 2;
          this.state = 'data';
        }
      } else if (byte === 0x2c) {
        // An image descriptor: left, top, width, height, packed (a local colour table), then the
        // LZW minimum code size and the data's sub-blocks. A cut descriptor is no frame.
        if (this.at + 10 > fileSize) this.state = 'done';
        else if (this.at + 10 > end) return this.at;
        else {
          this.width = Math.max(this.width, u16(this.at + 1) + u16(this.at + 5));
          this.height = Math.max(this.height, u16(this.at + 3) + u16(this.at + 7));
          const packed = b[this.at + 9 - start]!;
          this.at += 10 + gifColourTableBytes(packed) + 1;
          this.state = 'data';
        }
      } else {
        throw new ImageHeaderError('gif', `malformed (unknown block 0x${byte.toString(16)})`);
      }
    }
  }

  /** The screen grown to hold every frame seen. */
  dimensions(): Dimensions {
    if (this.state !== 'done') throw new ImageHeaderError('gif', 'truncated');
    return { width: this.width, height: this.height };
  }
}

// Start-of-frame markers (C4, C8 and CC are other tables sharing the range).
export const isSof = (m: number) => m >= 0xc0 && m <= 0xcf && m !== 0xc4 && m !== 0xc8 && m !== 0xcc;

/**
 * Segments walked, and fill bytes skipped, before the frame header at most. Real files have a
 * few dozen segments (a large ICC profile or XMP packet is split into some more); without a
 * bound, 20 MB of two-byte markers is millions of steps per upload.
 */
const JPEG_MAX_SEGMENTS = 4096;
const JPEG_MAX_FILL_BYTES = 64 * 1024;

/**
 * Walks the marker segments up to the first frame header. An EXIF orientation of 5 to 8 turns
 * the image a quarter, so browsers show it with width and height swapped.
 */
function jpegSize(b: Buffer): Dimensions {
  let at = 2;
  let orientation = 1;
  let segments = 0;
  let fill = 0;
  while (at < b.length) {
    if (b[at] !== 0xff) throw new ImageHeaderError('jpeg', 'malformed (marker expected)');
    if (++segments > JPEG_MAX_SEGMENTS) {
      throw new ImageHeaderError('jpeg', `malformed (no frame header in ${JPEG_MAX_SEGMENTS} segments)`);
    }
    // Fill bytes: every 0xff after the first, bounded in total so a run of them is not walked to the end.
    const run = at + 1;
    const fillLimit = Math.min(b.length, run + JPEG_MAX_FILL_BYTES - fill);
    at = run;
    while (at < fillLimit && b[at] === 0xff) at++;
    fill += at - run;
    if (at < b.length && b[at] === 0xff)
      throw new ImageHeaderError('jpeg', 'malformed (too many fill bytes)');
    if (at >= b.length) break;
    const marker = b[at++]!;
    if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd8)) continue; // no length
    if (marker === 0xd9 || marker === 0xda) throw new ImageHeaderError('jpeg', 'malformed (no frame header)');
    if (at + 2 > b.length) break;
    const len = b.readUInt16BE(at);
    if (len < 2) throw new ImageHeaderError('jpeg', 'malformed (segment length)');
    if (at + len > b.length) break;
    if (isSof(marker)) {
      if (len < 8) throw new ImageHeaderError('jpeg', 'malformed (frame header)');
      const height = b.readUInt16BE(at + 3);
      const width = b.readUInt16BE(at + 5);
      return turned({ width, height }, orientation);
    }
    if (marker === 0xe1) orientation = exifOrientation(b.subarray(at + 2, at + len)) ?? orientation;
    at += len;
  }
  throw new ImageHeaderError('jpeg', 'truncated');
}

/** Tag 0x0112 of IFD0 in an APP1 `Exif` segment; undefined when absent or unreadable. */
export function exifOrientation(seg: Buffer): number | undefined {
  if (seg.length < 14 || seg.toString('latin1', 0, 6) !== 'Exif\0\0') return undefined;
  return tiffOrientation(seg.subarray(6));
}

/**
 * The orientation in a PNG `eXIf` or a WebP `EXIF` chunk's data, as libvips takes it: a bare TIFF
 * header (PNG: libpng drops one starting `Exif\0\0`), or for WebP also one after `Exif\0\0`;
 * 1 when absent or out of range. `exif` is at most the chunk's first EXIF_MAX_BYTES.
 */
export function chunkExifOrientation(exif: Buffer, format: 'png' | 'webp'): number {
  const prefixed = format === 'webp' && exif.length >= 6 && exif.toString('latin1', 0, 6) === 'Exif\0\0';
  return tiffOrientation(prefixed ? exif.subarray(6) : exif) ?? 1;
}

/**
 * Tag 0x0112 of IFD0 in EXIF data starting at its TIFF header (`II`/`MM`, 42, IFD0's offset);
 * undefined when absent, out of range (libvips then takes 1) or not within `t`.
 */
function tiffOrientation(t: Buffer): number | undefined {
  if (t.length < 8) return undefined;
  const order = t.toString('latin1', 0, 2);
  if (order !== 'II' && order !== 'MM') return undefined;
  const le = order === 'II';
  const u16 = (o: number) => (le ? t.readUInt16LE(o) : t.readUInt16BE(o));
  const u32 = (o: number) => (le ? t.readUInt32LE(o) : t.readUInt32BE(o));
  if (u16(2) !== 42) return undefined;
  const ifd = u32(4);
  if (ifd + 2 > t.length) return undefined;
  const count = u16(ifd);
  for (let i = 0; i < count; i++) {
    const entry = ifd + 2 + i * 12;
    if (entry + 12 > t.length) return undefined;
    if (u16(entry) === 0x0112) {
      const v = u16(entry + 8);
      return v >= 1 && v <= 8 ? v : undefined;
    }
  }
  return undefined;
}

/** The formats whose EXIF orientation is in a chunk of its own, anywhere among the others. */
export type ExifChunkFormat = 'png' | 'webp';

/**
 * Chunks looked at per file at most. A still PNG or WebP has a handful; an animated WebP has one
 * per frame. Every chunk is at least 8 bytes, so 20 MB of empty ones would be millions of steps.
 */
export const EXIF_WALK_MAX_CHUNKS = 1 << 16;
/**
 * Bytes of an EXIF chunk read at most: what a JPEG APP1 segment can hold. IFD0 (the orientation)
 * comes right after the TIFF header in real files; one placed further in is taken as absent.
 */
export const EXIF_MAX_BYTES = 64 * 1024;

/**
 * Finds the EXIF orientation of a PNG or WebP as libvips (so sharp's `autoOrient`, the renderer
 * and the ThumbHash) finds it, measured against sharp 0.35 / libvips 8.18:
 * - PNG: the first `eXIf` chunk before `IDAT` (libvips reads the chunks before the image data
 *   only), its data a bare TIFF header (libpng drops one starting `Exif\0\0`). Its CRC is not
 *   checked: libpng is told to use ancillary chunks with a bad CRC, and does.
 * - WebP: only an extended file (`VP8X`) with its EXIF flag (0x08) set, then the first `EXIF`
 *   chunk wherever it is (the container spec puts it after the image data, so usually at the end
 *   of the file), its data a TIFF header with or without `Exif\0\0` (libvips accepts both).
 * Like GifWalk it is fed the file in windows and says which bytes it needs next, skipping every
 * other chunk by its length: linear, bounded by EXIF_WALK_MAX_CHUNKS. A chunk cut by the end of
 * the file (or of the RIFF) ends the walk with what it has found: the decoder fails on that file.
 */
export class ExifChunkWalk {
  private at: number;
  private readonly end: number;
  private chunks = 0;
  private done = false;
  /** 1 (as stored) until an EXIF chunk says otherwise. */
  orientation = 1;

  /** `head`: the file's first bytes, at least as many as its size reader needed. */
  constructor(
    private readonly format: ExifChunkFormat,
    head: Buffer,
    fileSize: number,
  ) {
    if (format === 'png') {
      this.at = 33; // after the signature and IHDR
      this.end = fileSize;
      return;
    }
    const extended = head.length >= 30 && head.toString('latin1', 12, 16) === 'VP8X';
    // libwebp's demuxer, as libvips uses it, yields the EXIF chunk only when the flag says so.
    this.done = !extended || (head[20]! & 0x08) === 0;
    const vp8x = extended ? head.readUInt32LE(16) : 0;
    this.at = 20 + vp8x + (vp8x & 1);
    // Chunks past the RIFF size are not the file's, as the demuxer sees it.
    this.end = Math.min(fileSize, head.length >= 8 ? head.readUInt32LE(4) + 8 : 0);
  }

  /**
   * Walks the chunks of b, the file's bytes from offset `start`, as far as they go. Returns the
   * bytes the walk needs next (from..to, to within the file), or null once it is done.
   */
  walk(b: Buffer, start: number): { from: number; to: number } | null {
    const end = start + b.length;
    const png = this.format === 'png';
    while (!this.done) {
      if (this.at + 8 > this.end) break; // no further chunk
      if (this.at < start || this.at + 8 > end) return { from: this.at, to: this.at + 8 };
      if (++this.chunks > EXIF_WALK_MAX_CHUNKS) {
        throw new ImageHeaderError(this.format, `malformed (more than ${EXIF_WALK_MAX_CHUNKS} chunks)`);
      }
      const o = this.at - start;
      const type = b.toString('latin1', png ? o + 4 : o, png ? o + 8 : o + 4);
      const length = png ? b.readUInt32BE(o) : b.readUInt32LE(o + 4);
      const data = this.at + 8;
      if (png && (type === 'IDAT' || type === 'IEND')) break;
      if (type === (png ? 'eXIf' : 'EXIF')) {
        if (data + length > this.end) break; // cut short
        const to = data + Math.min(length, EXIF_MAX_BYTES);
        if (to > end) return { from: this.at, to };
        this.orientation = chunkExifOrientation(b.subarray(data - start, to - start), png ? 'png' : 'webp');
        break; // the first one counts
      }
      // PNG: data, then a 4-byte CRC; RIFF: data padded to an even length.
      this.at = data + length + (png ? 4 : length & 1);
    }
    this.done = true;
    return null;
  }
}

/** RIFF header, then the first chunk: lossy VP8, lossless VP8L or extended VP8X. */
function webpSize(b: Buffer): Dimensions {
  if (b.length < 30 && !(b.length >= 25 && b.toString('latin1', 12, 16) === 'VP8L')) {
    throw new ImageHeaderError('webp', 'truncated');
  }
  // The RIFF size covers the whole file, so a cut-off upload shows here for free.
  if (b.readUInt32LE(4) + 8 > b.length) throw new ImageHeaderError('webp', 'truncated (RIFF size)');
  const chunk = b.toString('latin1', 12, 16);
  if (chunk === 'VP8 ') {
    if ((b[20]! & 1) !== 0 || b[23] !== 0x9d || b[24] !== 0x01 || b[25] !== 0x2a) {
      throw new ImageHeaderError('webp', 'malformed (VP8 key frame)');
    }
    return { width: b.readUInt16LE(26) & 0x3fff, height: b.readUInt16LE(28) & 0x3fff };
  }
  if (chunk === 'VP8L') {
    const bits = b.readUInt32LE(21);
    if (b[20] !== 0x2f || bits >>> 29 !== 0) throw new ImageHeaderError('webp', 'malformed (VP8L header)');
    return { width: (bits & 0x3fff) + 1, height: ((bits >>> 14) & 0x3fff) + 1 };
  }
  if (chunk === 'VP8X') {
    return { width: b.readUIntLE(24, 3) + 1, height: b.readUIntLE(27, 3) + 1 };
  }
  throw new ImageHeaderError('webp', 'malformed (unknown first chunk)');
}

/**
 * Whether a WebP, PNG or AVIF is animated, from the head of the file alone: a WebP's VP8X
 * animation flag (0x02; its frames are ANMF chunks), a PNG's `acTL` chunk before IDAT naming more
 * than one frame (APNG: a decoder without APNG support, libvips's included, shows the default
 * image only), an AVIF whose `ftyp` brands include `avis` (an image sequence). A renderer that
 * takes the first frame would turn these into stills, as it would a GIF. False when the head does
 * not say (a cut or malformed header is the size reader's to refuse).
 */
export function isAnimated(format: ImageFormat, b: Buffer): boolean {
  switch (format) {
    case 'webp':
      return b.length >= 21 && b.toString('latin1', 12, 16) === 'VP8X' && (b[20]! & 0x02) !== 0;
    case 'png': {
      let chunks = 0;
      for (let at = 8; at + 8 <= b.length && ++chunks <= EXIF_WALK_MAX_CHUNKS; ) {
        const length = b.readUInt32BE(at);
        const type = b.toString('latin1', at + 4, at + 8);
        if (type === 'IDAT' || type === 'IEND') return false;
        if (type === 'acTL') return length >= 8 && at + 12 <= b.length && b.readUInt32BE(at + 8) > 1;
        at += 12 + length;
      }
      return false;
    }
    case 'avif': {
      // ftyp: size, 'ftyp', major brand, minor version, then compatible brands to its end.
      if (b.length < 16 || b.toString('latin1', 4, 8) !== 'ftyp') return false;
      // A real ftyp lists a handful of brands; the walk looks at no more than 64 of them.
      const end = Math.min(b.length, b.readUInt32BE(0), 16 + 4 * 64);
      for (let at = 8; at + 4 <= end; at += at === 8 ? 8 : 4) {
        if (b.toString('latin1', at, at + 4) === 'avis') return true;
      }
      return false;
    }
    default:
      return false;
  }
}

/** How much of an SVG is read for its root element: the prolog and the `<svg …>` start tag. */
const SVG_HEAD_BYTES = 64 * 1024;

/**
 * width/height attributes of the root element in px, else the viewBox; null when neither says.
 * One left-to-right pass over at most SVG_HEAD_BYTES (no regular expressions: the text is the
 * client's, and the patterns this replaced went quadratic on it).
 */
function svgSize(b: Buffer): Dimensions | null {
  const text = svgPrefix(b, SVG_HEAD_BYTES);
  const root = svgRootAt(text);
  if (root < 0) throw new ImageHeaderError('svg', 'malformed (no <svg> root element)');
  const attrs = startTagAttributes(text, root + 4);
  if (!attrs) throw new ImageHeaderError('svg', 'truncated (no complete <svg> tag)');
  const w = svgLength(attrs.get('width'));
  const h = svgLength(attrs.get('height'));
  if (w !== undefined && h !== undefined) return { width: Math.round(w), height: Math.round(h) };
  const box = viewBoxNumbers(attrs.get('viewbox'));
  if (box?.length === 4 && box.every(Number.isFinite) && box[2]! > 0 && box[3]! > 0) {
    return { width: Math.round(box[2]!), height: Math.round(box[3]!) };
  }
  return null;
}

/**
 * The quoted attributes of a start tag from `at` (just after its name) to its `>`, names in lower
 * case, the first of a repeated name kept. Null when the tag does not end within `s`. Unquoted
 * values are not XML and are skipped. Every step consumes at least one character.
 */
function startTagAttributes(s: string, at: number): Map<string, string> | null {
  const attrs = new Map<string, string>();
  for (;;) {
    at = skipXmlSpace(s, at);
    if (at >= s.length) return null;
    const c = s[at];
    if (c === '>') return attrs;
    if (c === '/') {
      at++;
      continue;
    }
    const nameStart = at;
    while (at < s.length && !isXmlSpace(s.charCodeAt(at)) && !'=>/'.includes(s[at]!)) at++;
    const name = s.slice(nameStart, at).toLowerCase();
    at = skipXmlSpace(s, at);
    if (s[at] !== '=') continue;
    at = skipXmlSpace(s, at + 1);
    const quote = s[at];
    if (quote === '"' || quote === "'") {
      const close = s.indexOf(quote, at + 1);
      if (close < 0) return null;
      if (name && !attrs.has(name)) attrs.set(name, s.slice(at + 1, close));
      at = close + 1;
    } else {
      while (at < s.length && !isXmlSpace(s.charCodeAt(at)) && s[at] !== '>') at++;
    }
  }
}

const isDigit = (c: number) => c >= 0x30 && c <= 0x39;

/** A length in user units: digits with an optional fraction, optionally `px`; else undefined. */
function svgLength(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  let v = value.trim();
  if (v.endsWith('px')) v = v.slice(0, -2).trimEnd();
  let i = 0;
  while (i < v.length && isDigit(v.charCodeAt(i))) i++;
  if (i === 0) return undefined;
  if (v[i] === '.') {
    const fraction = ++i;
    while (i < v.length && isDigit(v.charCodeAt(i))) i++;
    if (i === fraction) return undefined;
  }
  return i === v.length ? Number(v) : undefined;
}

/** The numbers of a viewBox (separated by whitespace and/or commas); more than 4 is not one. */
function viewBoxNumbers(value: string | undefined): number[] | undefined {
  if (value === undefined) return undefined;
  const out: number[] = [];
  let at = 0;
  const sep = (i: number) => isXmlSpace(value.charCodeAt(i)) || value[i] === ',';
  for (;;) {
    while (at < value.length && sep(at)) at++;
    if (at >= value.length) return out;
    if (out.length === 4) return undefined;
    const start = at;
    while (at < value.length && !sep(at)) at++;
    out.push(Number(value.slice(start, at)));
  }
}
