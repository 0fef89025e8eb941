import { deflateSync } from 'node:zlib';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { exifTiff, makeApng, makePng, noisyFrames, pngChunk } from '../../test/fixtures/images.js';
import { applyPlan, countingTurns, planSource } from '../../test/fixtures/stored-plan.js';
import { UploadBody } from '../images/upload.js';
import { isAnimated } from './dimensions.js';
import { orientationOnlyTiff } from './jpeg-metadata.js';
import { PNG_MAX_CHUNKS, strippedPng } from './png-metadata.js';
import { storedSize } from './stored-bytes.js';

async function stripped(bytes: Buffer): Promise<Buffer> {
  const plan = await strippedPng(planSource(bytes));
  const out = applyPlan(bytes, plan);
  expect(storedSize(plan)).toBe(out.length);
  return out;
}

/** The chunks of a PNG, in order (after the signature), each with its whole bytes. */
function chunksOf(png: Buffer): { type: string; bytes: Buffer }[] {
  const out: { type: string; bytes: Buffer }[] = [];
  for (let at = 8; at + 12 <= png.length; ) {
    const end = at + 12 + png.readUInt32BE(at);
    out.push({ type: png.toString('latin1', at + 4, at + 8), bytes: png.subarray(at, end) });
    at = end;
  }
  return out;
}
const typesOf = (png: Buffer) => chunksOf(png).map((c) => c.type);

/** `chunks` inserted before the first chunk of type `before`. */
function insertBefore(png: Buffer, before: string, ...chunks: Buffer[]): Buffer {
  const all = chunksOf(png);
  const i = all.findIndex((c) => c.type === before);
  return Buffer.concat([
    png.subarray(0, 8),
    ...all.slice(0, i).map((c) => c.bytes),
    ...chunks,
    ...all.slice(i).map((c) => c.bytes),
  ]);
}

/** Decoded pixels as stored (no orientation applied): equal pixels mean a lossless strip. */
const pixels = (bytes: Buffer) => sharp(bytes).raw().toBuffer();

const XMP =
  '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">' +
  '<rdf:Description xmlns:exif="http://ns.adobe.com/exif/1.0/" exif:GPSLatitude="48,51.4N"/></rdf:RDF></x:xmpmeta>';

/** A 64×48 RGBA PNG as sharp writes one with a phone's metadata: EXIF with GPS, XMP, an ICC profile. */
async function phonePng(orientation = 6): Promise<Buffer> {
  const raw = Buffer.alloc(64 * 48 * 4);
  for (let i = 0; i < raw.length; i++) raw[i] = (i * 37) % 251;
  return sharp(raw, { raw: { width: 64, height: 48, channels: 4 } })
    .withMetadata({ orientation })
    .withExif({
      IFD0: { Make: 'SignetCam', Model: 'X1' },
      IFD3: { GPSLatitudeRef: 'N', GPSLatitude: '48/1 51/1 2400/100' },
    })
    .withXmp(XMP)
    .withIccProfile('p3')
    .png()
    .toBuffer();
}

const text = (keyword: string, value: string) =>
  pngChunk('tEXt', Buffer.from(`${keyword}\0${value}`, 'latin1'));

