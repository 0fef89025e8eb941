import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { JPEG_5x3, phonePhoto } from '../../test/fixtures/images.js';
import { UploadBody } from '../images/upload.js';
import { orientationOnlyExif, type StoredBytes, strippedJpeg } from './jpeg-metadata.js';

/** A segment `marker` with `body`, inserted right after SOI. */
function withSegment(jpeg: Buffer, marker: number, body: Buffer): Buffer {
  const head = Buffer.from([0xff, marker, 0, 0]);
  head.writeUInt16BE(body.length + 2, 2);
  return Buffer.concat([jpeg.subarray(0, 2), head, body, jpeg.subarray(2)]);
}

const source = (bytes: Buffer) => ({
  size: bytes.length,
  range: async (start: number, end: number) => Buffer.from(bytes.subarray(start, end)),
});

const apply = (bytes: Buffer, s: StoredBytes) => Buffer.concat([s.prefix, bytes.subarray(s.from, s.to)]);

async function stripped(bytes: Buffer): Promise<Buffer> {
  return apply(bytes, await strippedJpeg(source(bytes)));
}

/** Decoded pixels as stored (no orientation applied): equal pixels mean a lossless strip. */
const pixels = (bytes: Buffer) => sharp(bytes).raw().toBuffer();

describe('strippedJpeg: a JPEG without its metadata, losslessly', () => {
  it.each([
    ['baseline', false],
    ['progressive', true],
  ])(
    '%s: the same pixels, orientation kept, no GPS, camera, XMP or comment; the ICC profile kept',
    async (_n, progressive) => {
      const photo = withSegment(
        withSegment(await phonePhoto({ progressive }), 0xfe, Buffer.from('taken at home')),
        0xed,
        Buffer.from('Photoshop 3.0\0 IPTC city: Paris'),
      );
      const trailer = Buffer.from('....ftypmp42 a motion photo with its own GPS track');
      const original = Buffer.concat([photo, trailer]);
      const out = await stripped(original);

      expect((await pixels(out)).equals(await pixels(photo))).toBe(true);
      const meta = await sharp(out).metadata();
      expect(meta).toMatchObject({ width: 64, height: 48, orientation: 6, isProgressive: progressive });
      expect(meta.exif?.equals(orientationOnlyExif(6).subarray(4))).toBe(true);
      expect(meta.xmp).toBeUndefined();
      expect(meta.icc?.equals((await sharp(photo).metadata()).icc!)).toBe(true);
      for (const text of ['SignetCam', 'GPS', 'taken at home', 'Paris', 'motion photo'])
        expect(out.includes(text), text).toBe(false);
      expect(original.includes('SignetCam') && original.includes('GPS')).toBe(true);
      // Ends at the primary image's EOI.
      expect(out.subarray(-2)).toEqual(Buffer.from([0xff, 0xd9]));
      expect(out.length).toBeLessThan(photo.length);
    },
  );

  it('orientation 1 (or none): no EXIF segment at all', async () => {
    const out = await stripped(await phonePhoto({ orientation: 1 }));
    const meta = await sharp(out).metadata();
    expect(meta.exif).toBeUndefined();
    expect(meta.orientation).toBeUndefined();
  });

  it('a file with nothing to drop is stored byte for byte', async () => {
    expect((await stripped(JPEG_5x3)).equals(JPEG_5x3)).toBe(true);
  });

  it('an Adobe segment (the colour transform) and APP0 are kept; MPF and other APPn are not', async () => {
    let jpeg = withSegment(JPEG_5x3, 0xe2, Buffer.from('MPF\0 secondary images'));
    jpeg = withSegment(jpeg, 0xee, Buffer.from('Adobe\0d\0\0\0\0\x01'));
    jpeg = withSegment(jpeg, 0xe9, Buffer.from('maker data'));
    const out = await stripped(jpeg);
    expect(out.includes('Adobe')).toBe(true);
    expect(out.includes('JFIF') === JPEG_5x3.includes('JFIF')).toBe(true);
    expect(out.includes('MPF') || out.includes('maker data')).toBe(false);
    expect((await pixels(out)).equals(await pixels(JPEG_5x3))).toBe(true);
  });

  it('an EOI inside a segment between two scans is not taken for the end of the image', async () => {
    const photo = await phonePhoto({ progressive: true });
    const sos = Buffer.from([0xff, 0xda]);
    const second = photo.indexOf(sos, photo.indexOf(sos) + 2);
    expect(second).toBeGreaterThan(0);
    const comment = Buffer.from([0xff, 0xfe, 0x00, 0x06, 0x78, 0xff, 0xd9, 0x79]);
    const tricky = Buffer.concat([photo.subarray(0, second), comment, photo.subarray(second)]);
    const s = await strippedJpeg(source(tricky));
    expect(s.to).toBe(tricky.length);
    expect((await pixels(apply(tricky, s))).equals(await pixels(photo))).toBe(true);
  });

  it('a file cut short after its first scan began is kept to its end', async () => {
    const photo = await phonePhoto();
    const cut = photo.subarray(0, photo.length - 40);
    const s = await strippedJpeg(source(cut));
    expect(s.to).toBe(cut.length);
    expect(apply(cut, s).includes('GPS')).toBe(false);
  });

  it('malformed before its first scan is an ImageHeaderError (the upload is refused, never stored unstripped)', async () => {
    const noScan = JPEG_5x3.subarray(0, JPEG_5x3.indexOf(Buffer.from([0xff, 0xda])));
    await expect(strippedJpeg(source(noScan))).rejects.toThrow(/The JPEG header is malformed/);
    const fill = Buffer.concat([JPEG_5x3.subarray(0, 2), Buffer.alloc(70_000, 0xff), JPEG_5x3.subarray(3)]);
    await expect(strippedJpeg(source(fill))).rejects.toThrow(/too many fill bytes/);
  });

  it('through an upload body in small parts: the stream yields exactly the stripped bytes, and the size is still checked', async () => {
    const photo = Buffer.concat([await phonePhoto({ progressive: true }), Buffer.from('trailer')]);
    const parts: Buffer[] = [];
    for (let at = 0; at < photo.length; at += 97) parts.push(photo.subarray(at, at + 97));
    const body = new UploadBody(new Blob(parts.map((p) => new Uint8Array(p))), 1 << 20);
    const plan = await strippedJpeg(body);
    const streamed: Buffer[] = [];
    for await (const chunk of body.stream(plan)) streamed.push(chunk as Buffer);
    expect(Buffer.concat(streamed).equals(apply(photo, plan))).toBe(true);
    expect(body.bytesRead).toBe(photo.length);
  });
});
