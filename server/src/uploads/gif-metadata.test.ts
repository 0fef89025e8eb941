import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { gifApplication, gifExtension, gifSubBlocks, makeGif } from '../../test/fixtures/images.js';
import { applyPlan, countingTurns, planSource } from '../../test/fixtures/stored-plan.js';
import { UploadBody } from '../images/upload.js';
import { GIF_MAX_BLOCKS, gifColourTableBytes, readDimensions } from './dimensions.js';
import { strippedGif } from './gif-metadata.js';
import { storedSize } from './stored-bytes.js';

async function stripped(bytes: Buffer): Promise<Buffer> {
  const plan = await strippedGif(planSource(bytes));
  const out = applyPlan(bytes, plan);
  expect(storedSize(plan)).toBe(out.length);
  return out;
}

const comment = (text: string) => gifExtension(0xfe, Buffer.from(text, 'latin1'));

const XMP =
  '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">' +
  '<rdf:Description xmlns:exif="http://ns.adobe.com/exif/1.0/" exif:GPSLatitude="48,51.4N"/></rdf:RDF></x:xmpmeta>';

/** The blocks of a GIF after its header and global colour table, each with its whole bytes. */
function blocksOf(gif: Buffer): { kind: string; bytes: Buffer }[] {
  const packed = gif[10]!;
  let at = 13 + gifColourTableBytes(packed);
  const out: { kind: string; bytes: Buffer }[] = [];
  const chain = (p: number) => {
    while (gif[p]! !== 0) p += 1 + gif[p]!;
    return p + 1;
  };
  while (at < gif.length) {
    const start = at;
    if (gif[at] === 0x3b) {
      out.push({ kind: 'trailer', bytes: gif.subarray(at, at + 1) });
      break;
    }
    let kind: string;
    if (gif[at] === 0x2c) {
      const local = gif[at + 9]!;
      at = chain(at + 10 + gifColourTableBytes(local) + 1);
      kind = 'image';
    } else {
      const label = gif[at + 1]!;
      kind = label === 0xff ? `app:${gif.toString('latin1', at + 3, at + 14)}` : `ext:${label.toString(16)}`;
      at = chain(at + 2);
    }
    out.push({ kind, bytes: gif.subarray(start, at) });
  }
  return out;
}
const kindsOf = (gif: Buffer) => blocksOf(gif).map((b) => b.kind);
const headerOf = (gif: Buffer) =>
  gif.subarray(0, gif.length - blocksOf(gif).reduce((n, b) => n + b.bytes.length, 0));

/** `blocks` inserted before the first block of `kind` (`kind#n`: before its n-th, from 0). */
function insertBefore(gif: Buffer, kind: string, ...blocks: Buffer[]): Buffer {
  const all = blocksOf(gif);
  const [name, nth] = kind.split('#');
  const i = all.map((b, at) => (b.kind === name ? at : -1)).filter((at) => at >= 0)[Number(nth ?? 0)]!;
  return Buffer.concat([
    headerOf(gif),
    ...all.slice(0, i).map((b) => b.bytes),
    ...blocks,
    ...all.slice(i).map((b) => b.bytes),
  ]);
}

/** Every frame's pixels, as decoded. */
const pixels = (bytes: Buffer) => sharp(bytes, { pages: -1 }).raw().toBuffer();

/** A three-frame 48×32 GIF looping twice, as sharp writes one (graphic controls, NETSCAPE2.0). */
async function animatedGif(): Promise<Buffer> {
  const frames = await Promise.all(
    ['#cc3311', '#11cc33', '#3311cc'].map((background) =>
      sharp({ create: { width: 48, height: 32, channels: 3, background } })
        .png()
        .toBuffer(),
    ),
  );
  return sharp(frames, { join: { animated: true } })
    .gif({ loop: 2, delay: [100, 200, 300] })
    .toBuffer();
}

