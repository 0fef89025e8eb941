import { type Dimensions, ImageHeaderError } from './header-error.js';

interface Box {
  type: string;
  /** Payload start and end (after the size/type header). */
  start: number;
  end: number;
}

const bad = (detail: string) => new ImageHeaderError('avif', detail);

/** The ISO BMFF boxes between start and end; a box running past end means a truncated file. */
function boxes(b: Buffer, start: number, end: number): Box[] {
  const out: Box[] = [];
  let at = start;
  while (at < end) {
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
    out.push({ type: b.toString('latin1', at + 4, at + 8), start: at + header, end: at + size });
    at += size;
  }
  return out;
}

const find = (list: Box[], type: string) => list.find((x) => x.type === type);

/**
 * The primary item's `ispe` (image spatial extent), as HEIF says: `pitm` names the primary item,
 * `ipma` lists its properties by index into `ipco`. An `irot` of 90 or 270 degrees swaps the sides.
 */
export function avifSize(b: Buffer): Dimensions {
  const meta = find(boxes(b, 0, b.length), 'meta');
  if (!meta) throw bad('missing its meta box');
  const inMeta = boxes(b, meta.start + 4, meta.end); // meta is a full box: skip version/flags
  const pitm = find(inMeta, 'pitm');
  const iprp = find(inMeta, 'iprp');
  if (!pitm || !iprp) throw bad('missing the primary item');
  if (pitm.end - pitm.start < 6) throw bad('malformed (pitm)');
  const primary = b[pitm.start] === 0 ? b.readUInt16BE(pitm.start + 4) : b.readUInt32BE(pitm.start + 4);

  const inIprp = boxes(b, iprp.start, iprp.end);
  const ipco = find(inIprp, 'ipco');
  const ipma = find(inIprp, 'ipma');
  if (!ipco || !ipma) throw bad('missing item properties');
  const properties = boxes(b, ipco.start, ipco.end);

  let width = 0;
  let height = 0;
  let quarterTurn = false;
  for (const index of propertyIndexes(b, ipma, primary)) {
    const p = properties[index - 1];
    if (!p) throw bad('malformed (property index)');
    if (p.type === 'ispe') {
      if (p.end - p.start < 12) throw bad('malformed (ispe)');
      width = b.readUInt32BE(p.start + 4);
      height = b.readUInt32BE(p.start + 8);
    } else if (p.type === 'irot' && p.end > p.start) {
      quarterTurn = (b[p.start]! & 1) === 1;
    }
  }
  if (width === 0 || height === 0) throw bad('missing the image size (ispe)');
  return quarterTurn ? { width: height, height: width } : { width, height };
}

/** The 1-based ipco indexes `ipma` associates with one item. */
function propertyIndexes(b: Buffer, ipma: Box, item: number): number[] {
  const version = b[ipma.start]!;
  const wideIndex = (b[ipma.start + 3]! & 1) === 1;
  const need = (n: number) => {
    if (at + n > ipma.end) throw bad('truncated (ipma)');
  };
  let at = ipma.start + 4;
  need(4);
  const entries = b.readUInt32BE(at);
  at += 4;
  for (let e = 0; e < entries; e++) {
    need(version < 1 ? 3 : 5);
    const id = version < 1 ? b.readUInt16BE(at) : b.readUInt32BE(at);
    at += version < 1 ? 2 : 4;
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
