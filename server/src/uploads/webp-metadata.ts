import { chunkExifOrientation, EXIF_MAX_BYTES } from './dimensions.js';
import { ImageHeaderError } from './header-error.js';
import { orientationOnlyTiff } from './jpeg-metadata.js';
import { PlanBuilder, type StoredPlan, storedSize } from './stored-bytes.js';
import { type ByteSource, nextTurn, Pacer, Windowed } from './windowed-source.js';

/**
 * What of a WebP upload is stored when UPLOAD_STRIP_METADATA is on (docs/architecture.md, "The
 * upload pipeline", step 2), after the WebP container specification (RIFF):
 * - A simple file (one `VP8 ` or `VP8L` chunk, no `VP8X`) has no place for metadata: it is
 *   stored as it came.
 * - An extended file (`VP8X` first) loses its `EXIF` (GPS, times, camera serials) and `XMP `
 *   chunks; the VP8X flags saying they are there are cleared, and the RIFF size is rewritten.
 *   Every other chunk is copied byte for byte in its order: `ICCP` (the colours), `ANIM` and
 *   `ANMF` (an animation keeps its frames, each with its own image data and unknown chunks
 *   inside), `ALPH`, `VP8 `/`VP8L`, and unknown chunks, which the specification tells writers
 *   to keep. Bytes past the RIFF size are not the file's (decoders never read them), and are
 *   not stored.
 * An EXIF orientation other than 1 (the one libvips applies: the first EXIF chunk of a file whose
 * VP8X EXIF flag is set, as ExifChunkWalk in uploads/dimensions.ts reads it) is kept, in an EXIF
 * chunk holding nothing else in the place of that chunk, its flag left set, so the image is
 * shown as the upload recorded its size.
 *
 * Malformed structure (a chunk running past the RIFF size, a RIFF size past the end of the file,
 * a VP8X shorter than 10 bytes, no image data) is an ImageHeaderError: the upload is refused
 * (BAD_USER_INPUT), never stored with its metadata.
 */

/** VP8X flag bits (the first byte of its data). */
const EXIF_FLAG = 0x08;
const XMP_FLAG = 0x04;

/**
 * Chunks walked at most. A still WebP has a handful; an animated one has one ANMF per frame (its
 * frames' own chunks are inside it, not walked). Every chunk is at least 8 bytes: without a
 * bound, 20 MB of empty ones is 2.6 million steps and a plan of as many pieces.
 */
export const WEBP_MAX_CHUNKS = 1 << 18;

/** The bytes to store for a WebP upload. The header reader (uploads/dimensions.ts) has checked its RIFF header. */
export async function strippedWebp(src: ByteSource): Promise<StoredPlan> {
  const file = new Windowed(src);
  const head = await file.at(0, Math.min(src.size, 30));
  if (!head || src.size < 20 || head.b.toString('latin1', head.i, head.i + 4) !== 'RIFF')
    throw new ImageHeaderError('webp', 'truncated');
  const riffEnd = head.b.readUInt32LE(head.i + 4) + 8;
  if (riffEnd > src.size) throw new ImageHeaderError('webp', 'truncated (RIFF size)');
  if (head.b.toString('latin1', head.i + 12, head.i + 16) !== 'VP8X') {
    return { pieces: [{ from: 0, to: src.size }] }; // the simple format: no metadata
  }
  const vp8xLength = head.b.readUInt32LE(head.i + 16);
  if (vp8xLength < 10 || src.size < 30) throw new ImageHeaderError('webp', 'malformed (VP8X chunk)');
  const flags = head.b[head.i + 20]!;
  // RIFF header and VP8X's header and flags: rewritten once the walk knows the size and flags.
  const header = Buffer.from(head.b.subarray(head.i, head.i + 21));
  const plan = new PlanBuilder();
  plan.add(header);
  let at = 20 + vp8xLength + (vp8xLength & 1);
  if (at > riffEnd) throw new ImageHeaderError('webp', 'truncated (VP8X chunk)');
  plan.keep(21, at);

  const pacer = new Pacer();
  let exifSeen = false;
  let exifKept = false;
  let imageData = false;
  for (let chunks = 0; at < riffEnd; chunks++) {
    if (chunks >= WEBP_MAX_CHUNKS)
      throw new ImageHeaderError('webp', `malformed (more than ${WEBP_MAX_CHUNKS} chunks)`);
    const h = at + 8 <= riffEnd ? (file.peek(at, 8) ?? (await file.at(at, 8))) : undefined;
    if (!h) throw new ImageHeaderError('webp', 'truncated (a chunk header runs past the RIFF size)');
    const type = h.b.toString('latin1', h.i, h.i + 4);
    const length = h.b.readUInt32LE(h.i + 4);
    const dataEnd = at + 8 + length;
    if (dataEnd > riffEnd) throw new ImageHeaderError('webp', 'truncated (a chunk runs past the RIFF size)');
    // Data is padded to an even length; a last chunk without its padding byte is tolerated.
    const end = Math.min(dataEnd + (length & 1), riffEnd);
    if (type === 'EXIF') {
      // libvips applies the first EXIF chunk, and only when the VP8X flag says there is one.
      if (!exifSeen && (flags & EXIF_FLAG) !== 0) {
        exifSeen = true;
        const orientation = await orientationOf(file, at + 8, length);
        if (orientation !== 1) {
          plan.add(chunk('EXIF', orientationOnlyTiff(orientation)));
          exifKept = true;
        }
      }
    } else if (type !== 'XMP ') {
      plan.keep(at, end);
      if (type === 'VP8 ' || type === 'VP8L' || type === 'ANMF') imageData = true;
    }
    at = end;
    if (pacer.due(at)) await nextTurn();
  }
  if (!imageData) throw new ImageHeaderError('webp', 'malformed (no image data)');

  const out = plan.plan();
  header.writeUInt32LE(storedSize(out) - 8, 4);
  header[20] = flags & ~XMP_FLAG & ~(exifKept ? 0 : EXIF_FLAG);
  return out;
}

/** The orientation in the EXIF chunk whose data is at `data`, as ExifChunkWalk reads it. */
async function orientationOf(file: Windowed, data: number, length: number): Promise<number> {
  const n = Math.min(length, EXIF_MAX_BYTES);
  const w = await file.at(data, n);
  return w ? chunkExifOrientation(w.b.subarray(w.i, w.i + n), 'webp') : 1; // w: the chunk is in the file
}

/** A RIFF chunk of `type` and `data` (of an even length: no padding). */
function chunk(type: string, data: Buffer): Buffer {
  const out = Buffer.alloc(8 + data.length + (data.length & 1));
  out.write(type, 0, 'latin1');
  out.writeUInt32LE(data.length, 4);
  data.copy(out, 8);
  return out;
}
