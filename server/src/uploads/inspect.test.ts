import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  exifTiff,
  JPEG_5x3,
  makeAvif,
  makeGif,
  makePng,
  makeWebpExtended,
  pngChunk,
  pngDeclaring,
  pngWithChunks,
  SVG,
  WEBP_LOSSLESS_5x3,
  WEBP_LOSSY_5x3,
  webpChunk,
  webpExtendedWith,
  withExifOrientation,
} from '../../test/fixtures/images.js';
import { AppError } from '../errors/index.js';
import { inspectImage, objectKeyFor } from '../images/upload.js';
import { EXIF_WALK_MAX_CHUNKS, ImageHeaderError, isAnimated, readDimensions } from './dimensions.js';
import { detectFormat, SNIFF_BYTES } from './sniff.js';

const png = makePng(4, 3, [0, 0, 0], [255, 255, 255]);
const limits = { uploadAllowSvg: false, uploadMaxPixels: 100_000_000 };

/**
 * The result (or error) of fn and its fastest time of three, in ms: the first call may include
 * compiling the reader and any call may meet a garbage-collection pause, while a backtracking or
 * unbounded walk is slow every time.
 */
function timed<T>(fn: () => T): { value?: T; error?: unknown; ms: number } {
  let best = Number.POSITIVE_INFINITY;
  let out: { value?: T; error?: unknown } = {};
  for (let i = 0; i < 3; i++) {
    const start = performance.now();
    try {
      out = { value: fn() };
    } catch (error) {
      out = { error };
    }
    best = Math.min(best, performance.now() - start);
  }
  return { ...out, ms: best };
}

/**
 * The bound for one hostile input against the header readers. The attacks these tests reproduce
 * cost from 0.7 s to hours with the old code; the linear scans take well under 1 ms, so 100 ms
 * leaves room for a slow, loaded machine without letting the old behaviour pass.
 */
const ATTACK_MS = 100;

