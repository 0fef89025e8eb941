import { GIF_MAX_BLOCKS, gifColourTableBytes } from './dimensions.js';
import { ImageHeaderError } from './header-error.js';
import { PlanBuilder, type StoredPlan } from './stored-bytes.js';
import { type ByteSource, nextTurn, Pacer, Windowed } from './windowed-source.js';

/**
 * What of a GIF upload is stored when UPLOAD_STRIP_METADATA is on (docs/architecture.md, "The
 * upload pipeline", step 2), after the GIF89a specification: the image as it was encoded,
 * without what describes who made it and with what. Lossless: every kept block is copied byte for
 * byte.
 *
 * Kept, in their order: the header, logical screen and global colour table; every frame (image
 * descriptor, local colour table, image data); graphic control extensions (delays, disposal,
 * transparency); plain text extensions (text drawn on the screen: part of what is shown); and
 * the application extensions that change how the file plays or looks (KEPT_APPLICATIONS: the
 * loop count and the ICC profile).
 * Dropped: comment extensions (free text: authors, software, places), every other application
 * extension (XMP, which Photoshop and exiftool write as `XMP DataXMP`; Photoshop's resources and
 * IPTC in ImageMagick's `MGK8BIM0000` and `MGKIPTC0000`; anything private), extensions of unknown
 * labels (a decoder skips them by the specification, so they change nothing shown), and whatever
 * follows the trailer.
 *
 * A GIF cut short (no trailer) is stored as far as it goes, its kept blocks as they are: libvips
 * shows the frames it has, and the header reader accepted it (uploads/dimensions.ts, GifWalk).
 * An unknown block introducer is an ImageHeaderError, as it is to the header reader.
 */

/** Application identifiers and authentication codes (11 bytes) of the extensions kept. */
const KEPT_APPLICATIONS: ReadonlySet<string> = new Set([
  'NETSCAPE2.0', // the loop count
  'ANIMEXTS1.0', // the same, as some encoders name it
  'ICCRGBG1012', // the ICC profile
]);

const EXTENSION = 0x21;
const IMAGE = 0x2c;
const TRAILER = 0x3b;
const GRAPHIC_CONTROL = 0xf9;
const PLAIN_TEXT = 0x01;
const APPLICATION = 0xff;

/** The bytes to store for a GIF upload. The header reader has checked its signature. */
export async function strippedGif(src: ByteSource): Promise<StoredPlan> {
  const file = new Windowed(src);
  const head = await file.at(0, 13);
  if (!head) throw new ImageHeaderError('gif', 'truncated');
  const packed = head.b[head.i + 10]!;
  let at = 13 + gifColourTableBytes(packed);
  const plan = new PlanBuilder();
  plan.keep(0, Math.min(at, src.size));
  const pacer = new Pacer();
  let blocks = 0;
  const counted = () => {
    if (++blocks > GIF_MAX_BLOCKS)
      throw new ImageHeaderError('gif', `malformed (more than ${GIF_MAX_BLOCKS} blocks)`);
  };
  /** The end of the sub-block chain starting at `from` (past its zero terminator), or the file's. */
  const chainEnd = async (from: number): Promise<number> => {
    let p = from;
    while (p < src.size) {
      counted();
      const w = file.peek(p, 1) ?? (await file.at(p, 1));
      const length = w!.b[w!.i]!; // p < size: the byte is there
      p += 1 + length;
      if (length === 0) break;
      if (pacer.due(p)) await nextTurn();
    }
    return Math.min(p, src.size);
  };

  while (at < src.size) {
    counted();
    const w = file.peek(at, 1) ?? (await file.at(at, 1));
    const introducer = w!.b[w!.i]!;
    if (introducer === TRAILER) {
      plan.keep(at, at + 1);
      return plan.plan(); // what follows the trailer is not the image's
    }
    if (introducer === IMAGE) {
      // Descriptor (10 bytes), local colour table, LZW minimum code size, data sub-blocks.
      const d = file.peek(at, 10) ?? (await file.at(at, 10));
      if (!d) break; // a cut descriptor: no frame, as the header reader counts it
      const local = d.b[d.i + 9]!;
      const data = at + 10 + gifColourTableBytes(local) + 1;
      const end = await chainEnd(data);
      plan.keep(at, end);
      at = end;
    } else if (introducer === EXTENSION) {
      const l = file.peek(at + 1, 1) ?? (await file.at(at + 1, 1));
      if (!l) break; // a cut extension
      const label = l.b[l.i]!;
      const keep = await kept(file, label, at + 2);
      const end = await chainEnd(at + 2);
      if (keep) plan.keep(at, end);
      at = end;
    } else {
      throw new ImageHeaderError('gif', `malformed (unknown block 0x${introducer.toString(16)})`);
    }
    if (pacer.due(at)) await nextTurn();
  }
  return plan.plan(); // cut short: what there is
}

/** Whether an extension of `label`, whose first sub-block is at `data`, is kept. */
async function kept(file: Windowed, label: number, data: number): Promise<boolean> {
  if (label === GRAPHIC_CONTROL || label === PLAIN_TEXT) return true;
  if (label !== APPLICATION) return false; // comments, and labels no decoder acts on
  // The application's identifier and code: a first sub-block of 11 bytes.
  const w = await file.at(data, 12);
  if (!w) return false; // cut short
  if (w.b[w.i] !== 11) return false;
  return KEPT_APPLICATIONS.has(w.b.toString('latin1', w.i + 1, w.i + 12));
}
