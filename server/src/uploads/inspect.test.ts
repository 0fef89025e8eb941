import { describe, expect, it } from 'vitest';
import {
  JPEG_5x3,
  makeAvif,
  makeGif,
  makePng,
  makeWebpExtended,
  pngDeclaring,
  SVG,
  WEBP_LOSSLESS_5x3,
  WEBP_LOSSY_5x3,
  withExifOrientation,
} from '../../test/fixtures/images.js';
import { AppError } from '../errors/index.js';
import { inspectImage, objectKeyFor } from '../images/upload.js';
import { ImageHeaderError, readDimensions } from './dimensions.js';
import { detectFormat } from './sniff.js';

const png = makePng(4, 3, [0, 0, 0], [255, 255, 255]);
const limits = { uploadAllowSvg: false, uploadMaxPixels: 100_000_000 };

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    if (err instanceof AppError) return err.code;
    throw err;
  }
  return undefined;
}

describe('detectFormat: by magic bytes only', () => {
  it.each([
    ['jpeg', JPEG_5x3],
    ['png', png],
    ['gif', makeGif(2, 2)],
    ['webp', WEBP_LOSSY_5x3],
    ['webp', WEBP_LOSSLESS_5x3],
    ['webp', makeWebpExtended()],
    ['avif', makeAvif()],
    ['svg', SVG],
  ])('%s', (format, bytes) => {
    expect(detectFormat(bytes)).toBe(format);
  });

  it('knows SVG with a BOM, a doctype with an internal subset, or no prolog', () => {
    expect(detectFormat(Buffer.from('\ufeff  <svg xmlns="http://www.w3.org/2000/svg"/>'))).toBe('svg');
    expect(
      detectFormat(Buffer.from('<!DOCTYPE svg [ <!ENTITY a "b"> ]>\n<svg width="1" height="1"></svg>')),
    ).toBe('svg');
  });

  it('refuses everything else, including look-alikes', () => {
    for (const s of [
      'hello',
      '<!DOCTYPE html><html><svg></svg></html>',
      '<html><svg/></html>',
      '%PDF-1.7',
      'GIF90a',
      'RIFF\0\0\0\0WAVEfmt ',
    ]) {
      expect(detectFormat(Buffer.from(s))).toBeNull();
    }
    // HEIC is ISO BMFF too, but not AVIF.
    const heic = Buffer.from(makeAvif());
    heic.write('heic', 8, 'latin1');
    heic.write('heicmif1miafMA1B', 16, 'latin1');
    expect(detectFormat(heic)).toBeNull();
    expect(detectFormat(Buffer.alloc(0))).toBeNull();
  });
});

