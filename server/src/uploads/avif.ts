import { type Dimensions, ImageHeaderError } from './header-error.js';

export interface Box {
  type: string;
  /** Payload start and end (after the size/type header). */
  start: number;
  end: number;
}

const bad = (detail: string) => new ImageHeaderError('avif', detail);

/**
 * Boxes looked at per file at most. A real AVIF has a few dozen (a grid image some hundreds of
 * properties); without a bound, 20 MB of empty 8-byte boxes is millions of objects per upload.
 */
export const MAX_BOXES = 4096;
/** `ipma` entries walked looking for the primary item at most (item ids are mostly 16-bit). */
const MAX_IPMA_ENTRIES = 65536;

/**
 * Reads ISO BMFF boxes with every offset checked against the box it belongs to, so malformed
 * input is an ImageHeaderError and never a RangeError from reading past the buffer. Shared with
 * the metadata strip (avif-metadata.ts), which walks a list of items with a bound of its own.
 */
export class BoxReader {
  private walked = 0;
  constructor(
    private readonly b: Buffer,
    private readonly maxBoxes = MAX_BOXES,
  ) {}

  /** The boxes between start and end, in order, read only as far as the caller iterates. */
  *boxes(start: number, end: number): Generator<Box> {
    const b = this.b;
    let at = start;
    while (at < end) {
      if (++this.walked > this.maxBoxes) throw bad(`malformed (more than ${this.maxBoxes} boxes)`);
      if (at + 8 > end) throw bad('truncated');
      let size = b.readUInt32BE(at);
      let header = 8;
      if (size === 1) {
        if (at + 16 > end) throw bad('truncated');
        const big = b.readBigUInt64BE(at + 8);
        if (big > BigInt(end - at)) throw bad('truncated');
        size = Number(big);
        header = 16;
      } else if (size === 0) {
        size = end - at; // to the end of the enclosing box
      }
      if (size < header || at + size > end) throw bad('truncated');
      yield { type: b.toString('latin1', at + 4, at + 8), start: at + header, end: at + size };
      at += size;
    }
  }

  /** The first box of a type between start and end (the rest is not walked). */
  find(start: number, end: number, type: string): Box | undefined {
    for (const box of this.boxes(start, end)) if (box.type === type) return box;
    return undefined;
  }

  /** The payload of a full box after its version and flags, which must be there. */
  fullBox(box: Box, what: string): { version: number; flags: number; start: number } {
    if (box.end - box.start < 4) throw bad(`malformed (${what})`);
    return { version: this.b[box.start]!, flags: this.b.readUIntBE(box.start + 1, 3), start: box.start + 4 };
  }
}

/**
 * The primary item's `ispe` (image spatial extent), as HEIF says: `pitm` names the primary item,
 * `ipma` lists its properties by index into `ipco`. An `irot` of 90 or 270 degrees swaps the sides.
 */
export function avifSize(b: Buffer): Dimensions {
  const r = new BoxReader(b);
  const meta = r.find(0, b.length, 'meta');
  if (!meta) throw bad('missing its meta box');
  const metaBody = r.fullBox(meta, 'meta');
  let pitm: Box | undefined;
  let iprp: Box | undefined;
  for (const box of r.boxes(metaBody.start, meta.end)) {
    if (box.type === 'pitm') pitm ??= box;
    else if (box.type === 'iprp') iprp ??= box;
    if (pitm && iprp) break;
  }
  if (!pitm || !iprp) throw bad('missing the primary item');
  // item_ID is 16 bits in version 0 and 32 bits after: the box must hold all of it.
  const p = r.fullBox(pitm, 'pitm');
  const idBytes = p.version === 0 ? 2 : 4;
  if (p.start + idBytes > pitm.end) throw bad('malformed (pitm)');
  const primary = idBytes === 2 ? b.readUInt16BE(p.start) : b.readUInt32BE(p.start);

  let ipco: Box | undefined;
  let ipma: Box | undefined;
  for (const box of r.boxes(iprp.start, iprp.end)) {
    if (box.type === 'ipco') ipco ??= box;
    else if (box.type === 'ipma') ipma ??= box;
    if (ipco && ipma) break;
  }
  if (!ipco || !ipma) throw bad('missing item properties');

  const indexes = propertyIndexes(b, r.fullBox(ipma, 'ipma'), ipma.end, primary);
  // Only the properties up to the highest index used are walked.
  const highest = Math.max(0, ...indexes);
  const properties: Box[] = [];
  for (const box of r.boxes(ipco.start, ipco.end)) {
    properties.push(box);
    if (properties.length >= highest) break;
  }

  let width = 0;
  let height = 0;
  let quarterTurn = false;
  for (const index of indexes) {
    const prop = properties[index - 1];
    if (!prop) throw bad('malformed (property index)');
    if (prop.type === 'ispe') {
      const ispe = r.fullBox(prop, 'ispe');
      if (ispe.start + 8 > prop.end) throw bad('malformed (ispe)');
      width = b.readUInt32BE(ispe.start);
      height = b.readUInt32BE(ispe.start + 4);
    } else if (prop.type === 'irot' && prop.end > prop.start) {
      quarterTurn = (b[prop.start]! & 1) === 1;
    }
  }
  if (width === 0 || height === 0) throw bad('missing the image size (ispe)');
  return quarterTurn ? { width: height, height: width } : { width, height };
}

/** The 1-based ipco indexes `ipma` associates with one item. */
function propertyIndexes(
  b: Buffer,
  ipma: { version: number; flags: number; start: number },
  end: number,
  item: number,
): number[] {
  const wideIndex = (ipma.flags & 1) === 1;
  const idBytes = ipma.version < 1 ? 2 : 4;
  let at = ipma.start;
  const need = (n: number) => {
    if (at + n > end) throw bad('truncated (ipma)');
  };
  need(4);
  const entries = b.readUInt32BE(at);
  at += 4;
  for (let e = 0; e < entries; e++) {
    if (e >= MAX_IPMA_ENTRIES) throw bad(`malformed (more than ${MAX_IPMA_ENTRIES} ipma entries)`);
    need(idBytes + 1);
    const id = idBytes === 2 ? b.readUInt16BE(at) : b.readUInt32BE(at);
    at += idBytes;
    const count = b[at++]!;
    need(count * (wideIndex ? 2 : 1));
    const indexes: number[] = [];
    for (let i = 0; i < count; i++) {
      indexes.push(wideIndex ? b.readUInt16BE(at) & 0x7fff : b[at]! & 0x7f);
      at += wideIndex ? 2 : 1;
    }
    if (id === item) return indexes;
  }
  throw bad('missing the properties of the primary item');
}
