import sharp, { type Sharp, type WebpOptions } from 'sharp';
import { describe, expect, it } from 'vitest';
import {
  exifTiff,
  makeWebpExtended,
  noisyFrames,
  WEBP_LOSSLESS_5x3,
  WEBP_LOSSY_5x3,
  webpChunk,
} from '../../test/fixtures/images.js';
import { applyPlan, countingTurns, planSource } from '../../test/fixtures/stored-plan.js';
import { UploadBody } from '../images/upload.js';
import { isAnimated } from './dimensions.js';
import { orientationOnlyTiff } from './jpeg-metadata.js';
import { storedSize } from './stored-bytes.js';
import { strippedWebp, WEBP_MAX_CHUNKS } from './webp-metadata.js';

/** The stored bytes, checked to be a well-formed RIFF whose size is the file's. */
async function stripped(bytes: Buffer): Promise<Buffer> {
  const plan = await strippedWebp(planSource(bytes));
  const out = applyPlan(bytes, plan);
  expect(storedSize(plan)).toBe(out.length);
  expect(out.readUInt32LE(4)).toBe(out.length - 8);
  return out;
}

/** The top-level chunks of a WebP after its RIFF header, each with its bytes (padding included). */
function chunksOf(webp: Buffer): { type: string; bytes: Buffer }[] {
  const out: { type: string; bytes: Buffer }[] = [];
  for (let at = 12; at + 8 <= webp.length; ) {
    const n = webp.readUInt32LE(at + 4);
    const end = Math.min(webp.length, at + 8 + n + (n & 1));
    out.push({ type: webp.toString('latin1', at, at + 4), bytes: webp.subarray(at, end) });
    at = end;
  }
  return out;
}
const typesOf = (webp: Buffer) => chunksOf(webp).map((c) => c.type);

/** A RIFF WEBP file of `chunks`, its size right. */
function riff(chunks: Buffer[]): Buffer {
  const head = Buffer.alloc(12);
  head.write('RIFF', 0, 'latin1');
  head.write('WEBP', 8, 'latin1');
  const out = Buffer.concat([head, ...chunks]);
  out.writeUInt32LE(out.length - 8, 4);
  return out;
}

/** `webp` with its VP8X flags ORed with `set`, and `extra` chunks after its last. */
function withChunks(webp: Buffer, set: number, ...extra: Buffer[]): Buffer {
  const out = riff([...chunksOf(webp).map((c) => c.bytes), ...extra]);
  out[20] = out[20]! | set;
  return out;
}

const EXIF = 0x08;
const XMP = 0x04;
const XMP_PACKET =
  '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">' +
  '<rdf:Description xmlns:exif="http://ns.adobe.com/exif/1.0/" exif:GPSLatitude="48,51.4N"/></rdf:RDF></x:xmpmeta>';

const phoneMetadata = (img: Sharp, orientation: number) =>
  img
    .withMetadata({ orientation })
    .withExif({
      IFD0: { Make: 'SignetCam', Model: 'X1' },
      IFD3: { GPSLatitudeRef: 'N', GPSLatitude: '48/1 51/1 2400/100' },
    })
    .withXmp(XMP_PACKET);

/** A 64×48 WebP as sharp writes one with a phone's metadata: EXIF with GPS, XMP, an ICC profile. */
async function phoneWebp(orientation: number, opts: WebpOptions = {}): Promise<Buffer> {
  const raw = Buffer.alloc(64 * 48 * 4);
  for (let i = 0; i < raw.length; i++) raw[i] = (i * 37) % 251;
  return phoneMetadata(sharp(raw, { raw: { width: 64, height: 48, channels: 4 } }), orientation)
    .withIccProfile('p3')
    .webp(opts)
    .toBuffer();
}

/** Decoded pixels as stored (no orientation applied), every frame: equal pixels mean a lossless strip. */
const pixels = (bytes: Buffer) => sharp(bytes, { pages: -1 }).raw().toBuffer();