describe('readDimensions: from the header', () => {
  it.each([
    ['jpeg', JPEG_5x3, 5, 3],
    ['png', png, 4, 3],
    ['gif', makeGif(7, 5), 7, 5],
    ['webp', WEBP_LOSSY_5x3, 5, 3],
    ['webp', WEBP_LOSSLESS_5x3, 5, 3],
    ['webp', makeWebpExtended(), 5, 3],
    ['avif', makeAvif(), 8, 6],
    ['svg', SVG, 40, 30],
  ] as const)('%s', (format, bytes, width, height) => {
    expect(readDimensions(format, bytes)).toEqual({ width, height });
  });

  it('swaps the sides of a quarter-turned image (EXIF orientation, AVIF irot)', () => {
    expect(readDimensions('jpeg', withExifOrientation(JPEG_5x3, 6))).toEqual({ width: 3, height: 5 });
    expect(readDimensions('jpeg', withExifOrientation(JPEG_5x3, 3))).toEqual({ width: 5, height: 3 });
    expect(readDimensions('avif', makeAvif({ rotate: true }))).toEqual({ width: 6, height: 8 });
  });

  it('SVG sizes come from the viewBox when width/height are relative, else are unknown', () => {
    const svg = (attrs: string) => Buffer.from(`<svg xmlns="http://www.w3.org/2000/svg" ${attrs}></svg>`);
    expect(readDimensions('svg', svg('width="100%" viewBox="0 0 320 200.4"'))).toEqual({
      width: 320,
      height: 200,
    });
    expect(readDimensions('svg', svg(''))).toBeNull();
  });

  it('throws ImageHeaderError for every truncated header', () => {
    const cases = [
      ['jpeg', JPEG_5x3],
      ['png', png],
      ['gif', makeGif(2, 2)],
      ['webp', WEBP_LOSSY_5x3],
      ['webp', WEBP_LOSSLESS_5x3],
      ['webp', makeWebpExtended()],
      ['avif', makeAvif()],
    ] as const;
    for (const [format, bytes] of cases) {
      // Cut before the size is readable (for AVIF, inside the meta box).
      const cut = format === 'avif' ? 60 : format === 'jpeg' ? 160 : format === 'png' ? 30 : 11;
      expect(() => readDimensions(format, bytes.subarray(0, cut)), format).toThrow(ImageHeaderError);
    }
  });

  it('rejects a PNG whose IHDR CRC does not match, and zero sizes', () => {
    const bad = Buffer.from(png);
    bad[17] = (bad[17]! + 1) & 0xff;
    expect(() => readDimensions('png', bad)).toThrow(/CRC/);
    expect(() => readDimensions('png', pngDeclaring(0, 10))).toThrow(/zero/);
    expect(() => readDimensions('gif', makeGif(0, 3))).toThrow(ImageHeaderError);
  });

  it('a WebP whose RIFF size promises more bytes than arrived is truncated', () => {
    const cut = WEBP_LOSSY_5x3.subarray(0, WEBP_LOSSY_5x3.length - 4);
    expect(() => readDimensions('webp', cut)).toThrow(/truncated/);
  });

  it('an AVIF without its primary item properties is refused', () => {
    const avif = Buffer.from(makeAvif());
    const at = avif.indexOf('pitm');
    avif.writeUInt16BE(7, at + 8); // primary item 7 has no properties
    expect(() => readDimensions('avif', avif)).toThrow(/primary item/);
  });
});

describe('inspectImage', () => {
  it('gives the content type of the bytes, whatever the file is called', () => {
    expect(inspectImage(png, limits)).toMatchObject({ contentType: 'image/png', ext: 'png', width: 4 });
    expect(inspectImage(makeAvif(), limits)).toMatchObject({ contentType: 'image/avif', ext: 'avif' });
  });

  it('maps every refusal to its code', () => {
    expect(codeOf(() => inspectImage(Buffer.alloc(0), limits))).toBe('BAD_USER_INPUT');
    expect(codeOf(() => inspectImage(Buffer.from('not an image'), limits))).toBe('UNSUPPORTED_MEDIA_TYPE');
    expect(codeOf(() => inspectImage(SVG, limits))).toBe('UNSUPPORTED_MEDIA_TYPE');
    expect(inspectImage(SVG, { ...limits, uploadAllowSvg: true })).toMatchObject({
      contentType: 'image/svg+xml',
      width: 40,
      height: 30,
    });
    expect(codeOf(() => inspectImage(png.subarray(0, 20), limits))).toBe('BAD_USER_INPUT');
    expect(codeOf(() => inspectImage(pngDeclaring(100_000, 100_000), limits))).toBe('BAD_USER_INPUT');
    expect(codeOf(() => inspectImage(makeAvif({ width: 2 ** 31, height: 2 }), limits))).toBe(
      'BAD_USER_INPUT',
    );
    expect(codeOf(() => inspectImage(pngDeclaring(10_000, 10_000), limits))).toBeUndefined();
  });
});

describe('objectKeyFor', () => {
  it('builds u/<owner>/<id>.<ext> and never lets the owner form a dot segment', () => {
    const id = '0b6f3c1e-8a52-4a55-9c1d-3f1c2d9e7a10';
    expect(objectKeyFor('alice', id, 'png')).toBe(`u/alice/${id}.png`);
    expect(objectKeyFor('..', id, 'png')).toBe(`u/%2E%2E/${id}.png`);
    expect(objectKeyFor('a/b:c', id, 'gif')).toBe(`u/a%2Fb%3Ac/${id}.gif`);
  });
});
