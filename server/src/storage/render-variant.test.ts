import { PassThrough, Readable } from 'node:stream';
import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';
import { AVIF_SEQUENCE_400x300, makeApng, makeGif, pngDeclaring, SVG } from '../../test/fixtures/images.js';
import { makePhoto } from '../../test/fixtures/photos.js';
import { createVariantRenderer, VariantRenderError, type VariantRendererOptions } from './render-variant.js';
import { type VariantSpec, variantOf } from './variant.js';

const LIMITS: VariantRendererOptions = {
  maxInputPixels: 100_000_000,
  maxInputBytes: 20 * 1024 * 1024,
  maxOutputDimension: 4096,
  timeoutSeconds: 10,
  concurrency: 2,
  maxQueue: 8,
};
const THUMB = variantOf({ width: 320, height: 320, fit: 'cover', format: 'webp', quality: 75 });
const MEDIUM = variantOf({ width: 1280, height: 1280, fit: 'inside', format: undefined, quality: undefined });
const spec = (s: Partial<VariantSpec>): VariantSpec => ({
  width: undefined,
  height: undefined,
  fit: 'inside',
  format: undefined,
  quality: undefined,
  ...s,
});

/** The reason a render failed with, or a failure of the test when it succeeded. */
async function failure(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(VariantRenderError);
    return (err as VariantRenderError).reason;
  }
  throw new Error('the render succeeded');
}

