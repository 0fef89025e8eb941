import { exifOrientation, isSof } from './dimensions.js';
import { ImageHeaderError } from './header-error.js';
import type { StoredPlan } from './stored-bytes.js';
import { type ByteSource, nextTurn, Windowed } from './windowed-source.js';

/**
 * What of a JPEG upload is stored when UPLOAD_STRIP_METADATA is on (docs/architecture.md, "The
 * upload pipeline", "Metadata"): the image as it was encoded, without what describes where, when
 * and with what it was taken. Lossless: the entropy-coded data is copied byte for byte.
 *
 * Kept, in their order: every segment a decoder needs (quantisation and Huffman tables, frame and
 * scan headers, restart intervals), APP0 JFIF (without a thumbnail), APP2 `ICC_PROFILE` (the colours) and APP14
 * `Adobe` (says whether the data is YCbCr or RGB/CMYK: without it the colours are wrong).
 * Dropped: APP1 EXIF (GPS, times, camera and lens serials, the embedded thumbnail, which keeps
 * the uncropped original), APP1 XMP and extended XMP (GPS again, edit history, a motion photo's
 * pointer), APP13 (IPTC: names, places, captions), every other APPn (MPF, maker data) and COM,
 * and everything after the primary image's EOI: a phone's appended gain map, depth map or
 * motion-photo video (which has its own GPS track). An EXIF orientation other than 1 is kept, in
 * an EXIF segment of its own that holds nothing else, so the photo is still shown upright.
 */

/**
 * Where the stored bytes come from: `prefix`, then the upload's bytes `from`..`to`; `pieces` says
 * the same as a plan (stored-bytes.ts), which is what `UploadBody.stream` takes.
 */
export interface StoredBytes extends StoredPlan {
  prefix: Buffer;
  from: number;
  to: number;
}

/** Marker bytes. */
const SOI = 0xd8;
const EOI = 0xd9;
const SOS = 0xda;
const APP0 = 0xe0;
const APP1 = 0xe1;
const APP2 = 0xe2;
const APP14 = 0xee;
const COM = 0xfe;

/** Segments walked at most before the first scan (the header reader's bound, uploads/dimensions.ts). */
const MAX_SEGMENTS = 4096;
/** Fill bytes (0xff runs before markers) walked at most before the first scan, all runs together. */
const MAX_FILL_BYTES = 64 * 1024;
/**
 * The bytes to store for a JPEG upload: its kept segments, then its scans through the primary
 * image's EOI. The header reader (uploads/dimensions.ts) has checked the file up to its frame
 * header; what is malformed past it throws, and the upload is refused rather than stored with
 * its metadata.
 */
export async function strippedJpeg(src: ByteSource): Promise<StoredBytes> {
  const file = new Windowed(src);
  if ((await file.byte(0)) !== 0xff || (await file.byte(1)) !== SOI)
    throw new ImageHeaderError('jpeg', 'malformed (no start of image)');
  const kept: Buffer[] = [Buffer.from([0xff, SOI])];
  let orientation = 1;
  let framed = false;
  let exifAt = -1; // where the orientation's segment goes: after APP0, before anything else
  let at = 2;
  let fill = 0;
  for (let segments = 0; segments < MAX_SEGMENTS; segments++) {
    if ((await file.byte(at)) !== 0xff) throw new ImageHeaderError('jpeg', 'malformed (marker expected)');
    // Fill bytes (0xff runs) may precede a marker; they are not copied. Scanned within each
    // window (a run is up to MAX_FILL_BYTES long: not a promise a byte).
    let m = at; // the marker's own 0xff: the last of the run
    let marker: number | undefined;
    for (;;) {
      const w = await file.at(m + 1, 1);
      if (!w) break;
      let i = w.i;
      while (i < w.b.length && w.b[i] === 0xff) i++;
      fill += i - w.i;
      if (fill > MAX_FILL_BYTES) throw new ImageHeaderError('jpeg', 'malformed (too many fill bytes)');
      m += i - w.i;
      if (i < w.b.length) {
        marker = w.b[i];
        break;
      }
    }
    if (marker === undefined)
      throw new ImageHeaderError('jpeg', 'malformed (cut short before its first scan)');
    // Markers without a length, skipped (not copied) as the header reader skips them.
    if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd8)) {
      at = m + 2;
      continue;
    }
    if (marker === SOS) {
      if (exifAt === -1) exifAt = kept.length;
      if (orientation !== 1) kept.splice(exifAt, 0, orientationOnlyExif(orientation));
      const eoi = await findEoi(file, m);
      const prefix = Buffer.concat(kept);
      const to = eoi ?? src.size;
      return { prefix, from: m, to, pieces: [prefix, { from: m, to }] };
    }
    if (marker === EOI) throw new ImageHeaderError('jpeg', 'malformed (no scan)');
    const header = await file.at(m, 4);
    if (!header) throw new ImageHeaderError('jpeg', 'malformed (cut short before its first scan)');
    const len = header.b.readUInt16BE(header.i + 2);
    if (len < 2) throw new ImageHeaderError('jpeg', 'malformed (segment length)');
    if (isSof(marker)) framed = true;
    // Only a segment that may be kept, or whose EXIF is read, is copied; the rest are skipped.
    const app = marker >= APP0 && marker <= 0xef;
    if (
      marker !== COM &&
      (!app || marker === APP0 || marker === APP1 || marker === APP2 || marker === APP14)
    ) {
      const seg = await file.at(m, 2 + len);
      if (!seg) throw new ImageHeaderError('jpeg', 'malformed (cut short before its first scan)');
      const body = seg.b.subarray(seg.i + 4, seg.i + 2 + len);
      // The orientation the header reader took (the last EXIF's before the frame header).
      if (marker === APP1 && !framed) orientation = exifOrientation(body) ?? orientation;
      if (marker === APP0 && startsWith(body, 'JFIF\0') && body.length >= JFIF_BYTES) {
        kept.push(jfifWithoutThumbnail(body));
      } else if (keepSegment(marker, body)) {
        if (exifAt === -1) exifAt = kept.length;
        kept.push(Buffer.from(seg.b.subarray(seg.i, seg.i + 2 + len)));
      }
    }
    at = m + 2 + len;
  }
  throw new ImageHeaderError('jpeg', `malformed (no scan in ${MAX_SEGMENTS} segments)`);
}

