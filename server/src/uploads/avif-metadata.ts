import { type Box, BoxReader, MAX_BOXES } from './avif.js';
import { ImageHeaderError } from './header-error.js';
import { PlanBuilder, type StoredPlan } from './stored-bytes.js';
import { type ByteSource, nextTurn, Pacer, Windowed } from './windowed-source.js';

/**
 * What of an AVIF upload is stored when UPLOAD_STRIP_METADATA is on (docs/architecture.md, "The
 * upload pipeline", step 2). In HEIF, EXIF (GPS, times, camera serials) and XMP are items of the
 * top-level `meta` box: `iinf` names each item's type (`Exif`, or `mime` with the content type
 * `application/rdf+xml` for XMP) and `iloc` says where its bytes are, in the file or in the meta
 * box's `idat`, by offsets. Rewriting those offsets would mean rewriting every item's (the image
 * data's too), so the metadata is blanked in place instead: no offset in the file changes, and
 * everything else (the image data, `colr` and the other properties, unknown boxes) is the
 * upload's byte for byte.
 * - An Exif item becomes a valid empty EXIF block of the same length: the 4-byte offset to its
 *   TIFF header (0), a little-endian TIFF header whose IFD0 has no entries, then zeros; zeros
 *   alone when it is too short for that.
 * - An XMP item becomes an empty XMP packet padded with spaces to the same length (XMP packets
 *   allow padding before their closing `<?xpacket end="w"?>`), or spaces alone when too short.
 * Nothing of the EXIF is kept, its orientation neither (unlike JPEG's, PNG's and WebP's): an
 * AVIF's orientation is its `irot`/`imir` properties, which libheif applies on decode; libvips
 * then drops any EXIF orientation (informational in HEIF: applying it as well would turn the
 * image twice), and the header reader (uploads/avif.ts) reads `irot`. So the size as displayed
 * does not change.
 * An image sequence (`avis`) has its `meta` items blanked the same way; what its `moov` holds
 * (track `udta` and `meta` boxes, which some writers fill with a location or XMP) is left as it
 * came.
 *
 * Malformed structure is an ImageHeaderError: the upload is refused (BAD_USER_INPUT), never stored
 * with its metadata. That is a top-level box running past the end of the file, no `meta` box, two
 * of them, one over AVIF_META_MAX_BYTES, truncated `iinf`/`iloc`/`infe` boxes, and for an Exif or
 * XMP item an extent outside the file or its `idat`, one of length 0 ("to the end"), data in
 * another file (`data_reference_index` other than 0) or built from other items
 * (`construction_method` 2), or a compressed XMP item (blanking it would leave a stream that does
 * not inflate, and libvips would fail to load the file).
 */

const bad = (detail: string) => new ImageHeaderError('avif', detail);

/**
 * The largest `meta` box read, as the header reader (images/upload.ts, SNIFF_MAX_BYTES) needs the
 * whole of it within the first 1 MB anyway. A real one is a few KB (a grid image's some tens).
 */
export const AVIF_META_MAX_BYTES = 1024 * 1024;

/** Top-level boxes walked at most (a file has a handful: ftyp, meta, mdat, maybe free, moov). */
export const AVIF_MAX_TOP_BOXES = MAX_BOXES;

/**
 * Items listed at most (`infe` boxes in `iinf`, entries in `iloc`): a grid image has one item per
 * tile, some hundreds at most. The `meta` bound alone would allow some 170,000 entries.
 */
export const AVIF_MAX_ITEMS = 1 << 16;

/**
 * Extents of Exif and XMP items at most, all items together. A writer puts an item in one extent
 * (libheif does); each of these is walked and becomes a piece of the plan. Other items' extents
 * are skipped by their size, one step per entry: an entry whose fields are 0 bytes wide takes no
 * room, so 65,536 entries may declare 4 billion extents, which must not be walked one by one.
 */
export const AVIF_MAX_METADATA_EXTENTS = 4096;

/** A shared run of filler: a blanked extent is stored as pieces of this, never its own buffer. */
const FILLER_BYTES = 64 * 1024;
const ZEROS = Buffer.alloc(FILLER_BYTES);
const SPACES = Buffer.alloc(FILLER_BYTES, 0x20);

/**
 * An empty EXIF item: exif_tiff_header_offset 0 (the TIFF header follows at once; libvips skips
 * these 4 bytes), "II*\0", IFD0 at 8, no entries, no next IFD.
 */
const EMPTY_EXIF = Buffer.from([0, 0, 0, 0, 0x49, 0x49, 0x2a, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0]);

