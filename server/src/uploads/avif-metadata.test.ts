import sharp, { type Sharp } from 'sharp';
import { describe, expect, it } from 'vitest';
import { makeAvif } from '../../test/fixtures/images.js';
import { applyPlan, countingTurns, planSource } from '../../test/fixtures/stored-plan.js';
import { UploadBody } from '../images/upload.js';
import { avifSize } from './avif.js';
import {
  AVIF_MAX_ITEMS,
  AVIF_MAX_METADATA_EXTENTS,
  AVIF_META_MAX_BYTES,
  strippedAvif,
} from './avif-metadata.js';
import { isAnimated } from './dimensions.js';
import { type StoredPlan, storedSize } from './stored-bytes.js';

// ---- ISO BMFF, as the tests take files apart and put them back together -------------------------

const u16 = (n: number) => {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
};
const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
};
const box = (type: string, ...parts: Buffer[]) => {
  const body = Buffer.concat(parts);
  return Buffer.concat([u32(body.length + 8), Buffer.from(type, 'latin1'), body]);
};
const fullBox = (type: string, version: number, flags: number, ...parts: Buffer[]) =>
  box(type, Buffer.from([version, (flags >> 16) & 0xff, (flags >> 8) & 0xff, flags & 0xff]), ...parts);

interface BoxAt {
  type: string;
  start: number;
  payload: number;
  end: number;
}

/** The boxes between start and end (32-bit sizes: what sharp writes). */
function boxesIn(b: Buffer, start: number, end: number): BoxAt[] {
  const out: BoxAt[] = [];
  for (let at = start; at + 8 <= end; ) {
    const size = b.readUInt32BE(at);
    out.push({ type: b.toString('latin1', at + 4, at + 8), start: at, payload: at + 8, end: at + size });
    at += size;
  }
  return out;
}
const only = (boxes: BoxAt[], type: string) => boxes.find((x) => x.type === type)!;
const metaOf = (b: Buffer) => only(boxesIn(b, 0, b.length), 'meta');
const metaChildren = (b: Buffer) => {
  const meta = metaOf(b);
  return boxesIn(b, meta.payload + 4, meta.end);
};

interface Extent {
  offset: number;
  length: number;
}
interface Loc {
  id: number;
  method: number;
  dref: number;
  base: number;
  extents: Extent[];
}

/** The entries of an iloc box (offset, length and base offsets of 0, 4 or 8 bytes; no index). */
function parseIloc(b: Buffer, iloc: BoxAt): Loc[] {
  const v = b[iloc.payload]!;
  let at = iloc.payload + 4;
  const sizes = [b[at]! >> 4, b[at]! & 15, b[at + 1]! >> 4];
  at += 2;
  const read = (n: number) => {
    const x =
      n === 0
        ? 0
        : n === 2
          ? b.readUInt16BE(at)
          : n === 4
            ? b.readUInt32BE(at)
            : Number(b.readBigUInt64BE(at));
    at += n;
    return x;
  };
  const items: Loc[] = [];
  for (let i = 0, n = read(v < 2 ? 2 : 4); i < n; i++) {
    const id = read(v < 2 ? 2 : 4);
    const method = v === 0 ? 0 : read(2) & 15;
    const dref = read(2);
    const base = read(sizes[2]!);
    const extents: Extent[] = [];
    for (let e = 0, count = read(2); e < count; e++)
      extents.push({ offset: read(sizes[0]!), length: read(sizes[1]!) });
    items.push({ id, method, dref, base, extents });
  }
  return items;
}

/** An iloc box of `version` (1 or 2) with 4-byte offsets and lengths, no base offset, no index. */
function ilocBox(version: number, items: Loc[]): Buffer {
  const id = (n: number) => (version < 2 ? u16(n) : u32(n));
  return fullBox(
    'iloc',
    version,
    0,
    Buffer.from([0x44, 0x00]),
    id(items.length),
    // One buffer: a file of many extents has too many parts to pass as arguments.
    Buffer.concat(
      items.flatMap((l) => [
        id(l.id),
        u16(l.method),
        u16(l.dref),
        u16(l.extents.length),
        ...l.extents.flatMap((e) => [u32(e.offset), u32(e.length)]),
      ]),
    ),
  );
}