describe('strippedGif: a GIF without its comments, XMP and private data, losslessly', () => {
  it('the same frames, delays and loop; no comment, XMP, Photoshop data, unknown extension or trailer', async () => {
    const made = await animatedGif();
    expect(kindsOf(made)).toContain('app:NETSCAPE2.0');
    expect(kindsOf(made)).toContain('ext:f9');
    // Before the first frame's graphic control (between it and its frame, libnsgif refuses it).
    let gif = insertBefore(
      made,
      'ext:f9',
      comment('taken at home by Signet Smith'),
      gifApplication('XMP DataXMP', Buffer.from(XMP, 'latin1')),
      gifApplication('MGK8BIM0000', Buffer.from('8BIM photoshop resources', 'latin1')),
      gifExtension(0x99, Buffer.from('a label no decoder knows', 'latin1')),
    );
    // Between frames (libnsgif refuses one after the last frame when bytes follow the trailer).
    gif = insertBefore(gif, 'ext:f9#2', comment('SignetEdit 1.0'));
    gif = Buffer.concat([gif, Buffer.from('appended after the trailer')]);
    const before = await sharp(gif, { pages: -1 }).metadata();
    expect(before).toMatchObject({ pages: 3, loop: 2, delay: [100, 200, 300] });
    for (const s of ['taken at home', 'GPSLatitude', '8BIM', 'no decoder knows', 'SignetEdit', 'appended'])
      expect(gif.includes(s), s).toBe(true);

    const out = await stripped(gif);
    expect((await pixels(out)).equals(await pixels(gif))).toBe(true);
    const meta = await sharp(out, { pages: -1 }).metadata();
    expect(meta).toMatchObject({ width: 48, pages: 3, pageHeight: 32, loop: 2, delay: [100, 200, 300] });
    expect(meta.xmp).toBeUndefined();
    expect(meta.comments ?? []).toEqual([]);
    for (const s of [
      'taken at home',
      'GPSLatitude',
      'xmpmeta',
      '8BIM',
      'no decoder knows',
      'SignetEdit',
      'appended',
    ])
      expect(out.includes(s), s).toBe(false);
    // What is left is exactly what sharp wrote, block for block.
    expect(out.equals(made)).toBe(true);
  });

  it('a GIF with nothing to drop is stored byte for byte, as one range', async () => {
    for (const gif of [await animatedGif(), makeGif(6, 4)]) {
      const plan = await strippedGif(planSource(gif));
      expect(plan.pieces).toEqual([{ from: 0, to: gif.length }]);
    }
  });

  it('keeps the blocks that change what is shown: graphic control, plain text, loop counts and the ICC profile', async () => {
    const base = makeGif(6, 4);
    const kept = [
      gifExtension(0xf9, Buffer.from([4, 0, 10, 0, 0])), // graphic control: 100 ms, no transparency
      gifExtension(0x01, Buffer.concat([Buffer.alloc(12), Buffer.from('drawn text', 'latin1')])), // plain text
      gifApplication('NETSCAPE2.0', Buffer.from([1, 0, 0])),
      gifApplication('ANIMEXTS1.0', Buffer.from([1, 3, 0])),
      gifApplication('ICCRGBG1012', Buffer.from('an ICC profile', 'latin1')),
    ];
    const gif = insertBefore(base, 'image', comment('dropped'), ...kept);
    const out = await stripped(gif);
    expect(kindsOf(out)).toEqual([
      'ext:f9',
      'ext:1',
      'app:NETSCAPE2.0',
      'app:ANIMEXTS1.0',
      'app:ICCRGBG1012',
      'image',
      'trailer',
    ]);
    expect(out.equals(insertBefore(base, 'image', ...kept))).toBe(true);
  });

  it('an application extension whose first sub-block is not an 11-byte identifier is dropped', async () => {
    const base = makeGif(6, 4);
    const odd = Buffer.concat([
      Buffer.from([0x21, 0xff]),
      gifSubBlocks(Buffer.from('NETSCAPE2.0 but in one long block', 'latin1')),
    ]);
    expect((await stripped(insertBefore(base, 'image', odd))).equals(base)).toBe(true);
  });

  it('a GIF cut short is stored as far as it goes; a cut comment is dropped, a cut frame kept', async () => {
    const base = makeGif(6, 4);
    const noTrailer = base.subarray(0, base.length - 1);
    const cutComment = Buffer.concat([noTrailer, comment('a comment cut off').subarray(0, 9)]);
    expect((await stripped(cutComment)).equals(noTrailer)).toBe(true);
    const cutFrame = base.subarray(0, base.length - 4);
    expect((await stripped(cutFrame)).equals(cutFrame)).toBe(true);
    // A lone introducer or a descriptor cut before its ten bytes is no frame, as the header reader counts it.
    expect((await stripped(Buffer.concat([noTrailer, Buffer.from([0x21])]))).equals(noTrailer)).toBe(true);
    expect((await stripped(Buffer.concat([noTrailer, Buffer.from([0x2c, 0, 0])]))).equals(noTrailer)).toBe(
      true,
    );
    expect(readDimensions('gif', cutComment)).toEqual({ width: 6, height: 4 });
  });

  it('an unknown block is an ImageHeaderError (the upload is refused, never stored unstripped)', async () => {
    const base = makeGif(6, 4);
    const bad = insertBefore(base, 'trailer', Buffer.from([0x42, 1, 2, 3]));
    await expect(strippedGif(planSource(bad))).rejects.toThrow('malformed (unknown block 0x42)');
  });

  it(`walks at most ${GIF_MAX_BLOCKS} blocks, letting other work run as it goes`, async () => {
    const base = makeGif(6, 4);
    // A comment of one-byte sub-blocks: two bytes a block.
    const tiny = (n: number) => {
      const c = Buffer.alloc(2 + 2 * n + 1, 0x61);
      c[0] = 0x21;
      c[1] = 0xfe;
      for (let i = 0; i < n; i++) c[2 + 2 * i] = 1;
      c[2 + 2 * n] = 0;
      return c;
    };
    const { result: err, turns } = await countingTurns(() =>
      strippedGif(planSource(insertBefore(base, 'image', tiny(GIF_MAX_BLOCKS)))),
    );
    expect((err as Error).message).toMatch(`malformed (more than ${GIF_MAX_BLOCKS} blocks)`);
    expect(turns).toBeGreaterThan(20);
    // Under the bound, the same comment is dropped.
    expect((await stripped(insertBefore(base, 'image', tiny(100_000)))).equals(base)).toBe(true);
  });

  it('through an upload body in small parts: the stream yields exactly the stored bytes', async () => {
    const gif = insertBefore(
      await animatedGif(),
      'image',
      comment('x'.repeat(3000)),
      gifApplication('XMP DataXMP', Buffer.from(XMP)),
    );
    const parts: Buffer[] = [];
    for (let at = 0; at < gif.length; at += 97) parts.push(gif.subarray(at, at + 97));
    const body = new UploadBody(new Blob(parts.map((p) => new Uint8Array(p))), 1 << 20);
    const plan = await strippedGif(body);
    expect(plan.pieces.length).toBeGreaterThan(1);
    const streamed: Buffer[] = [];
    for await (const chunk of body.stream(plan)) streamed.push(chunk as Buffer);
    const out = Buffer.concat(streamed);
    expect(out.equals(applyPlan(gif, plan))).toBe(true);
    expect(out.length).toBe(storedSize(plan));
    expect((await pixels(out)).equals(await pixels(gif))).toBe(true);
  });
});