/** An empty XMP packet: the head, spaces, then the trailer (writable: "w"). */
const XMP_HEAD = Buffer.from(
  '<?xpacket begin="\uFEFF" id="W5M0MpCehiHzreSzNTczkc9d"?>\n<x:xmpmeta xmlns:x="adobe:ns:meta/"/>\n',
  'utf8',
);
const XMP_TAIL = Buffer.from('<?xpacket end="w"?>', 'latin1');

type Kind = 'Exif' | 'XMP';

/** What an item of `length` bytes is blanked to: `head`, then `filler` bytes, then `tail`. */
interface Blank {
  head: Buffer;
  filler: Buffer;
  tail: Buffer;
}

function blankOf(kind: Kind, length: number): Blank {
  const none = Buffer.alloc(0);
  if (kind === 'Exif')
    return length >= EMPTY_EXIF.length
      ? { head: EMPTY_EXIF, filler: ZEROS, tail: none }
      : { head: none, filler: ZEROS, tail: none };
  return length >= XMP_HEAD.length + XMP_TAIL.length
    ? { head: XMP_HEAD, filler: SPACES, tail: XMP_TAIL }
    : { head: none, filler: SPACES, tail: none };
}

/** An Exif or XMP item: its length (all its extents) and what it is blanked to. */
interface Item {
  length: number;
  blank: Blank;
}

/** An extent of a metadata item, in the file: from..to, the item's bytes from `at` on. */
interface Run {
  from: number;
  to: number;
  at: number;
  item: Item;
}

/** The bytes to store for an AVIF upload. The header reader (uploads/avif.ts) has read its size. */
export async function strippedAvif(src: ByteSource): Promise<StoredPlan> {
  const file = new Windowed(src);
  const pacer = new Pacer();
  const meta = await topLevelMeta(file, src.size, pacer);
  if (meta.end - meta.start > AVIF_META_MAX_BYTES)
    throw bad(`malformed (a meta box of ${meta.end - meta.start} bytes, more than ${AVIF_META_MAX_BYTES})`);
  const w = await file.at(meta.start, meta.end - meta.start);
  if (!w) throw bad('truncated (meta)'); // topLevelMeta found it inside the file
  const runs = await metadataRuns(w.b.subarray(w.i, w.i + meta.end - meta.start), meta, src.size);

  // Extents go in file order; where two overlap (no writer does that), the first one's blank wins.
  runs.sort((x, y) => x.from - y.from);
  const plan = new PlanBuilder();
  let at = 0;
  for (const run of runs) {
    if (pacer.due(at)) await nextTurn();
    const from = Math.max(run.from, at);
    if (from >= run.to) continue;
    plan.keep(at, from);
    addBlank(plan, run, run.at + (from - run.from), run.to - from);
    at = run.to;
  }
  plan.keep(at, src.size);
  return plan.plan();
}

/** Stores bytes offset..offset+n of the blank of `run`'s item, the filler as shared pieces. */
function addBlank(plan: PlanBuilder, run: Run, offset: number, n: number): void {
  const { head, filler, tail } = run.item.blank;
  const tailAt = run.item.length - tail.length;
  const end = offset + n;
  if (offset < head.length) plan.add(head.subarray(offset, Math.min(end, head.length)));
  for (let at = Math.max(offset, head.length); at < Math.min(end, tailAt); ) {
    const take = Math.min(FILLER_BYTES, Math.min(end, tailAt) - at);
    plan.add(filler.subarray(0, take));
    at += take;
  }
  if (end > tailAt) plan.add(tail.subarray(Math.max(offset, tailAt) - tailAt, end - tailAt));
}

interface MetaBox {
  /** The box's start and end in the file, and where its payload starts. */
  start: number;
  end: number;
  payload: number;
}

/**
 * The top-level `meta` box, from the box headers alone: it may follow `mdat`. Every top-level box
 * must lie inside the file, and there must be one `meta` box only (a second could hold what the
 * first does not).
 */