/** The item types iinf lists: the four-character type, or `mime:` and the content type. */
function itemTypes(b: Buffer): Map<number, string> {
  const iinf = only(metaChildren(b), 'iinf');
  const types = new Map<number, string>();
  const countBytes = b[iinf.payload] === 0 ? 2 : 4;
  for (const infe of boxesIn(b, iinf.payload + 4 + countBytes, iinf.end)) {
    const v = b[infe.payload]!;
    let at = infe.payload + 4;
    const id = v === 3 ? b.readUInt32BE(at) : b.readUInt16BE(at);
    at += (v === 3 ? 4 : 2) + 2;
    const type = b.toString('latin1', at, at + 4);
    if (type === 'mime') {
      const name = b.indexOf(0, at + 4);
      types.set(id, `mime:${b.toString('latin1', name + 1, b.indexOf(0, name + 1))}`);
    } else {
      types.set(id, type);
    }
  }
  return types;
}
const idOf = (b: Buffer, type: string) => [...itemTypes(b)].find(([, t]) => t === type)![0];
const XMP_TYPE = 'mime:application/rdf+xml';

/** An item's bytes, read as iloc says (in the file, or in idat). */
function itemBytes(b: Buffer, id: number): Buffer {
  const children = metaChildren(b);
  const loc = parseIloc(b, only(children, 'iloc')).find((l) => l.id === id)!;
  const idat = children.find((c) => c.type === 'idat');
  const origin = loc.method === 1 ? idat!.payload : 0;
  return Buffer.concat(
    loc.extents.map((e) => b.subarray(origin + loc.base + e.offset, origin + loc.base + e.offset + e.length)),
  );
}

/**
 * `src` (ftyp, meta, mdat, as sharp writes it) laid out again: each item one extent, those in
 * `toIdat` stored in the meta box's idat (construction_method 1), the others in mdat; the meta box
 * after mdat when `metaLast`. `edit` may change the final iloc entries (keeping their number).
 */
function rebuilt(
  src: Buffer,
  opts: { toIdat?: number[]; metaLast?: boolean; version?: number; edit?: (items: Loc[]) => void } = {},
): Buffer {
  const top = boxesIn(src, 0, src.length);
  const ftyp = src.subarray(0, only(top, 'ftyp').end);
  const children = metaChildren(src);
  const locs = parseIloc(src, only(children, 'iloc'));
  const data = new Map(locs.map((l) => [l.id, itemBytes(src, l.id)]));
  const inIdat = new Set(opts.toIdat ?? []);
  const idatData = Buffer.concat(locs.filter((l) => inIdat.has(l.id)).map((l) => data.get(l.id)!));
  const mdatData = Buffer.concat(locs.filter((l) => !inIdat.has(l.id)).map((l) => data.get(l.id)!));
  const version = opts.version ?? 1;
  const build = (mdatPayload: number) => {
    let inIdatAt = 0;
    let inMdatAt = mdatPayload;
    const items = locs.map((l): Loc => {
      const length = data.get(l.id)!.length;
      const idat = inIdat.has(l.id);
      const offset = idat ? inIdatAt : inMdatAt;
      if (idat) inIdatAt += length;
      else inMdatAt += length;
      return { id: l.id, method: idat ? 1 : 0, dref: 0, base: 0, extents: [{ offset, length }] };
    });
    return items;
  };
  const metaWith = (items: Loc[]) =>
    fullBox(
      'meta',
      0,
      0,
      ...children
        .filter((c) => c.type !== 'idat')
        .map((c) => (c.type === 'iloc' ? ilocBox(version, items) : src.subarray(c.start, c.end))),
      ...(idatData.length ? [box('idat', idatData)] : []),
    );
  const metaLength = metaWith(build(0)).length;
  const mdatStart = opts.metaLast ? ftyp.length : ftyp.length + metaLength;
  const items = build(mdatStart + 8);
  opts.edit?.(items);
  const meta = metaWith(items);
  const mdat = box('mdat', mdatData);
  return Buffer.concat(opts.metaLast ? [ftyp, mdat, meta] : [ftyp, meta, mdat]);
}

/**
 * An iloc (version 2) of `items` items (ids from 1000) of `extents` extents each, every field 0
 * bytes wide: the extents take no room in the box.
 */
