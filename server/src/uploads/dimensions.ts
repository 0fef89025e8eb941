import { crc32 } from '../crc32.js';
import { avifSize } from './avif.js';
import { type Dimensions, ImageHeaderError } from './header-error.js';
import type { ImageFormat } from './sniff.js';

export { type Dimensions, ImageHeaderError };

/**
 * Width and height as the image is displayed, read from the header alone (nothing is decoded).
 * SVG may have none (null). Throws ImageHeaderError when the header is truncated or malformed.
 */
export function readDimensions(format: ImageFormat, b: Buffer): Dimensions | null {
  const d = READERS[format](b);
  if (d && (!(d.width >= 1) || !(d.height >= 1))) throw new ImageHeaderError(format, 'malformed (zero size)');
  return d;
}

const READERS: Record<ImageFormat, (b: Buffer) => Dimensions | null> = {
  png: pngSize,
  gif: gifSize,
  jpeg: jpegSize,
  webp: webpSize,
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

/** The logical screen descriptor right after the signature. */
function gifSize(b: Buffer): Dimensions {
  if (b.length < 13) throw new ImageHeaderError('gif', 'truncated');
  return { width: b.readUInt16LE(6), height: b.readUInt16LE(8) };
}

// Start-of-frame markers (C4, C8 and CC are other tables sharing the range).
const isSof = (m: number) => m >= 0xc0 && m <= 0xcf && m !== 0xc4 && m !== 0xc8 && m !== 0xcc;

/**
 * Walks the marker segments up to the first frame header. An EXIF orientation of 5 to 8 turns
 * the image a quarter, so browsers show it with width and height swapped.
 */
function jpegSize(b: Buffer): Dimensions {
  let at = 2;
  let orientation = 1;
  while (at < b.length) {
    if (b[at] !== 0xff) throw new ImageHeaderError('jpeg', 'malformed (marker expected)');
    while (at < b.length && b[at] === 0xff) at++; // fill bytes
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
      return orientation >= 5 ? { width: height, height: width } : { width, height };
    }
    if (marker === 0xe1) orientation = exifOrientation(b.subarray(at + 2, at + len)) ?? orientation;
    at += len;
  }
  throw new ImageHeaderError('jpeg', 'truncated');
}

/** Tag 0x0112 of IFD0 in an APP1 `Exif` segment; undefined when absent or unreadable. */
function exifOrientation(seg: Buffer): number | undefined {
  if (seg.length < 14 || seg.toString('latin1', 0, 6) !== 'Exif\0\0') return undefined;
  const t = seg.subarray(6);
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

const SVG_LENGTH = /^\s*(\d+(?:\.\d+)?)\s*(px)?\s*$/;

/** width/height attributes of the root element in px, else the viewBox; null when neither says. */
function svgSize(b: Buffer): Dimensions | null {
  const text = b.toString('utf8', 0, Math.min(b.length, 64 * 1024));
  const tag = /<svg\b([^>]*)>/i.exec(text)?.[1];
  if (tag === undefined) throw new ImageHeaderError('svg', 'truncated (no complete <svg> tag)');
  const attr = (name: string) => new RegExp(`\\s${name}\\s*=\\s*(["'])(.*?)\\1`, 'i').exec(tag)?.[2];
  const w = SVG_LENGTH.exec(attr('width') ?? '')?.[1];
  const h = SVG_LENGTH.exec(attr('height') ?? '')?.[1];
  if (w && h) return { width: Math.round(Number(w)), height: Math.round(Number(h)) };
  const box = attr('viewBox')
    ?.trim()
    .split(/[\s,]+/)
    .map(Number);
  if (box?.length === 4 && box.every(Number.isFinite) && box[2]! > 0 && box[3]! > 0) {
    return { width: Math.round(box[2]!), height: Math.round(box[3]!) };
  }
  return null;
}