/** A JFIF APP0's body up to its thumbnail: identifier, version, units, densities, thumbnail size. */
const JFIF_BYTES = 14;

/**
 * The JFIF segment with no thumbnail: a thumbnail (rare) is a picture of the image as it was,
 * which an edit or a crop may not have changed. JFXX (thumbnails only) and other APP0s are dropped.
 */
function jfifWithoutThumbnail(body: Buffer): Buffer {
  const seg = Buffer.alloc(4 + JFIF_BYTES);
  seg[0] = 0xff;
  seg[1] = APP0;
  seg.writeUInt16BE(2 + JFIF_BYTES, 2);
  body.copy(seg, 4, 0, JFIF_BYTES - 2);
  return seg; // the thumbnail's width and height: 0 (the last two bytes, left zero)
}

function keepSegment(marker: number, body: Buffer): boolean {
  if (marker === COM) return false;
  if (marker < APP0 || marker > 0xef) return true; // tables, frame headers, DRI, DNL, …
  if (marker === APP2) return startsWith(body, 'ICC_PROFILE\0');
  if (marker === APP14) return startsWith(body, 'Adobe');
  return false;
}

function startsWith(b: Buffer, text: string): boolean {
  return b.length >= text.length && b.toString('latin1', 0, text.length) === text;
}

/** An APP1 EXIF segment whose IFD0 holds the orientation tag only (big-endian TIFF). */
export function orientationOnlyExif(orientation: number): Buffer {
  const tiff = orientationOnlyTiff(orientation);
  const seg = Buffer.alloc(4 + 6 + tiff.length);
  seg[0] = 0xff;
  seg[1] = APP1;
  seg.writeUInt16BE(seg.length - 2, 2);
  seg.write('Exif\0\0', 4, 'latin1');
  tiff.copy(seg, 10);
  return seg;
}

/**
 * EXIF data from its TIFF header on, whose IFD0 holds the orientation tag only (big-endian): a
 * JPEG's APP1 after `Exif\0\0`, a PNG's `eXIf` and a WebP's `EXIF` chunk (png-metadata.ts,
 * webp-metadata.ts). 26 bytes: an even length, so a RIFF chunk of it needs no padding.
 */
export function orientationOnlyTiff(orientation: number): Buffer {
  const tiff = Buffer.alloc(8 + 2 + 12 + 4);
  tiff.write('MM', 0, 'latin1'); // TIFF header: big-endian, 42, IFD0 at offset 8
  tiff.writeUInt16BE(42, 2);
  tiff.writeUInt32BE(8, 4);
  tiff.writeUInt16BE(1, 8); // one entry: Orientation, SHORT, count 1, its value left-justified
  tiff.writeUInt16BE(0x0112, 10);
  tiff.writeUInt16BE(3, 12);
  tiff.writeUInt32BE(1, 14);
  tiff.writeUInt16BE(orientation, 18);
  tiff.writeUInt32BE(0, 22); // no next IFD
  return tiff;
}

/**
 * The end of the primary image's EOI, walking from its first scan header on. In entropy-coded
 * data a 0xff is followed by 0x00 (a stuffed byte), a restart marker or fill; any other marker
 * starts a segment between scans (a progressive file's tables and scan headers), skipped by its
 * length, so no byte inside a table is taken for an EOI. Linear in the file (Buffer.indexOf over
 * each window). Undefined when the file ends first (cut short): it is then kept to its end.
 */
async function findEoi(file: Windowed, sosAt: number): Promise<number | undefined> {
  let at = sosAt; // a marker's 0xff
  for (;;) {
    const end = await file.at(at, 2);
    if (!end) return undefined;
    const marker = end.b[end.i + 1]!;
    if (marker === EOI) return at + 2;
    if (marker === SOI || marker === 0x01) return undefined; // not a segment: malformed
    const header = await file.at(at, 4);
    if (!header) return undefined;
    at += 2 + header.b.readUInt16BE(header.i + 2);
    // The data after it: find the next 0xff that starts a marker, a window at a time, and let
    // other requests run between windows (a 20 MB scan is tens of ms of CPU in all).
    for (;;) {
      const w = await file.at(at, 2);
      if (!w) return undefined;
      const found = nextMarker(w.b, w.i);
      if (found >= 0) {
        at += found - w.i;
        break;
      }
      // None before the window's last byte: read on from it (it may be a marker's 0xff).
      at += w.b.length - 1 - w.i;
      await nextTurn();
    }
  }
}

/**
 * The index of the first 0xff in b[from..] that starts a marker other than a restart marker (so
 * not a stuffed 0xff 0x00 nor fill), or -1 if none does before b's last byte. A plain loop: a
 * scan full of 0xff 0x00 pairs would cost a native call a pair with Buffer.indexOf.
 */
function nextMarker(b: Buffer, from: number): number {
  const last = b.length - 1;
  for (let i = from; i < last; i++) {
    if (b[i] !== 0xff) continue;
    const next = b[i + 1]!;
    if (next === 0x00 || next === 0xff || (next >= 0xd0 && next <= 0xd7)) continue;
    return i;
  }
  return -1;
}