function zeroWide(items: number, extents: number): Buffer {
  // Each entry: item_ID (4), construction_method (2), data_reference_index (2), extent_count (2).
  const rows = Buffer.alloc(items * 10);
  for (let i = 0; i < items; i++) {
    rows.writeUInt32BE(1000 + i, i * 10);
    rows.writeUInt16BE(extents, i * 10 + 8);
  }
  return fullBox('iloc', 2, 0, Buffer.from([0, 0]), u32(items), rows);
}

/** `avif` with its meta box's `type` child replaced by `bytes` (offsets elsewhere left as they are). */
function withMetaChild(avif: Buffer, type: string, bytes: Buffer): Buffer {
  const meta = metaOf(avif);
  const children = metaChildren(avif);
  const newMeta = fullBox(
    'meta',
    0,
    0,
    ...children.map((c) => (c.type === type ? bytes : avif.subarray(c.start, c.end))),
  );
  return Buffer.concat([avif.subarray(0, meta.start), newMeta, avif.subarray(meta.end)]);
}

// ---- images ---------------------------------------------------------------------------------------

const XMP_PACKET =
  '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">' +
  '<rdf:Description xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:exif="http://ns.adobe.com/exif/1.0/"' +
  ' dc:creator="SignetXmpAuthor" exif:GPSLatitude="48,51.4N"/></rdf:RDF></x:xmpmeta>';

/** What a phone leaves: camera, author, GPS. */
const phoneMetadata = (img: Sharp) =>
  img
    .withExif({
      IFD0: { Make: 'SignetCam', Model: 'X1', Artist: 'SignetArtist', Copyright: 'SignetCopyright' },
      IFD3: { GPSLatitudeRef: 'N', GPSLatitude: '48/1 51/1 2400/100' },
    })
    .withXmp(XMP_PACKET);
const TRACES = [
  'SignetCam',
  'SignetArtist',
  'SignetCopyright',
  'SignetXmpAuthor',
  'GPSLatitude',
  'rdf:Description',
];

function noise(width: number, height: number): Sharp {
  const raw = Buffer.alloc(width * height * 3);
  for (let i = 0; i < raw.length; i++) raw[i] = (i * 37) % 251;
  return sharp(raw, { raw: { width, height, channels: 3 } });
}

/** A 64×48 AVIF with EXIF (GPS included) and XMP, as sharp (libheif) writes it; irot when turned. */
const phoneAvif = (orientation = 1) =>
  phoneMetadata(noise(64, 48).withMetadata({ orientation })).avif().toBuffer();

/** Decoded pixels: equal pixels mean the image data was not touched. */
const pixels = (bytes: Buffer) => sharp(bytes).raw().toBuffer();

async function stripped(bytes: Buffer): Promise<{ out: Buffer; plan: StoredPlan }> {
  const plan = await strippedAvif(planSource(bytes));
  const out = applyPlan(bytes, plan);
  expect(storedSize(plan)).toBe(out.length);
  // Blanked in place: the same length, so every offset in the file still holds.
  expect(out.length).toBe(bytes.length);
  return { out, plan };
}

/** A TIFF's IFD0 entry count and next-IFD offset (little-endian, as the blank is written). */
function ifd0(tiff: Buffer): { entries: number; next: number } {
  const le = tiff.toString('latin1', 0, 2) === 'II';
  const at = le ? tiff.readUInt32LE(4) : tiff.readUInt32BE(4);
  const entries = le ? tiff.readUInt16LE(at) : tiff.readUInt16BE(at);
  const nextAt = at + 2 + 12 * entries;
  return { entries, next: le ? tiff.readUInt32LE(nextAt) : tiff.readUInt32BE(nextAt) };
}

async function refusal(bytes: Buffer): Promise<Error> {
  const err = await strippedAvif(planSource(bytes)).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(Error);
  expect((err as Error).name).toBe('ImageHeaderError');
  expect((err as Error).message).toMatch(/^The AVIF header is /);
  return err as Error;
}