describe('renderVariant (real sharp)', () => {
  const renderer = createVariantRenderer(LIMITS);
  let photo: Buffer;
  let rotatedWithGps: Buffer;

  beforeAll(async () => {
    photo = await makePhoto(2400, 1600);
    rotatedWithGps = await makePhoto(2400, 1600, { orientation: 6, gps: true });
    // The original really carries what the variant must drop.
    const meta = await sharp(rotatedWithGps).metadata();
    expect([meta.orientation, meta.exif?.includes(Buffer.from([0x25, 0x88]))]).toEqual([6, true]);
  }, 30_000);

  it('cover fills the box exactly, in the asked format', async () => {
    const out = await renderer.render(async () => photo, THUMB);
    const meta = await sharp(out.data).metadata();
    expect([out.format, out.contentType, out.width, out.height]).toEqual(['webp', 'image/webp', 320, 320]);
    expect([meta.format, meta.width, meta.height]).toEqual(['webp', 320, 320]);
  });

  it('inside keeps the aspect ratio, and keeps the original format when none is asked', async () => {
    const out = await renderer.render(async () => photo, MEDIUM);
    const meta = await sharp(out.data).metadata();
    expect([out.contentType, out.width, out.height]).toEqual(['image/jpeg', 1280, 853]);
    expect([meta.format, meta.width, meta.height]).toEqual(['jpeg', 1280, 853]);
    expect(out.data.length).toBeLessThan(photo.length);
  });

  it('applies the EXIF orientation and strips every piece of metadata', async () => {
    for (const v of [THUMB, MEDIUM]) {
      const out = await renderer.render(async () => rotatedWithGps, v);
      const meta = await sharp(out.data).metadata();
      expect([meta.exif, meta.xmp, meta.icc, meta.iptc, meta.orientation]).toEqual([
        undefined,
        undefined,
        undefined,
        undefined,
        undefined,
      ]);
      if (v === MEDIUM) expect([out.width, out.height]).toEqual([853, 1280]);
    }
  });

  it('never enlarges', async () => {
    const out = await renderer.render(async () => photo, spec({ width: 4000 }));
    expect([out.width, out.height]).toEqual([2400, 1600]);
    const small = await renderer.render(async () => makeGif(10, 6), spec({ width: 100, height: 100 }));
    expect([small.width, small.height, small.format]).toEqual([10, 6, 'png']);
  });

  it('contain pads to the box: transparent in PNG, white in JPEG', async () => {
    for (const [format, corner] of [
      ['png', [0, 0, 0, 0]],
      ['jpeg', [255, 255, 255]],
    ] as const) {
      const out = await renderer.render(
        async () => photo,
        spec({ width: 200, height: 200, fit: 'contain', format }),
      );
      expect([out.width, out.height]).toEqual([200, 200]);
      const { data, info } = await sharp(out.data).raw().toBuffer({ resolveWithObject: true });
      const px = [...data.subarray(0, info.channels)];
      if (format === 'jpeg') for (const [i, c] of corner.entries()) expect(px[i]).toBeGreaterThan(c - 6);
      else expect(px).toEqual(corner);
    }
  });

  it('quality changes the bytes', async () => {
    const low = await renderer.render(async () => photo, spec({ width: 800, format: 'jpeg', quality: 20 }));
    const high = await renderer.render(async () => photo, spec({ width: 800, format: 'jpeg', quality: 95 }));
    expect(low.data.length).toBeLessThan(high.data.length);
  });

  it('quality is ignored for PNG, as COS ignores it: a smooth gradient keeps its colours, not a palette', async () => {
    // sharp's png({ quality }) quantises to a palette of at most 256 colours.
    const w = 320;
    const raw = Buffer.alloc(w * w * 3);
    for (let y = 0; y < w; y++) {
      for (let x = 0; x < w; x++)
        raw.set([Math.round((x * 255) / w), Math.round((y * 255) / w), 128], (y * w + x) * 3);
    }
    const gradient = await sharp(raw, { raw: { width: w, height: w, channels: 3 } })
      .png()
      .toBuffer();
    for (const format of ['png', undefined] as const) {
      const out = await renderer.render(
        async () => gradient,
        spec({ width: w, height: w, fit: 'cover', format, quality: 80 }),
      );
      expect(out.format).toBe('png');
      expect((await sharp(out.data).metadata()).isPalette).toBe(false);
      const px = await sharp(out.data).removeAlpha().raw().toBuffer();
      const colours = new Set<number>();
      for (let i = 0; i < px.length; i += 3) colours.add((px[i]! << 16) | (px[i + 1]! << 8) | px[i + 2]!);
      expect(colours.size).toBeGreaterThan(256);
    }
  });

  it('an animated WebP is its own variant (a render would keep its first frame only)', async () => {
    const frames = await Promise.all(
      ['#ff0000', '#00ff00', '#0000ff'].map((background) =>
        sharp({ create: { width: 400, height: 300, channels: 3, background } })
          .png()
          .toBuffer(),
      ),
    );
    const animated = await sharp(frames, { join: { animated: true } })
      .webp({ loop: 0, delay: [200, 200, 200] })
      .toBuffer();
    expect((await sharp(animated).metadata()).pages).toBe(3);
    for (const s of [THUMB, MEDIUM, spec({ width: 100, format: 'jpeg', quality: 60 })]) {
      const out = await renderer.render(async () => animated, s);
      expect(out.data.equals(animated)).toBe(true);
      expect(out).toMatchObject({
        format: 'webp',
        contentType: 'image/webp',
        width: 400,
        height: 300,
        // Said, so a caller that knows the row records it (images/derived-variants.ts).
        animated: true,
      });
    }
    // A still WebP is rendered as before (cover, never enlarged: 320×300).
    const stillWebp = await sharp(frames[0]!).webp().toBuffer();
    const still = await renderer.render(async () => stillWebp, THUMB);
    expect([still.width, still.height]).toEqual([320, 300]);
    expect(still.data.equals(stillWebp)).toBe(false);
    expect(still.animated).toBeUndefined();
  });

  it('an APNG and an AVIF sequence are their own variants too (libvips cannot even load the sequence)', async () => {
    const frames = await Promise.all(
      ['#ff0000', '#00ff00', '#0000ff'].map((background) =>
        sharp({ create: { width: 400, height: 300, channels: 3, background } })
          .png()
          .toBuffer(),
      ),
    );
    const apng = makeApng(frames);
    // libvips shows an APNG's default image: a render of it would be the red still.
    expect((await sharp(apng).metadata()).pages ?? 1).toBe(1);
    await expect(sharp(AVIF_SEQUENCE_400x300).metadata()).rejects.toThrow(/unsupported image format/);
    for (const [original, format] of [
      [apng, 'png'],
      [AVIF_SEQUENCE_400x300, 'avif'],
    ] as const) {
      for (const s of [THUMB, spec({ width: 100, format: 'jpeg', quality: 60 })]) {
        const out = await renderer.render(async () => original, s);
        expect(out.data.equals(original), format).toBe(true);
        expect(out, format).toMatchObject({
          format,
          contentType: `image/${format}`,
          width: 400,
          height: 300,
          animated: true,
        });
      }
    }
    // Served whole, but not beyond the pixel limit, as any original.
    const small = createVariantRenderer({ ...LIMITS, maxInputPixels: 100_000 });
    expect(await failure(small.render(async () => AVIF_SEQUENCE_400x300, THUMB))).toBe('too_large');
  });

  it('reads the original from a stream', async () => {
    const out = await renderer.render(
      async () => Readable.from([photo.subarray(0, 1000), photo.subarray(1000)]),
      THUMB,
    );
    expect([out.width, out.height]).toEqual([320, 320]);
  });

  it('refuses a corrupt or truncated original as unreadable, quickly', async () => {
    const started = Date.now();
    expect(await failure(renderer.render(async () => Buffer.from('not an image at all'), THUMB))).toBe(
      'unreadable',
    );
    expect(await failure(renderer.render(async () => photo.subarray(0, photo.length >> 1), THUMB))).toBe(
      'unreadable',
    );
    // The tables garbled (garbage in the entropy-coded data itself may still decode: libjpeg
    // cannot always tell it from a picture).
    const garbled = Buffer.from(photo);
    garbled.fill(0x55, 20, 600);
    expect(await failure(renderer.render(async () => garbled, THUMB))).toBe('unreadable');
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it('refuses a decompression bomb from its header, without decoding it', async () => {
    const bomb = pngDeclaring(50_000, 50_000);
    expect(bomb.length).toBeLessThan(100);
    const started = Date.now();
    expect(await failure(renderer.render(async () => bomb, THUMB))).toBe('too_large');
    expect(Date.now() - started).toBeLessThan(1_000);
    // Under the limit, a file of the same kind is merely broken.
    expect(await failure(renderer.render(async () => pngDeclaring(100, 100), THUMB))).toBe('unreadable');
  });

  it('refuses a box over the output limit before reading the original', async () => {
    let opened = false;
    const open = async () => {
      opened = true;
      return photo;
    };
    expect(await failure(renderer.render(open, spec({ width: 4097, height: 10, fit: 'contain' })))).toBe(
      'too_large',
    );
    expect(opened).toBe(false);
  });

  it('refuses SVG: variants are made of raster images only', async () => {
    expect(await failure(renderer.render(async () => SVG, THUMB))).toBe('unsupported');
  });

  it('refuses an original larger than the byte limit, from a buffer or a stream', async () => {
    const small = createVariantRenderer({ ...LIMITS, maxInputBytes: 10_000 });
    expect(await failure(small.render(async () => photo, THUMB))).toBe('too_large');
    expect(await failure(small.render(async () => Readable.from([photo]), THUMB))).toBe('too_large');
  });

  it('gives up on an original that stops arriving, within the time limit', async () => {
    const quick = createVariantRenderer({ ...LIMITS, timeoutSeconds: 1, concurrency: 1 });
    const stalled = new PassThrough();
    stalled.write(photo.subarray(0, 100));
    const started = Date.now();
    expect(await failure(quick.render(async () => stalled, THUMB))).toBe('timeout');
    expect(Date.now() - started).toBeLessThan(2_500);
    expect(stalled.destroyed).toBe(true);
    // The slot was given back.
    expect(quick.load).toEqual({ running: 0, waiting: 0 });
    expect((await quick.render(async () => photo, THUMB)).width).toBe(320);
  });

  it('runs at most `concurrency` renders, queues up to `maxQueue` and refuses the rest as busy', async () => {
    const pool = createVariantRenderer({ ...LIMITS, concurrency: 1, maxQueue: 2 });
    /** Renders running each time an original was opened. */
    const runningAtOpen: number[] = [];
    const source = async () => {
      runningAtOpen.push(pool.load.running);
      return photo;
    };
    const running = [0, 1, 2].map((i) => pool.render(source, spec({ width: 100 + i })));
    expect(pool.load).toEqual({ running: 1, waiting: 2 });
    expect(await failure(pool.render(source, THUMB))).toBe('busy');
    const done = await Promise.all(running);
    expect(done.map((d) => d.width)).toEqual([100, 101, 102]);
    expect(runningAtOpen).toEqual([1, 1, 1]);
    expect(pool.load).toEqual({ running: 0, waiting: 0 });
  });
});