async function topLevelMeta(file: Windowed, size: number, pacer: Pacer): Promise<MetaBox> {
  let meta: MetaBox | undefined;
  let at = 0;
  for (let boxes = 0; at < size; boxes++) {
    if (boxes >= AVIF_MAX_TOP_BOXES) throw bad(`malformed (more than ${AVIF_MAX_TOP_BOXES} top-level boxes)`);
    const h = file.peek(at, 8) ?? (await file.at(at, 8));
    if (!h) throw bad('truncated (a box header runs past the end of the file)');
    let boxSize = h.b.readUInt32BE(h.i);
    const type = h.b.toString('latin1', h.i + 4, h.i + 8);
    let header = 8;
    if (boxSize === 1) {
      const large = file.peek(at, 16) ?? (await file.at(at, 16));
      if (!large) throw bad(`truncated (the ${type} box header runs past the end of the file)`);
      const big = large.b.readBigUInt64BE(large.i + 8);
      if (big > BigInt(size - at)) throw bad(`truncated (the ${type} box runs past the end of the file)`);
      boxSize = Number(big);
      header = 16;
    } else if (boxSize === 0) {
      boxSize = size - at; // to the end of the file
    }
    if (boxSize < header) throw bad(`malformed (the ${type} box is shorter than its header)`);
    if (at + boxSize > size) throw bad(`truncated (the ${type} box runs past the end of the file)`);
    if (type === 'meta') {
      if (meta) throw bad('malformed (more than one top-level meta box)');
      meta = { start: at, end: at + boxSize, payload: at + header };
    }
    at += boxSize;
    if (pacer.due(at)) await nextTurn();
  }
  if (!meta) throw bad('missing its meta box');
  return meta;
}

/**
 * The extents of every Exif and XMP item, in the file, each with the blank of its item. Every
 * `iinf` and `iloc` is read (there should be one of each): a reader that takes another than the
 * first must find nothing left either.
 */
async function metadataRuns(b: Buffer, meta: MetaBox, fileSize: number): Promise<Run[]> {
  const r = new BoxReader(b);
  const body = r.fullBox({ type: 'meta', start: meta.payload - meta.start, end: b.length }, 'meta');
  const iinf: Box[] = [];
  const iloc: Box[] = [];
  let idat: Box | undefined;
  for (const box of r.boxes(body.start, b.length)) {
    if (box.type === 'iinf') iinf.push(box);
    else if (box.type === 'iloc') iloc.push(box);
    else if (box.type === 'idat') {
      if (idat) throw bad('malformed (more than one idat box)');
      idat = box;
    }
  }
  const kinds = new Map<number, Kind>();
  for (const box of iinf) metadataItems(b, r.fullBox(box, 'iinf'), box.end, kinds);
  if (kinds.size === 0) return [];
  const idatIn = idat && { start: meta.start + idat.start, length: idat.end - idat.start };
  const runs: Run[] = [];
  for (const box of iloc) {
    const walk = { b, end: box.end, kinds, idat: idatIn, fileSize, runs };
    // The walk pauses after every stretch of entries and extents.
    for (const _ of ilocRuns(walk, r.fullBox(box, 'iloc'))) await nextTurn();
  }
  return runs;
}

/** Adds the Exif and XMP items `iinf` lists to `kinds`, by item id. */
function metadataItems(
  b: Buffer,
  iinf: { version: number; start: number },
  end: number,
  kinds: Map<number, Kind>,
): void {
  const countBytes = iinf.version === 0 ? 2 : 4;
  if (iinf.start + countBytes > end) throw bad('truncated (iinf)');
  // The entry count is not trusted: every infe box in iinf is looked at, up to the bound.
  const r = new BoxReader(b, AVIF_MAX_ITEMS);
  for (const box of r.boxes(iinf.start + countBytes, end)) {
    if (box.type !== 'infe') continue;
    const infe = r.fullBox(box, 'infe');
    const item = itemInfo(b, infe, box.end);
    if (item.kind && !kinds.has(item.id)) kinds.set(item.id, item.kind);
  }
}

/** An `infe` box's item id and whether it is EXIF or XMP (versions 0 and 1 have no item type). */
function itemInfo(
  b: Buffer,
  infe: { version: number; start: number },
  end: number,
): { id: number; kind: Kind | undefined } {
  const v = infe.version;
  let at = infe.start;
  const idBytes = v === 3 ? 4 : 2;
  if (at + idBytes + 2 + (v >= 2 ? 4 : 0) > end) throw bad('truncated (infe)');
  const id = idBytes === 2 ? b.readUInt16BE(at) : b.readUInt32BE(at);
  at += idBytes + 2; // item_ID, item_protection_index
  let type = 'mime';
  if (v >= 2) {
    type = b.toString('latin1', at, at + 4);
    at += 4;
  }
  // libvips takes an item type of "exif" in any case as EXIF, and the XMP content type too.
  if (type.toLowerCase() === 'exif') return { id, kind: 'Exif' };
  if (type !== 'mime') return { id, kind: undefined };
  at = cString(b, at, end).next; // item_name
  const contentType = cString(b, at, end);
  if (contentType.text.toLowerCase() !== 'application/rdf+xml') return { id, kind: undefined };
  const encoding = cString(b, contentType.next, end).text;
  if (encoding !== '')
    throw bad(`unsupported (the XMP item ${id} is compressed: ${JSON.stringify(encoding)})`);
  return { id, kind: 'XMP' };
}