describe('strippedAvif: an AVIF without its EXIF and XMP, blanked in place', () => {
  it('the same length and pixels; no camera, author or GPS left, in the metadata or the bytes', async () => {
    const avif = await phoneAvif();
    const types = [...itemTypes(avif).values()];
    expect(types).toEqual(expect.arrayContaining(['av01', 'Exif', XMP_TYPE]));
    const before = await sharp(avif).metadata();
    expect(before.exif && before.xmp).toBeTruthy();
    for (const s of TRACES) expect(avif.includes(s), s).toBe(true);
    // The EXIF has a GPS IFD (its pointer, tag 0x8825, LONG): the coordinates are rationals.
    const exifId = idOf(avif, 'Exif');
    const xmpId = idOf(avif, XMP_TYPE);
    const gpsPointer = Buffer.from([0x25, 0x88, 4, 0, 1, 0, 0, 0]);
    expect(itemBytes(avif, exifId).includes(gpsPointer)).toBe(true);

    const { out, plan } = await stripped(avif);
    expect((await pixels(out)).equals(await pixels(avif))).toBe(true);
    for (const s of TRACES) expect(out.includes(s), s).toBe(false);
    // Only the two items' bytes changed, and only they are made here: the rest is the upload's.
    const made = plan.pieces.filter((p) => Buffer.isBuffer(p)).reduce((n, p) => n + p.length, 0);
    expect(made).toBe(itemBytes(avif, exifId).length + itemBytes(avif, xmpId).length);
    const changed = [...out.keys()].filter((i) => out[i] !== avif[i]);
    const exifAt = avif.indexOf(itemBytes(avif, exifId));
    const xmpAt = avif.indexOf(itemBytes(avif, xmpId));
    const inItem = (i: number, at: number, id: number) => i >= at && i < at + itemBytes(avif, id).length;
    expect(changed.every((i) => inItem(i, exifAt, exifId) || inItem(i, xmpAt, xmpId))).toBe(true);

    // The items are what libvips reads as an empty EXIF and an empty XMP packet.
    const exif = itemBytes(out, exifId);
    expect(exif.readUInt32BE(0)).toBe(0); // exif_tiff_header_offset
    expect(exif.toString('latin1', 4, 8)).toBe('II*\0');
    expect(ifd0(exif.subarray(4))).toEqual({ entries: 0, next: 0 });
    expect(exif.subarray(18).every((x) => x === 0)).toBe(true);
    expect(exif.includes(gpsPointer)).toBe(false);
    const xmp = itemBytes(out, xmpId).toString('utf8');
    expect(xmp).toMatch(
      /^<\?xpacket begin="\uFEFF" id="W5M0MpCehiHzreSzNTczkc9d"\?>\n<x:xmpmeta xmlns:x="adobe:ns:meta\/"\/>\n +<\?xpacket end="w"\?>$/,
    );

    const after = await sharp(out).metadata();
    expect(after).toMatchObject({ width: before.width, height: before.height, format: 'heif' });
    expect(after.orientation).toBeUndefined();
    // sharp hands back the EXIF libvips read (after the 4-byte offset): a TIFF header, no entries.
    expect(after.exif?.toString('latin1', 0, 4)).toBe('II*\0');
    expect(ifd0(after.exif!)).toEqual({ entries: 0, next: 0 });
    for (const s of TRACES) expect(after.exif!.includes(s), s).toBe(false);
    expect(after.xmp?.toString() ?? '').not.toMatch(/Signet|GPS|rdf:Description/);
    expect(after.icc?.equals(before.icc!) ?? before.icc === undefined).toBe(true);
  });

  it('an AVIF without EXIF or XMP is stored as it came: one range, the whole file', async () => {
    const plain = await noise(40, 30).avif().toBuffer();
    expect([...itemTypes(plain).values()]).toEqual(['av01']);
    const plan = await strippedAvif(planSource(plain));
    expect(plan.pieces).toEqual([{ from: 0, to: plain.length }]);
    // And the hand-made fixture the upload tests store (libavif's layout, an irot too).
    for (const made of [makeAvif(), makeAvif({ rotate: true })]) {
      expect((await strippedAvif(planSource(made))).pieces).toEqual([{ from: 0, to: made.length }]);
    }
  });

  it('the irot orientation is untouched: the same size through the header reader, turned', async () => {
    const avif = await phoneAvif(6);
    const before = avifSize(avif);
    expect(before).toEqual({ width: 48, height: 64 });
    const { out } = await stripped(avif);
    expect(avifSize(out)).toEqual(before);
    const meta = await sharp(out).metadata();
    expect({ width: meta.width, height: meta.height }).toEqual(before);
    expect((await pixels(out)).equals(await pixels(avif))).toBe(true);
  });

  it('an EXIF orientation without irot is ignored by libvips (HEIF: informational), so none is kept', async () => {
    const avif = await noise(64, 48)
      .withExif({ IFD0: { Artist: 'SignetArtist' } })
      .avif()
      .toBuffer();
    // libvips writes Orientation (0x0112, SHORT, count 1) as 1 in an AVIF's EXIF (it turns the
    // image with irot): made 6 here, as another writer might leave it.
    const tag = (value: number) => Buffer.from([0x12, 0x01, 3, 0, 1, 0, 0, 0, value, 0]);
    const at = avif.indexOf(tag(1), avif.indexOf(itemBytes(avif, idOf(avif, 'Exif'))));
    expect(at).toBeGreaterThan(0);
    avif[at + 8] = 6;
    expect(itemBytes(avif, idOf(avif, 'Exif')).includes(tag(6))).toBe(true);
    expect(avif.includes('irot')).toBe(false);
    const before = await sharp(avif).metadata();
    expect(before).toMatchObject({ width: 64, height: 48 });
    expect(before.orientation).toBeUndefined();
    expect(avifSize(avif)).toEqual({ width: 64, height: 48 });
    const { out } = await stripped(avif);
    expect(out.includes(tag(6))).toBe(false);
    expect(await sharp(out).metadata()).toMatchObject({ width: 64, height: 48 });
    expect(avifSize(out)).toEqual({ width: 64, height: 48 });
  });

  it('an Exif item inside the meta box (idat, construction_method 1) is blanked too', async () => {
    const src = await phoneAvif();
    const exifId = idOf(src, 'Exif');
    const avif = rebuilt(src, { toIdat: [exifId] });
    // The hand-made file is a real one: libheif reads its EXIF from idat.
    const iloc = parseIloc(avif, only(metaChildren(avif), 'iloc'));
    expect(iloc.find((l) => l.id === exifId)!.method).toBe(1);
    expect((await sharp(avif).metadata()).exif?.includes('SignetArtist')).toBe(true);
    expect(only(metaChildren(avif), 'idat')).toBeDefined();

    const { out } = await stripped(avif);
    for (const s of TRACES) expect(out.includes(s), s).toBe(false);
    const exif = itemBytes(out, exifId);
    expect(exif.toString('latin1', 4, 8)).toBe('II*\0');
    expect(ifd0(exif.subarray(4))).toEqual({ entries: 0, next: 0 });
    expect((await pixels(out)).equals(await pixels(src))).toBe(true);
  });

  it('a meta box after mdat: found by the box headers, blanked the same way', async () => {
    const src = await phoneAvif();
    const avif = rebuilt(src, { metaLast: true, version: 2 });
    expect(boxesIn(avif, 0, avif.length).map((x) => x.type)).toEqual(['ftyp', 'mdat', 'meta']);
    const { out } = await stripped(avif);
    for (const s of TRACES) expect(out.includes(s), s).toBe(false);
    expect((await pixels(out)).equals(await pixels(src))).toBe(true);
  });

  it('an item in several extents is blanked across them, as one EXIF block', async () => {
    const src = await phoneAvif();
    const exifId = idOf(src, 'Exif');
    // The Exif item in two extents, the second first in the file: the blank follows item order.
    const avif = rebuilt(src, {
      edit: (items) => {
        // One more extent makes the iloc 8 bytes longer, and mdat as much further on.
        for (const l of items) for (const e of l.extents) e.offset += 8;
        const exif = items.find((l) => l.id === exifId)!;
        const [whole] = exif.extents;
        const cut = 10;
        exif.extents = [
          { offset: whole!.offset + cut, length: whole!.length - cut },
          { offset: whole!.offset, length: cut },
        ];
      },
    });
    // A real file still: libheif reads the EXIF from its two extents.
    expect((await sharp(avif).metadata()).exif?.includes('SignetArtist')).toBe(true);
    const { out } = await stripped(avif);
    const exif = itemBytes(out, exifId);
    expect(exif.readUInt32BE(0)).toBe(0);
    expect(exif.toString('latin1', 4, 8)).toBe('II*\0');
    expect(ifd0(exif.subarray(4))).toEqual({ entries: 0, next: 0 });
    for (const s of TRACES) expect(out.includes(s), s).toBe(false);
    expect((await pixels(out)).equals(await pixels(src))).toBe(true);
  });

  it('overlapping extents (no writer makes them) are blanked once; the kept ranges still go forward', async () => {
    const src = await phoneAvif();
    const exifId = idOf(src, 'Exif');
    const xmpId = idOf(src, XMP_TYPE);
    let exifExtent: Extent | undefined;
    // The XMP item starts inside the Exif item and runs on past it.
    const avif = rebuilt(src, {
      edit: (items) => {
        const exif = items.find((l) => l.id === exifId)!;
        const xmp = items.find((l) => l.id === xmpId)!;
        exifExtent = exif.extents[0]!;
        const xmpEnd = xmp.extents[0]!.offset + xmp.extents[0]!.length;
        const from = exifExtent.offset + 40;
        xmp.extents[0] = { offset: from, length: xmpEnd - from };
      },
    });
    const { out, plan } = await stripped(avif);
    const ranges = plan.pieces.filter((p): p is { from: number; to: number } => !Buffer.isBuffer(p));
    for (let i = 1; i < ranges.length; i++) expect(ranges[i]!.from).toBeGreaterThan(ranges[i - 1]!.to);
    // The Exif item is blanked whole (it comes first in the file), the XMP item's rest after it.
    const exif = out.subarray(exifExtent!.offset, exifExtent!.offset + exifExtent!.length);
    expect(exif.toString('latin1', 4, 8)).toBe('II*\0');
    expect(exif.subarray(18).every((x) => x === 0)).toBe(true);
    expect(out.toString('latin1', out.length - 19)).toBe('<?xpacket end="w"?>');
    for (const s of TRACES) expect(out.includes(s), s).toBe(false);
    expect((await pixels(out)).equals(await pixels(src))).toBe(true);
  });

  it('a huge XMP item is blanked with shared pieces, not a buffer of its size', async () => {
    const filler = 'x'.repeat(6 * 1024 * 1024);
    const packet = XMP_PACKET.replace('SignetXmpAuthor', `SignetXmpAuthor ${filler}`);
    const avif = await noise(32, 24).withXmp(packet).avif().toBuffer();
    const xmpId = idOf(avif, XMP_TYPE);
    expect(itemBytes(avif, xmpId).length).toBeGreaterThan(6 * 1024 * 1024);

    const { out, plan } = await stripped(avif);
    expect(out.includes('SignetXmpAuthor')).toBe(false);
    expect(out.includes('xxxxxxxx')).toBe(false);
    expect((await pixels(out)).equals(await pixels(avif))).toBe(true);
    const made = plan.pieces.filter((p): p is Buffer => Buffer.isBuffer(p));
    const madeBytes = made.reduce((n, p) => n + p.length, 0);
    expect(madeBytes).toBe(itemBytes(avif, xmpId).length);
    // The memory behind the made pieces: a few shared buffers, not 6 MB.
    const memory = new Set(made.map((p) => p.buffer));
    const held = [...memory].reduce((n, m) => n + m.byteLength, 0);
    console.info(
      `huge XMP: ${madeBytes} bytes blanked in ${made.length} pieces over ${held} bytes of memory`,
    );
    expect(held).toBeLessThan(256 * 1024);
    expect((await sharp(out).metadata()).xmp?.toString()).toMatch(
      /^<\?xpacket begin=.*<\?xpacket end="w"\?>$/s,
    );
  });

  it('an Exif item too short for an empty TIFF header becomes zeros; libvips still loads the file', async () => {
    const src = await phoneAvif();
    const exifId = idOf(src, 'Exif');
    const avif = rebuilt(src, {
      edit: (items) => {
        items.find((l) => l.id === exifId)!.extents[0]!.length = 12;
      },
    });
    const { out } = await stripped(avif);
    expect(itemBytes(out, exifId).equals(Buffer.alloc(12))).toBe(true);
    expect((await pixels(out)).equals(await pixels(src))).toBe(true);
  });

  it('malformed structure around an Exif or XMP item is an ImageHeaderError, never stored unstripped', async () => {
    const src = await phoneAvif();
    const exifId = idOf(src, 'Exif');
    const xmpId = idOf(src, XMP_TYPE);
    const editExif = (edit: (l: Loc) => void) =>
      rebuilt(src, { edit: (items) => edit(items.find((l) => l.id === exifId)!) });
    const iloc = only(metaChildren(src), 'iloc');
    const ilocBytes = src.subarray(iloc.start, iloc.end);
    const iinf = only(metaChildren(src), 'iinf');
    const iinfBytes = src.subarray(iinf.start, iinf.end);
    /** `bytes` as a box whose payload is cut to `keep` bytes (its size says so). */
    const cut = (bytes: Buffer, keep: number) => {
      const out = Buffer.from(bytes.subarray(0, 8 + keep));
      out.writeUInt32BE(out.length, 0);
      return out;
    };
    const cases: [string, Buffer, RegExp][] = [
      [
        'an extent past the end of the file',
        editExif((l) => {
          l.extents[0]!.length = 1 << 20;
        }),
        /truncated \(an extent of the Exif item \d+ runs past the end of the file\)/,
      ],
      [
        'construction_method 2',
        editExif((l) => {
          l.method = 2;
        }),
        /the Exif item \d+ has iloc construction_method 2/,
      ],
      [
        'a data reference other than this file',
        editExif((l) => {
          l.dref = 1;
        }),
        /the Exif item \d+ is in another file: data_reference_index 1/,
      ],
      [
        'an extent of length 0',
        editExif((l) => {
          l.extents[0]!.length = 0;
        }),
        /of length 0/,
      ],
      [
        'an idat extent past the idat box',
        rebuilt(src, {
          toIdat: [xmpId],
          edit: (items) => {
            items.find((l) => l.id === xmpId)!.extents[0]!.offset = 1;
          },
        }),
        /an extent of the XMP item \d+ runs past the end of idat/,
      ],
      [
        'construction_method 1 without an idat box',
        editExif((l) => {
          l.method = 1;
        }),
        /the Exif item \d+ is in an idat box there is not/,
      ],
      [
        'an iloc cut inside its entries',
        withMetaChild(src, 'iloc', cut(ilocBytes, ilocBytes.length - 8 - 6)),
        /truncated \(iloc\)/,
      ],
      [
        'an iinf cut inside an infe',
        withMetaChild(src, 'iinf', cut(iinfBytes, iinfBytes.length - 8 - 5)),
        /truncated/,
      ],
      [
        'an iloc box running past the meta box',
        (() => {
          const out = Buffer.from(src);
          out.writeUInt32BE(ilocBytes.length + 10_000, iloc.start);
          return out;
        })(),
        /truncated/,
      ],
      [
        'a top-level box past the end of the file',
        src.subarray(0, src.length - 1),
        /the mdat box runs past the end of the file/,
      ],
      [
        'no meta box',
        Buffer.concat([src.subarray(0, metaOf(src).start), src.subarray(metaOf(src).end)]),
        /missing its meta box/,
      ],
      [
        'two meta boxes',
        Buffer.concat([src, src.subarray(metaOf(src).start, metaOf(src).end)]),
        /more than one top-level meta box/,
      ],
    ];
    for (const [name, bytes, message] of cases) {
      const err = await refusal(bytes);
      expect(err.message, name).toMatch(message);
    }
    // A lone meta box over the bound.
    const big = Buffer.concat([
      src.subarray(0, metaOf(src).start),
      fullBox(
        'meta',
        0,
        0,
        ...metaChildren(src).map((c) => src.subarray(c.start, c.end)),
        box('free', Buffer.alloc(AVIF_META_MAX_BYTES)),
      ),
      src.subarray(metaOf(src).end),
    ]);
    expect((await refusal(big)).message).toMatch(/a meta box of \d+ bytes, more than 1048576/);
  });

  it('huge declared counts are refused without walking them', async () => {
    const src = await phoneAvif();
    const exifId = idOf(src, 'Exif');
    // An Exif entry claiming 65,535 extents in a box that holds one.
    const claimed = ilocBox(1, [
      { id: exifId, method: 0, dref: 0, base: 0, extents: [{ offset: 0, length: 4 }] },
    ]);
    claimed.writeUInt16BE(0xffff, claimed.length - 10);
    expect((await refusal(withMetaChild(src, 'iloc', claimed))).message).toMatch(/truncated \(iloc\)/);

    const started = performance.now();
    const huge = zeroWide(1, 0);
    huge.writeUInt32BE(0xffffffff, 14); // item_count
    expect((await refusal(withMetaChild(src, 'iloc', huge))).message).toMatch(
      `iloc lists 4294967295 items, more than ${AVIF_MAX_ITEMS}`,
    );
    expect(performance.now() - started).toBeLessThan(1000);
  });

  it('a compressed XMP item is refused (its blank would not inflate, and libvips would fail on it)', async () => {
    const src = await phoneAvif();
    const iinf = only(metaChildren(src), 'iinf');
    const head = 4 + (src[iinf.payload] === 0 ? 2 : 4); // version, flags, entry_count
    const infes = boxesIn(src, iinf.payload + head, iinf.end);
    const xmpInfe = infes.find((x) => src.subarray(x.start, x.end).includes('application/rdf+xml'))!;
    const deflated = box(
      'infe',
      src.subarray(xmpInfe.payload, xmpInfe.end - 1), // without the empty content_encoding's NUL
      Buffer.from('deflate\0', 'latin1'),
    );
    const newIinf = box(
      'iinf',
      src.subarray(iinf.payload, iinf.payload + head),
      ...infes.map((x) => (x === xmpInfe ? deflated : src.subarray(x.start, x.end))),
    );
    expect((await refusal(withMetaChild(src, 'iinf', newIinf))).message).toMatch(
      /the XMP item \d+ is compressed: "deflate"/,
    );
  });

  it(`at most ${AVIF_MAX_METADATA_EXTENTS} Exif and XMP extents; other items' extents are skipped by their size, with turns`, async () => {
    const src = await phoneAvif();
    const exifId = idOf(src, 'Exif');
    // An Exif item in one-byte extents over the file's first bytes (hostile, but within the
    // bounds): the stored file is broken, but holds nothing of what those bytes were.
    const inExtents = (n: number) =>
      withMetaChild(
        src,
        'iloc',
        ilocBox(1, [
          {
            id: exifId,
            method: 0,
            dref: 0,
            base: 0,
            extents: Array.from({ length: n }, (_, i) => ({ offset: i, length: 1 })),
          },
        ]),
      );
    const n = AVIF_MAX_METADATA_EXTENTS;
    const avif = inExtents(n);
    const { out } = await stripped(avif);
    // The first 18 bytes are the empty EXIF block, the rest of the item zeros; then the upload's.
    expect(out.subarray(4, 8).toString('latin1')).toBe('II*\0');
    expect(out.subarray(18, n).every((x) => x === 0)).toBe(true);
    expect(out.subarray(n).equals(avif.subarray(n))).toBe(true);
    expect((await refusal(inExtents(n + 1))).message).toMatch(
      `more than ${AVIF_MAX_METADATA_EXTENTS} extents of Exif and XMP items`,
    );

    // 60,000 entries declaring 65,535 extents each, 0 bytes wide (3.9 billion, in 600 KB): each
    // entry is one step, none is the Exif's or XMP's, so nothing is blanked.
    const many = withMetaChild(src, 'iloc', zeroWide(60_000, 65_535));
    const {
      result: plan,
      turns,
      longestMs: longest,
      ms,
    } = await countingTurns(() => strippedAvif(planSource(many)));
    console.info(
      `60,000 iloc entries: ${ms.toFixed(1)} ms, ${turns} turns, longest stretch ${longest.toFixed(1)} ms`,
    );
    expect(turns).toBeGreaterThan(10);
    expect((plan as StoredPlan).pieces).toEqual([{ from: 0, to: many.length }]);
  });

  it('an image sequence (avis) has its meta items blanked the same way', async () => {
    const src = await phoneAvif();
    const seq = Buffer.from(src);
    seq.write('avis', 8, 'latin1'); // the major brand: sharp does not write sequences
    expect(isAnimated('avif', seq)).toBe(true);
    const { out } = await stripped(seq);
    for (const s of TRACES) expect(out.includes(s), s).toBe(false);
  });

  it('through an upload body in small parts: the stream yields exactly the stored bytes', async () => {
    const avif = rebuilt(await phoneAvif(6), { metaLast: true });
    const parts: Buffer[] = [];
    for (let at = 0; at < avif.length; at += 97) parts.push(avif.subarray(at, at + 97));
    const body = new UploadBody(new Blob(parts.map((p) => new Uint8Array(p))), 1 << 20);
    const plan = await strippedAvif(body);
    const streamed: Buffer[] = [];
    for await (const chunk of body.stream(plan)) streamed.push(chunk as Buffer);
    const out = Buffer.concat(streamed);
    expect(out.equals(applyPlan(avif, plan))).toBe(true);
    expect(out.length).toBe(avif.length);
    for (const s of TRACES) expect(out.includes(s), s).toBe(false);
    expect((await pixels(out)).equals(await pixels(avif))).toBe(true);
  });
});