describe('strippedPng: a PNG without its metadata, losslessly', () => {
  it('the same pixels, orientation and ICC profile; no GPS, camera, XMP, text, time or trailer', async () => {
    const made = await phonePng(6);
    const zText = pngChunk(
      'zTXt',
      Buffer.concat([Buffer.from('Author\0\0', 'latin1'), deflateSync('Signet Smith')]),
    );
    const time = pngChunk('tIME', Buffer.from([0x07, 0xea, 12, 7, 4, 20, 0]));
    let png = insertBefore(made, 'IDAT', text('Comment', 'taken at home'), zText, time);
    // Text after the image data, as some editors write it, and data appended after IEND.
    png = insertBefore(png, 'IEND', text('Software', 'SignetEdit 1.0'));
    png = Buffer.concat([png, Buffer.from('a motion photo with its own GPS track')]);
    const before = await sharp(png).metadata();
    expect(before).toMatchObject({ width: 64, height: 48, orientation: 6 });
    expect(before.exif && before.xmp && before.icc).toBeTruthy();
    // sharp writes the XMP as a compressed zTXt: its GPS is read from the metadata.
    expect(before.xmp?.toString()).toContain('GPSLatitude');
    for (const s of ['SignetCam', 'taken at home', 'SignetEdit', 'motion photo'])
      expect(png.includes(s), s).toBe(true);
    expect(before.comments?.length).toBeGreaterThan(0);

    const out = await stripped(png);
    expect((await pixels(out)).equals(await pixels(png))).toBe(true);
    const meta = await sharp(out).metadata();
    expect(meta).toMatchObject({ width: 64, height: 48, orientation: 6 });
    expect(meta.autoOrient).toEqual({ width: 48, height: 64 });
    expect(meta.xmp).toBeUndefined();
    // The EXIF left is the orientation alone (a TIFF header and one entry): no camera, no GPS IFD.
    expect(meta.exif!.length).toBeLessThanOrEqual(6 + orientationOnlyTiff(6).length);
    expect(meta.comments ?? []).toEqual([]);
    expect(meta.icc?.equals(before.icc!)).toBe(true);
    for (const s of ['SignetCam', 'GPS', 'taken at home', 'SignetEdit', 'motion photo', 'xmpmeta'])
      expect(out.includes(s), s).toBe(false);
    // What is left: what sharp wrote but the metadata, and the orientation in an eXIf of its own.
    const dropped = ['iTXt', 'tEXt', 'zTXt', 'tIME'];
    expect(typesOf(out)).toEqual(typesOf(made).filter((t) => !dropped.includes(t)));
    const exif = chunksOf(out).find((c) => c.type === 'eXIf')!;
    expect(exif.bytes.equals(pngChunk('eXIf', orientationOnlyTiff(6)))).toBe(true);
    // Every other chunk is the original's, CRC and all.
    for (const c of chunksOf(out).filter((x) => x.type !== 'eXIf'))
      expect(png.includes(c.bytes), c.type).toBe(true);
  });

  it('orientation 1: no eXIf at all', async () => {
    const out = await stripped(await phonePng(1));
    expect(typesOf(out)).not.toContain('eXIf');
    const meta = await sharp(out).metadata();
    expect(meta.exif).toBeUndefined();
    expect(meta.orientation).toBeUndefined();
  });

  it('an eXIf after the image data (libvips does not apply it) is dropped, not turned into an orientation', async () => {
    const png = insertBefore(makePng(6, 4, [255, 0, 0], [0, 0, 255]), 'IEND', pngChunk('eXIf', exifTiff(6)));
    expect((await sharp(png).metadata()).orientation).toBeUndefined();
    const out = await stripped(png);
    expect(typesOf(out)).toEqual(['IHDR', 'IDAT', 'IEND']);
  });

  it('the first eXIf before IDAT counts, as in the header reader; a second is dropped', async () => {
    const base = makePng(6, 4, [255, 0, 0], [0, 0, 255]);
    const png = insertBefore(base, 'IDAT', pngChunk('eXIf', exifTiff(3)), pngChunk('eXIf', exifTiff(6)));
    expect((await sharp(png).metadata()).orientation).toBe(3);
    const out = await stripped(png);
    expect(typesOf(out)).toEqual(['IHDR', 'eXIf', 'IDAT', 'IEND']);
    expect((await sharp(out).metadata()).orientation).toBe(3);
  });

  it('a PNG with nothing to drop (sharp’s own, or hand-made) is stored byte for byte, as one range', async () => {
    const still = await sharp({ create: { width: 40, height: 30, channels: 4, background: '#336699aa' } })
      .png()
      .toBuffer();
    for (const png of [still, makePng(6, 4, [255, 94, 58], [0, 122, 255])]) {
      const plan = await strippedPng(planSource(png));
      expect(plan.pieces).toEqual([{ from: 0, to: png.length }]);
    }
  });

  it('keeps every chunk that changes how pixels look, byte for byte; drops the other ancillary chunks', async () => {
    const keep = [
      pngChunk('iCCP', Buffer.from('icc\0\0x', 'latin1')),
      pngChunk('sRGB', Buffer.from([0])),
      pngChunk('gAMA', Buffer.from([0, 0, 0xb1, 0x8f])),
      pngChunk('cHRM', Buffer.alloc(32, 1)),
      pngChunk('sBIT', Buffer.from([8, 8, 8])),
      pngChunk('cICP', Buffer.from([9, 16, 0, 1])),
      pngChunk('mDCV', Buffer.alloc(24, 2)),
      pngChunk('mDCv', Buffer.alloc(24, 2)),
      pngChunk('cLLI', Buffer.alloc(8, 3)),
      pngChunk('cLLi', Buffer.alloc(8, 3)),
      pngChunk('pHYs', Buffer.from([0, 0, 0x0b, 0x13, 0, 0, 0x0b, 0x13, 1])),
      pngChunk('bKGD', Buffer.from([0, 1, 0, 2, 0, 3])),
      pngChunk('tRNS', Buffer.from([0, 1, 0, 2, 0, 3])),
    ];
    const drop = [
      pngChunk('sPLT', Buffer.from('palette name\0\x08', 'latin1')),
      pngChunk('hIST', Buffer.alloc(4)),
      pngChunk('vpAg', Buffer.alloc(9)),
      pngChunk('prVt', Buffer.from('a private chunk: who knows')),
      pngChunk('iTXt', Buffer.from('XML:com.adobe.xmp\0\0\0\0\0<x:xmpmeta/>', 'latin1')),
    ];
    // Interleaved, and a bad CRC on a kept chunk stays as it is (copied, not judged).
    const badCrc = Buffer.from(keep[1]!);
    badCrc.writeUInt32BE(0xdeadbeef, badCrc.length - 4);
    keep[1] = badCrc;
    const base = makePng(6, 4, [255, 94, 58], [0, 122, 255]);
    const png = insertBefore(base, 'IDAT', ...keep.flatMap((k, i) => (drop[i] ? [k, drop[i]] : [k])));
    const out = await stripped(png);
    expect(out.equals(insertBefore(base, 'IDAT', ...keep))).toBe(true);
  });

  it('an unknown critical chunk is kept (dropping it would change what the file is)', async () => {
    const base = makePng(6, 4, [255, 94, 58], [0, 122, 255]);
    const crit = pngChunk('ZZZZ', Buffer.from('needed by some decoder'));
    const png = insertBefore(base, 'IDAT', crit, text('Title', 'x'));
    expect((await stripped(png)).equals(insertBefore(base, 'IDAT', crit))).toBe(true);
  });

  it('an APNG keeps its animation: every acTL, fcTL and fdAT, byte for byte', async () => {
    const apng = makeApng(await noisyFrames());
    // Metadata before, between and after the frames (a frame's fdAT chunks follow its fcTL).
    let png = insertBefore(apng, 'acTL', text('Software', 'SignetAnim'), pngChunk('eXIf', exifTiff(1)));
    png = insertBefore(png, 'fdAT', text('Comment', 'frame two'));
    png = insertBefore(png, 'IEND', pngChunk('tIME', Buffer.from([0x07, 0xea, 12, 7, 4, 20, 0])));
    const out = await stripped(png);
    expect(out.equals(apng)).toBe(true);
    expect(isAnimated('png', out)).toBe(true);
    const types = typesOf(out);
    expect(types.filter((t) => t === 'fcTL')).toHaveLength(3);
    expect(types.filter((t) => t === 'fdAT').length).toBeGreaterThanOrEqual(2);
    expect((await pixels(out)).equals(await pixels(apng))).toBe(true);
  });

  it('malformed structure is an ImageHeaderError (the upload is refused, never stored unstripped)', async () => {
    const base = insertBefore(makePng(6, 4, [255, 94, 58], [0, 122, 255]), 'IDAT', text('GPS', '48N'));
    const iend = base.length - 12;
    const cases: [string, Buffer, RegExp][] = [
      ['cut before IEND', base.subarray(0, iend), /truncated \(no IEND chunk\)/],
      ['cut inside IDAT', base.subarray(0, iend - 5), /the IDAT chunk runs past the end/],
      ['IEND cut short', base.subarray(0, base.length - 2), /truncated \(no IEND chunk\)|runs past the end/],
      ['a length over 2^31-1', withLength(base, 'tEXt', 0x80000000), /malformed \(chunk length\)/],
      ['a length past the end', withLength(base, 'tEXt', 1_000_000), /the tEXt chunk runs past the end/],
      [
        'a type that is not letters',
        Buffer.concat([base.subarray(0, 33), pngChunk('t3Xt', Buffer.from('x')), base.subarray(33)]),
        /malformed \(chunk type\)/,
      ],
      ['no IDAT', Buffer.concat([base.subarray(0, 33), pngChunk('IEND', Buffer.alloc(0))]), /no IDAT/],
    ];
    for (const [name, bytes, message] of cases) {
      const err = await strippedPng(planSource(bytes)).catch((e: unknown) => e);
      expect((err as Error).name, name).toBe('ImageHeaderError');
      expect((err as Error).message, name).toMatch(/^The PNG header is /);
      expect((err as Error).message, name).toMatch(message);
    }
  });

  it(`walks at most ${PNG_MAX_CHUNKS} chunks, letting other work run as it goes`, async () => {
    const base = makePng(6, 4, [255, 94, 58], [0, 122, 255]);
    const tiny = pngChunk('tEXt', Buffer.alloc(0));
    const many = Buffer.concat([
      base.subarray(0, 33),
      Buffer.alloc(tiny.length * PNG_MAX_CHUNKS),
      base.subarray(33),
    ]);
    for (let i = 0; i < PNG_MAX_CHUNKS; i++) tiny.copy(many, 33 + i * tiny.length);
    const { result: err, turns } = await countingTurns(() => strippedPng(planSource(many)));
    expect((err as Error).message).toMatch(`malformed (no IEND in ${PNG_MAX_CHUNKS} chunks)`);
    // The walk gave the event loop back between stretches of chunks, many times over.
    expect(turns).toBeGreaterThan(20);
    // Under the bound, the same chunks are all dropped.
    const fewer = Buffer.concat([
      base.subarray(0, 33),
      many.subarray(33, 33 + tiny.length * 100_000),
      base.subarray(33),
    ]);
    expect((await stripped(fewer)).equals(base)).toBe(true);
  });

  it('through an upload body in small parts: the stream yields exactly the stored bytes, and the size is still checked', async () => {
    const png = Buffer.concat([
      insertBefore(
        insertBefore(await phonePng(6), 'IEND', text('Comment', 'after the image data')),
        'IDAT',
        text('Title', 'before it'),
      ),
      Buffer.from('trailer'),
    ]);
    const parts: Buffer[] = [];
    for (let at = 0; at < png.length; at += 97) parts.push(png.subarray(at, at + 97));
    const body = new UploadBody(new Blob(parts.map((p) => new Uint8Array(p))), 1 << 20);
    const plan = await strippedPng(body);
    // Several ranges with bytes made here between them.
    expect(plan.pieces.filter((p) => !Buffer.isBuffer(p)).length).toBeGreaterThan(1);
    expect(plan.pieces.some((p) => Buffer.isBuffer(p))).toBe(true);
    const streamed: Buffer[] = [];
    for await (const chunk of body.stream(plan)) streamed.push(chunk as Buffer);
    const out = Buffer.concat(streamed);
    expect(out.equals(applyPlan(png, plan))).toBe(true);
    expect(out.length).toBe(storedSize(plan));
    expect(body.bytesRead).toBe(png.length);
    expect((await pixels(out)).equals(await pixels(png))).toBe(true);
  });
});

/** A copy of `png` whose first `type` chunk declares `length`. */
function withLength(png: Buffer, type: string, length: number): Buffer {
  const out = Buffer.from(png);
  const c = chunksOf(png).find((x) => x.type === type)!;
  out.writeUInt32BE(length, c.bytes.byteOffset - png.byteOffset);
  return out;
}