/** A NUL-terminated string from `at`, or to `end` when it has no NUL; and where what follows starts. */
function cString(b: Buffer, at: number, end: number): { text: string; next: number } {
  if (at >= end) return { text: '', next: end };
  const nul = b.indexOf(0, at);
  const stop = nul === -1 || nul >= end ? end : nul;
  return { text: b.toString('utf8', at, stop), next: Math.min(end, stop + 1) };
}

/** Entries and extents the iloc walk goes through between turns of the event loop. */
const STEPS_PER_TURN = 4096;

interface IlocWalk {
  b: Buffer;
  /** Where the iloc box ends. */
  end: number;
  kinds: ReadonlyMap<number, Kind>;
  /** Where the idat payload starts in the file, and its length. */
  idat: { start: number; length: number } | undefined;
  fileSize: number;
  /** Where the Exif and XMP items' extents go. */
  runs: Run[];
}

/**
 * Adds the extents `iloc` (versions 0 to 2) gives for the items in `kinds` to `walk.runs`, each
 * checked to lie inside the file or its idat. Every entry is walked (they differ in size), the
 * others' extents skipped by their size. Yields after every STEPS_PER_TURN entries and extents,
 * for the caller to let other work run.
 */
function* ilocRuns(walk: IlocWalk, iloc: { version: number; start: number }): Generator<void> {
  const { b, end, kinds, idat, fileSize, runs } = walk;
  const v = iloc.version;
  if (v > 2) throw bad(`unsupported (iloc version ${v})`);
  let at = iloc.start;
  const need = (n: number) => {
    if (at + n > end) throw bad('truncated (iloc)');
  };
  const read = (n: number): number => {
    need(n);
    const value =
      n === 0
        ? 0
        : n === 2
          ? b.readUInt16BE(at)
          : n === 4
            ? b.readUInt32BE(at)
            : Number(b.readBigUInt64BE(at));
    at += n;
    return value;
  };
  need(2);
  const offsetSize = b[at]! >> 4;
  const lengthSize = b[at]! & 15;
  const baseOffsetSize = b[at + 1]! >> 4;
  const indexSize = v === 0 ? 0 : b[at + 1]! & 15;
  at += 2;
  for (const n of [offsetSize, lengthSize, baseOffsetSize, indexSize])
    if (n !== 0 && n !== 4 && n !== 8) throw bad(`malformed (an iloc field of ${n} bytes)`);
  const extentBytes = indexSize + offsetSize + lengthSize;
  const items = read(v < 2 ? 2 : 4);
  if (items > AVIF_MAX_ITEMS) throw bad(`malformed (iloc lists ${items} items, more than ${AVIF_MAX_ITEMS})`);
  let steps = 0;
  for (let i = 0; i < items; i++) {
    if (++steps % STEPS_PER_TURN === 0) yield;
    const id = read(v < 2 ? 2 : 4);
    const method = v === 0 ? 0 : read(2) & 15;
    const dataReference = read(2);
    const base = read(baseOffsetSize);
    const count = read(2);
    // A count the box cannot hold is refused here, before any of it is walked.
    need(count * extentBytes);
    const kind = kinds.get(id);
    if (!kind) {
      at += count * extentBytes;
      continue;
    }
    const what = `the ${kind} item ${id}`;
    if (dataReference !== 0)
      throw bad(`unsupported (${what} is in another file: data_reference_index ${dataReference})`);
    if (method !== 0 && method !== 1)
      throw bad(`unsupported (${what} has iloc construction_method ${method})`);
    if (method === 1 && !idat) throw bad(`malformed (${what} is in an idat box there is not)`);
    if (runs.length + count > AVIF_MAX_METADATA_EXTENTS)
      throw bad(`malformed (more than ${AVIF_MAX_METADATA_EXTENTS} extents of Exif and XMP items)`);
    // Its blank depends on its whole length, known once its extents are walked.
    const item: Item = { length: 0, blank: blankOf(kind, 0) };
    for (let e = 0; e < count; e++) {
      if (++steps % STEPS_PER_TURN === 0) yield;
      at += indexSize;
      const offset = base + read(offsetSize);
      const length = read(lengthSize);
      if (length === 0) throw bad(`unsupported (an extent of ${what} of length 0, "to the end")`);
      let from = offset;
      if (method === 1) {
        if (offset + length > idat!.length)
          throw bad(`malformed (an extent of ${what} runs past the end of idat)`);
        from = idat!.start + offset;
      } else if (offset + length > fileSize) {
        throw bad(`truncated (an extent of ${what} runs past the end of the file)`);
      }
      runs.push({ from, to: from + length, at: item.length, item });
      item.length += length;
    }
    item.blank = blankOf(kind, item.length);
  }
}