const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
};
const isoBox = (type: string, ...parts: Buffer[]) => {
  const body = Buffer.concat(parts);
  return Buffer.concat([u32(body.length + 8), Buffer.from(type, 'latin1'), body]);
};
const AVIF_FTYP = isoBox('ftyp', Buffer.from('avif', 'latin1'), u32(0), Buffer.from('avifmif1', 'latin1'));

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
    // PNG's eXIf chunk, WebP's EXIF chunk (bare TIFF header or `Exif\0\0` first).
    expect(readDimensions('png', pngWithChunks(png, pngChunk('eXIf', exifTiff(6))))).toEqual({
      width: 3,
      height: 4,
    });
    const prefixed = Buffer.concat([Buffer.from('Exif\0\0', 'latin1'), exifTiff(8)]);
    for (const exif of [exifTiff(6), prefixed]) {
      expect(readDimensions('webp', webpExtendedWith(webpChunk('EXIF', exif)))).toEqual({
        width: 3,
        height: 5,
      });
    }
    expect(readDimensions('webp', webpExtendedWith(webpChunk('EXIF', exifTiff(3))))).toEqual({
      width: 5,
      height: 3,
    });
  });

  it('an EXIF chunk whose lengths or offsets lie is read as no orientation, never past the buffer', () => {
    const eXIf = pngChunk('eXIf', exifTiff(6));
    // Its length past the end of the file (0xffffffff), or cut short by it.
    const huge = Buffer.from(eXIf);
    huge.writeUInt32BE(0xffffffff, 0);
    expect(readDimensions('png', pngWithChunks(png, huge))).toEqual({ width: 4, height: 3 });
    expect(readDimensions('png', Buffer.concat([png.subarray(0, 33), eXIf.subarray(0, 20)]))).toEqual({
      width: 4,
      height: 3,
    });
    // IFD0's offset, or its entry count, beyond the EXIF data.
    const farIfd = exifTiff(6);
    farIfd.writeUInt32BE(0xfffffff0, 4);
    const manyEntries = exifTiff(6);
    manyEntries.writeUInt16BE(0xffff, 8);
    manyEntries.writeUInt16BE(0x0100, 10); // not the orientation tag: the walk goes on to the end
    for (const exif of [farIfd, manyEntries, Buffer.from('MM\0*'), Buffer.alloc(0)]) {
      expect(readDimensions('png', pngWithChunks(png, pngChunk('eXIf', exif)))).toEqual({
        width: 4,
        height: 3,
      });
      expect(readDimensions('webp', webpExtendedWith(webpChunk('EXIF', exif)))).toEqual({
        width: 5,
        height: 3,
      });
    }
    // A WebP EXIF chunk running past the RIFF size (and the file).
    const cut = webpExtendedWith(webpChunk('EXIF', exifTiff(6)));
    cut.writeUInt32LE(1000, cut.length - 30);
    expect(readDimensions('webp', cut)).toEqual({ width: 5, height: 3 });
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

describe('isAnimated: from the head', () => {
  const actl = (frames: number) => {
    const data = Buffer.alloc(8);
    data.writeUInt32BE(frames, 0);
    return pngChunk('acTL', data);
  };
  it('WebP by its VP8X animation flag, PNG by an acTL of more than one frame before IDAT, AVIF by its avis brand', () => {
    const webp = makeWebpExtended();
    expect(isAnimated('webp', webp)).toBe(false);
    webp[20] = webp[20]! | 0x02;
    expect(isAnimated('webp', webp)).toBe(true);
    expect(isAnimated('webp', WEBP_LOSSY_5x3)).toBe(false);

    expect(isAnimated('png', png)).toBe(false);
    expect(isAnimated('png', pngWithChunks(png, actl(3)))).toBe(true);
    expect(isAnimated('png', pngWithChunks(png, actl(1)))).toBe(false);
    // After IDAT it is no APNG (and a cut acTL says nothing).
    expect(
      isAnimated('png', Buffer.concat([png.subarray(0, png.length - 12), actl(3), png.subarray(-12)])),
    ).toBe(false);
    expect(isAnimated('png', pngWithChunks(png, actl(3)).subarray(0, 40))).toBe(false);

    const avif = makeAvif();
    expect(isAnimated('avif', avif)).toBe(false);
    const sequence = Buffer.from(avif);
    sequence.write('avis', 8, 'latin1');
    expect(isAnimated('avif', sequence)).toBe(true);
    expect(isAnimated('jpeg', JPEG_5x3)).toBe(false);
  });
});

describe('hostile text uploads: the SVG sniff and svgSize scan linearly over a bounded prefix', () => {
  // "<!---->" k times plus a byte made the old prolog pattern try 2^k ways (k = 40: about an hour).
  const comments = (k: number) => '<!---->'.repeat(k);

  it('60 empty comments and a byte is not SVG, decided in well under 100 ms', () => {
    const hostile = Buffer.from(`${comments(60)}x`);
    for (const allowSvg of [true, false]) {
      const r = timed(() => detectFormat(hostile, { allowSvg }));
      console.info(`detectFormat(60 × "<!---->" + byte, allowSvg=${allowSvg}): ${r.ms.toFixed(3)} ms`);
      expect(r.value).toBeNull();
      expect(r.ms).toBeLessThan(ATTACK_MS);
    }
    for (const uploadAllowSvg of [true, false]) {
      const r = timed(() => codeOf(() => inspectImage(hostile, { ...limits, uploadAllowSvg })));
      expect(r.value).toBe('UNSUPPORTED_MEDIA_TYPE');
      expect(r.ms).toBeLessThan(ATTACK_MS);
    }
  });

  it('the same comments before a real root are still SVG, and only when SVG is looked for', () => {
    const svg = Buffer.from(
      `${comments(60)}\n<svg xmlns="http://www.w3.org/2000/svg" width="3" height="2"/>`,
    );
    expect(detectFormat(svg)).toBe('svg');
    expect(detectFormat(svg, { allowSvg: false })).toBeNull();
    expect(detectFormat(SVG, { allowSvg: false })).toBeNull();
    expect(readDimensions('svg', svg)).toEqual({ width: 3, height: 2 });
  });

  it('the prolog may hold comments, processing instructions and a doctype with "]" in its subset', () => {
    const prolog =
      '<?xml version="1.0"?>\n<!-- a > b -->\t<?pi x?>\r\n' +
      '<!DOCTYPE svg [ <!ENTITY a "]"> <!ENTITY b "c"> ]  >\n<SVG width="4" height="5"></SVG>';
    expect(detectFormat(Buffer.from(prolog))).toBe('svg');
    for (const s of [
      '<!-- never closed <svg/>',
      '<?pi <svg/>',
      '<!DOCTYPE svg [ <svg/>',
      '<svgx/>',
      '<svg',
    ]) {
      expect(detectFormat(Buffer.from(s)), s).toBeNull();
    }
  });

  it('a root element that starts past the first 4 KB is not sniffed as SVG', () => {
    const late = Buffer.from(`<!--${'-'.repeat(SNIFF_BYTES)}--><svg/>`);
    expect(detectFormat(late)).toBeNull();
  });

  it('svgSize reads the root element, not an <svg> tag inside a comment', () => {
    const svg = Buffer.from('<!-- <svg width="9" height="9"> --><svg viewBox="0,0 , 12 7" width="50%"/>');
    expect(readDimensions('svg', svg)).toEqual({ width: 12, height: 7 });
    // ">" is allowed inside a quoted attribute value.
    expect(readDimensions('svg', Buffer.from('<svg data-x="a>b" width="6px" height=" 8 "/>'))).toEqual({
      width: 6,
      height: 8,
    });
  });

  it.each([
    // 16K unclosed "<svg": the old tag pattern rescanned the rest of the text from each one (~0.9 s).
    ['"<svg" × 16,384', () => '<svg'.repeat(16 * 1024)],
    // A width of 60,000 spaces then a letter: the old length pattern was quadratic (~2 s).
    ['width="1" + 60,000 spaces + "x"', () => `<svg width="1${' '.repeat(60_000)}x" height="1">`],
    ['64 KB of spaces inside the tag', () => `<svg${' '.repeat(64 * 1024)}>`],
    ['64 KB of "=" inside the tag', () => `<svg a${'='.repeat(64 * 1024)}>`],
  ])('svgSize of %s is answered in well under 100 ms', (_label, make) => {
    const bytes = Buffer.from(make());
    const r = timed(() => readDimensions('svg', bytes));
    console.info(`svgSize(${_label}): ${r.ms.toFixed(3)} ms`);
    expect(r.ms).toBeLessThan(ATTACK_MS);
    if (r.error !== undefined) expect(r.error).toBeInstanceOf(ImageHeaderError);
    else expect(r.value).toBeNull();
  });
});

describe('hostile binary uploads: malformed headers are ImageHeaderError, never a RangeError, and bounded', () => {
  /** An AVIF whose meta box ends with a version-1 pitm of `payload` bytes, at the end of the file. */
  function avifEndingInPitm(payload: number): Buffer {
    const iprp = isoBox('iprp', isoBox('ipco'), isoBox('ipma', Buffer.alloc(8)));
    const pitm = isoBox('pitm', Buffer.from([1, 0, 0, 0]), Buffer.alloc(payload - 4, 1));
    return Buffer.concat([AVIF_FTYP, isoBox('meta', Buffer.alloc(4), iprp, pitm)]);
  }

  it.each([6, 7])(
    'an AVIF pitm box of %i bytes at the end of the file is a header error (was a RangeError → 500)',
    (n) => {
      const avif = avifEndingInPitm(n);
      expect(detectFormat(avif)).toBe('avif');
      expect(() => readDimensions('avif', avif)).toThrow(ImageHeaderError);
      expect(() => readDimensions('avif', avif)).toThrow(/pitm/);
      expect(codeOf(() => inspectImage(avif, limits))).toBe('BAD_USER_INPUT');
    },
  );

  it('AVIF meta, ipma and ispe boxes too short for their fields are header errors', () => {
    const short = [
      Buffer.concat([AVIF_FTYP, isoBox('meta', Buffer.alloc(2))]),
      Buffer.concat([
        AVIF_FTYP,
        isoBox(
          'meta',
          Buffer.alloc(4),
          isoBox('pitm', Buffer.alloc(6)),
          isoBox('iprp', isoBox('ipco'), isoBox('ipma')),
        ),
      ]),
      Buffer.concat([
        AVIF_FTYP,
        isoBox(
          'meta',
          Buffer.alloc(4),
          isoBox('pitm', Buffer.alloc(6)),
          isoBox(
            'iprp',
            isoBox('ipco', isoBox('ispe', Buffer.alloc(8))),
            isoBox('ipma', Buffer.from([0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 1, 1])),
          ),
        ),
      ]),
    ];
    for (const avif of short) expect(() => readDimensions('avif', avif)).toThrow(ImageHeaderError);
  });

  // 20 MB is the default upload limit.
  const TWENTY_MB = 20 * 1024 * 1024;

  it('20 MB of empty ISO boxes is refused in well under 100 ms', () => {
    const boxes = Buffer.alloc(TWENTY_MB);
    AVIF_FTYP.copy(boxes);
    for (let at = AVIF_FTYP.length; at + 8 <= boxes.length; at += 8) {
      boxes.writeUInt32BE(8, at);
      boxes.write('free', at + 4, 'latin1');
    }
    const walk = timed(() => readDimensions('avif', boxes));
    console.info(`avifSize(20 MB of 8-byte boxes): ${walk.ms.toFixed(3)} ms`);
    expect(walk.error).toBeInstanceOf(ImageHeaderError);
    expect(walk.ms).toBeLessThan(ATTACK_MS);
  });

  it('an ftyp box declaring 20 MB of brands is sniffed in well under 100 ms', () => {
    const ftyp = Buffer.alloc(TWENTY_MB, 0x61);
    ftyp.writeUInt32BE(TWENTY_MB, 0);
    ftyp.write('ftypheic', 4, 'latin1');
    const sniff = timed(() => detectFormat(ftyp));
    console.info(`detectFormat(ftyp of 20 MB of brands): ${sniff.ms.toFixed(3)} ms`);
    expect(sniff.value).toBeNull();
    expect(sniff.ms).toBeLessThan(ATTACK_MS);
  });

  it('20 MB of JPEG markers without a frame header, or of fill bytes, is refused in well under 100 ms', () => {
    const markers = Buffer.alloc(TWENTY_MB, 0xd0);
    for (let i = 0; i < markers.length; i += 2) markers[i] = 0xff;
    markers[1] = 0xd8;
    const fill = Buffer.alloc(TWENTY_MB, 0xff);
    fill[1] = 0xd8;
    // The walk stops at its bound (the message says which) instead of running to the end.
    for (const [label, bytes, bound] of [
      ['markers', markers, /segments/],
      ['fill bytes', fill, /fill bytes/],
    ] as const) {
      const r = timed(() => readDimensions('jpeg', bytes));
      console.info(`jpegSize(20 MB of ${label}): ${r.ms.toFixed(3)} ms`);
      expect(r.error).toBeInstanceOf(ImageHeaderError);
      expect((r.error as Error).message).toMatch(bound);
      expect(r.ms).toBeLessThan(ATTACK_MS);
    }
  });

  it('20 MB of empty PNG or WebP chunks before an EXIF chunk is refused in well under 100 ms', () => {
    const empty = (format: 'png' | 'webp') => {
      const chunk = format === 'png' ? pngChunk('tEXt', Buffer.alloc(0)) : webpChunk('JUNK', Buffer.alloc(0));
      const n = Math.floor(TWENTY_MB / chunk.length);
      const chunks = Buffer.alloc(n * chunk.length);
      for (let i = 0; i < n; i++) chunk.copy(chunks, i * chunk.length);
      return format === 'png' ? pngWithChunks(png, chunks) : webpExtendedWith(chunks);
    };
    for (const format of ['png', 'webp'] as const) {
      const bytes = empty(format);
      const r = timed(() => readDimensions(format, bytes));
      console.info(`${format}: 20 MB of empty chunks: ${r.ms.toFixed(3)} ms`);
      expect(r.error).toBeInstanceOf(ImageHeaderError);
      expect((r.error as Error).message).toMatch(`more than ${EXIF_WALK_MAX_CHUNKS} chunks`);
      expect(r.ms).toBeLessThan(ATTACK_MS);
    }
  });

  it('property: a cut or corrupted header of any format is read or refused with ImageHeaderError', () => {
    const valid = [
      ['jpeg', withExifOrientation(JPEG_5x3, 6)],
      ['png', png],
      ['png', pngWithChunks(png, pngChunk('eXIf', exifTiff(6)))],
      ['webp', webpExtendedWith(webpChunk('EXIF', exifTiff(6)))],
      ['gif', makeGif(2, 2)],
      ['webp', WEBP_LOSSY_5x3],
      ['webp', WEBP_LOSSLESS_5x3],
      ['webp', makeWebpExtended()],
      ['avif', makeAvif({ rotate: true })],
      ['svg', SVG],
    ] as const;
    fc.assert(
      fc.property(
        fc.constantFrom(...valid),
        fc.nat(),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 6 }),
        ([format, original], cut, edits) => {
          const bytes = Buffer.from(original.subarray(0, cut % (original.length + 1)));
          for (const [at, value] of edits) if (bytes.length > 0) bytes[at % bytes.length] = value;
          try {
            readDimensions(format, bytes);
          } catch (err) {
            if (!(err instanceof ImageHeaderError)) throw err;
          }
        },
      ),
      { numRuns: 3000 },
    );
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