describe('strippedWebp: a WebP without its metadata, losslessly', () => {
  it.each([
    ['lossy', {}],
    ['lossless', { lossless: true }],
  ] as const)(
    '%s: the same pixels, orientation and ICC profile; no GPS, camera or XMP; flags and RIFF size rewritten',
    async (_name, opts) => {
      const webp = await phoneWebp(6, opts);
      const before = await sharp(webp).metadata();
      expect(before).toMatchObject({ width: 64, height: 48, orientation: 6 });
      expect(before.exif && before.xmp && before.icc).toBeTruthy();
      expect(webp[20]! & (EXIF | XMP)).toBe(EXIF | XMP);
      for (const s of ['SignetCam', 'GPSLatitude']) expect(webp.includes(s), s).toBe(true);

      const out = await stripped(webp);
      expect((await pixels(out)).equals(await pixels(webp))).toBe(true);
      const meta = await sharp(out).metadata();
      expect(meta).toMatchObject({ width: 64, height: 48, orientation: 6 });
      expect(meta.autoOrient).toEqual({ width: 48, height: 64 });
      expect(meta.xmp).toBeUndefined();
      expect(meta.icc?.equals(before.icc!)).toBe(true);
      for (const s of ['SignetCam', 'GPS', 'xmpmeta']) expect(out.includes(s), s).toBe(false);
      // The EXIF flag stays (an orientation is left), the XMP flag is cleared, nothing else moves.
      expect(out[20]).toBe(webp[20]! & ~XMP);
      expect(typesOf(out)).toEqual(typesOf(webp).filter((t) => t !== 'XMP '));
      const exif = chunksOf(out).find((c) => c.type === 'EXIF')!;
      expect(exif.bytes.equals(webpChunk('EXIF', orientationOnlyTiff(6)))).toBe(true);
      for (const c of chunksOf(out).filter((x) => x.type !== 'EXIF' && x.type !== 'VP8X'))
        expect(webp.includes(c.bytes), c.type).toBe(true);
    },
  );

  it('orientation 1: no EXIF chunk, both flags cleared', async () => {
    const webp = await phoneWebp(1);
    const out = await stripped(webp);
    expect(typesOf(out)).not.toContain('EXIF');
    expect(typesOf(out)).not.toContain('XMP ');
    expect(out[20]! & (EXIF | XMP)).toBe(0);
    const meta = await sharp(out).metadata();
    expect(meta.exif).toBeUndefined();
    expect(meta.orientation).toBeUndefined();
    expect((await pixels(out)).equals(await pixels(webp))).toBe(true);
  });

  it('an animated WebP keeps its frames, timing and loop; its metadata goes', async () => {
    const frames = await noisyFrames();
    const plain = await sharp(frames, { join: { animated: true } })
      .webp({ loop: 0, delay: [300, 200, 100] })
      .toBuffer();
    const webp = withChunks(
      plain,
      EXIF | XMP,
      webpChunk('EXIF', Buffer.concat([Buffer.from('Exif\0\0', 'latin1'), exifTiff(1)])),
      webpChunk('XMP ', Buffer.from(XMP_PACKET)),
    );
    expect(isAnimated('webp', webp)).toBe(true);
    expect((await sharp(webp).metadata()).xmp).toBeTruthy();
    const out = await stripped(webp);
    // Exactly what sharp wrote before the metadata was added.
    expect(out.equals(plain)).toBe(true);
    const meta = await sharp(out).metadata();
    expect(meta).toMatchObject({ pages: 3, loop: 0, delay: [300, 200, 100] });
    expect((await pixels(out)).equals(await pixels(webp))).toBe(true);
  });

  it('a WebP with nothing to drop is stored byte for byte', async () => {
    const still = await sharp({ create: { width: 40, height: 30, channels: 4, background: '#336699aa' } })
      .webp()
      .toBuffer();
    const animated = await sharp(await noisyFrames(), { join: { animated: true } })
      .webp({ loop: 0, delay: [300, 300, 300] })
      .toBuffer();
    for (const webp of [still, animated, makeWebpExtended(), WEBP_LOSSY_5x3, WEBP_LOSSLESS_5x3]) {
      expect((await stripped(webp)).equals(webp)).toBe(true);
    }
    // The simple format (no VP8X) has no place for metadata: one range, the whole file.
    expect((await strippedWebp(planSource(WEBP_LOSSY_5x3))).pieces).toEqual([
      { from: 0, to: WEBP_LOSSY_5x3.length },
    ]);
  });

  it('unknown chunks are kept in their order, padding and all; EXIF and XMP go; bytes past the RIFF do not stay', async () => {
    const base = makeWebpExtended();
    const unknown = [webpChunk('XTRA', Buffer.from('odd')), webpChunk('ZZZZ', Buffer.from('even'))];
    const webp = withChunks(
      base,
      EXIF | XMP,
      unknown[0]!,
      webpChunk('EXIF', exifTiff(1)),
      webpChunk('XMP ', Buffer.from(XMP_PACKET)),
      unknown[1]!,
    );
    const appended = Buffer.concat([webp, Buffer.from('appended: GPS 48N')]);
    const out = await stripped(appended);
    expect(out.equals(withChunks(base, 0, ...unknown))).toBe(true);
    expect((await pixels(out)).equals(await pixels(base))).toBe(true);
  });

  it('an EXIF chunk without the VP8X EXIF flag (libvips ignores it) is dropped, not turned into an orientation', async () => {
    const webp = withChunks(makeWebpExtended(), 0, webpChunk('EXIF', exifTiff(6)));
    expect((await sharp(webp).metadata()).orientation).toBeUndefined();
    const out = await stripped(webp);
    expect(out.equals(makeWebpExtended())).toBe(true);
  });

  it('the first EXIF chunk counts, as in the header reader', async () => {
    const webp = withChunks(
      makeWebpExtended(),
      EXIF,
      webpChunk('EXIF', exifTiff(3)),
      webpChunk('EXIF', exifTiff(6)),
    );
    expect((await sharp(webp).metadata()).orientation).toBe(3);
    const out = await stripped(webp);
    expect(typesOf(out)).toEqual(['VP8X', 'VP8 ', 'EXIF']);
    expect((await sharp(out).metadata()).orientation).toBe(3);
  });

  it('malformed structure is an ImageHeaderError (the upload is refused, never stored unstripped)', async () => {
    const base = withChunks(makeWebpExtended(), EXIF, webpChunk('EXIF', exifTiff(6)));
    const lying = (webp: Buffer, at: number, value: number) => {
      const out = Buffer.from(webp);
      out.writeUInt32LE(value, at);
      return out;
    };
    const exifAt = base.indexOf('EXIF', 30);
    const vp8x = Buffer.from(base);
    vp8x.writeUInt32LE(8, 16);
    const noImage = riff([chunksOf(base)[0]!.bytes, webpChunk('EXIF', exifTiff(6))]);
    const cases: [string, Buffer, RegExp][] = [
      ['a chunk past the RIFF size', lying(base, exifAt + 4, 1000), /a chunk runs past the RIFF size/],
      ['a RIFF size past the end', lying(base, 4, base.length), /truncated \(RIFF size\)/],
      ['a chunk header cut by the RIFF size', lying(base, 4, base.length - 8 - 30), /chunk header runs past/],
      ['a VP8X under 10 bytes', vp8x, /malformed \(VP8X chunk\)/],
      ['no image data', noImage, /malformed \(no image data\)/],
    ];
    for (const [name, bytes, message] of cases) {
      const err = await strippedWebp(planSource(bytes)).catch((e: unknown) => e);
      expect((err as Error).name, name).toBe('ImageHeaderError');
      expect((err as Error).message, name).toMatch(/^The WebP header is /);
      expect((err as Error).message, name).toMatch(message);
    }
  });

  it(`walks at most ${WEBP_MAX_CHUNKS} chunks, letting other work run as it goes`, async () => {
    const base = makeWebpExtended();
    const tiny = webpChunk('XMP ', Buffer.alloc(0));
    const parts = [...chunksOf(base).map((c) => c.bytes), Buffer.alloc(tiny.length * WEBP_MAX_CHUNKS)];
    const many = riff(parts);
    for (let i = 0; i < WEBP_MAX_CHUNKS; i++) tiny.copy(many, base.length + i * tiny.length);
    const { result: err, turns } = await countingTurns(() => strippedWebp(planSource(many)));
    expect((err as Error).message).toMatch(`malformed (more than ${WEBP_MAX_CHUNKS} chunks)`);
    // The walk gave the event loop back between stretches of chunks, many times over.
    expect(turns).toBeGreaterThan(20);
    // Under the bound, the same chunks are all dropped.
    const fewer = riff([
      ...chunksOf(base).map((c) => c.bytes),
      many.subarray(base.length, base.length + 8 * 100_000),
    ]);
    expect((await stripped(fewer)).equals(base)).toBe(true);
  });

  it('through an upload body in small parts: the stream yields exactly the stored bytes, and the size is still checked', async () => {
    const webp = Buffer.concat([await phoneWebp(6), Buffer.from('trailer')]);
    const parts: Buffer[] = [];
    for (let at = 0; at < webp.length; at += 97) parts.push(webp.subarray(at, at + 97));
    const body = new UploadBody(new Blob(parts.map((p) => new Uint8Array(p))), 1 << 20);
    const plan = await strippedWebp(body);
    const streamed: Buffer[] = [];
    for await (const chunk of body.stream(plan)) streamed.push(chunk as Buffer);
    const out = Buffer.concat(streamed);
    expect(out.equals(applyPlan(webp, plan))).toBe(true);
    expect(out.length).toBe(storedSize(plan));
    expect(body.bytesRead).toBe(webp.length);
    expect((await pixels(out)).equals(await pixels(webp))).toBe(true);
    expect((await sharp(out).metadata()).orientation).toBe(6);
  });
});
