import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import {
  AVIF_SEQUENCE_400x300,
  gifWithLateFrame,
  gifWithScreen,
  JPEG_5x3,
  makeApng,
  makeAvif,
  makePng,
  noisyFrames,
  WEBP_LOSSY_5x3,
  withExifOrientation,
} from '../../test/fixtures/images.js';
import { AppError } from '../errors/index.js';
import { SNIFF_FIRST_BYTES } from '../uploads/sniff.js';
import { inspectUpload, SNIFF_MAX_BYTES, UploadBody } from './upload.js';

const KB = 1024;
const MB = 1024 * KB;
const limits = { uploadAllowSvg: false, uploadMaxPixels: 100_000_000 };

/** A Blob in 16 KB parts, the way the multipart parser hands an upload over. */
function chunked(bytes: Buffer, part = 16 * KB): Blob {
  const parts: Buffer[] = [];
  for (let at = 0; at < bytes.length; at += part) parts.push(bytes.subarray(at, at + part));
  return new Blob(parts.map((p) => new Uint8Array(p)));
}

function padded(head: Buffer, size: number): Buffer {
  const out = Buffer.alloc(size, 0x5a);
  head.copy(out);
  return out;
}

/** APPn segments of 64 KB in front of a JPEG's first segment: its frame header moves back. */
function jpegWithAppSegments(count: number): Buffer {
  const segments: Buffer[] = [];
  for (let i = 0; i < count; i++) {
    const seg = Buffer.alloc(2 + 65535, 0x20);
    seg[0] = 0xff;
    seg[1] = 0xe2;
    seg.writeUInt16BE(65535, 2);
    segments.push(seg);
  }
  return Buffer.concat([JPEG_5x3.subarray(0, 2), ...segments, JPEG_5x3.subarray(2)]);
}

/** The AVIF with its mdat grown to `size` bytes in all (mdat is its last box). */
function avifOf(size: number, opts: { freeBefore?: number } = {}): Buffer {
  let avif = makeAvif();
  if (opts.freeBefore) {
    // A `free` box between ftyp and meta (ftyp is the first box): meta moves back.
    const ftypEnd = avif.readUInt32BE(0);
    const free = Buffer.alloc(opts.freeBefore);
    free.writeUInt32BE(opts.freeBefore, 0);
    free.write('free', 4, 'latin1');
    avif = Buffer.concat([avif.subarray(0, ftypEnd), free, avif.subarray(ftypEnd)]);
    // iloc points into mdat by absolute offset; the size reader never follows it.
  }
  const mdatAt = avif.lastIndexOf('mdat', undefined, 'latin1') - 4;
  const grown = padded(avif, size);
  grown.writeUInt32BE(size - mdatAt, mdatAt);
  return grown;
}

/** A WebP padded to size, with a RIFF size that covers `riffCovers` bytes of the file. */
function webpOf(size: number, riffCovers = size): Buffer {
  const webp = padded(WEBP_LOSSY_5x3, size);
  webp.writeUInt32LE(riffCovers - 8, 4);
  return webp;
}

async function codeOf(promise: Promise<unknown>): Promise<string | undefined> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof AppError) return err.code;
    throw err;
  }
  return undefined;
}

async function readAll(body: UploadBody): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of body.stream()) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

describe('inspectUpload: type and size from a bounded head', () => {
  it('judges an 8 MB PNG by its first 64 KB, then streams every byte once', async () => {
    const bytes = padded(makePng(4, 3, [1, 2, 3], [4, 5, 6]), 8 * MB);
    const body = new UploadBody(chunked(bytes), 20 * MB);
    expect(await inspectUpload(body, limits)).toMatchObject({ format: 'png', width: 4, height: 3 });
    expect(body.bytesRead).toBe(SNIFF_FIRST_BYTES);
    expect((await readAll(body)).equals(bytes)).toBe(true);
    expect(body.bytesRead).toBe(bytes.length);
  });

  it('refuses a large file that is no image after reading its head only', async () => {
    const body = new UploadBody(chunked(Buffer.alloc(8 * MB, 0x41)), 20 * MB);
    expect(await codeOf(inspectUpload(body, limits))).toBe('UNSUPPORTED_MEDIA_TYPE');
    expect(body.bytesRead).toBe(SNIFF_FIRST_BYTES);
    await body.close();
  });

  it('reads on for a JPEG whose frame header comes after 320 KB of APP segments', async () => {
    const jpeg = jpegWithAppSegments(5);
    const bytes = padded(withExifOrientation(jpeg, 6), 4 * MB);
    const body = new UploadBody(chunked(bytes), 20 * MB);
    // Orientation 6 turns the 5×3 image a quarter: it is shown 3×5.
    expect(await inspectUpload(body, limits)).toMatchObject({ format: 'jpeg', width: 3, height: 5 });
    expect(body.bytesRead).toBeGreaterThan(5 * 64 * KB);
    expect(body.bytesRead).toBeLessThanOrEqual(SNIFF_MAX_BYTES);
    expect((await readAll(body)).equals(bytes)).toBe(true);
  });

  it('gives up on a JPEG frame header further in than the bound, saying so', async () => {
    const bytes = padded(jpegWithAppSegments(17), 4 * MB); // frame header past 1.1 MB
    const body = new UploadBody(chunked(bytes), 20 * MB);
    await expect(inspectUpload(body, limits)).rejects.toMatchObject({
      code: 'BAD_USER_INPUT',
      message: expect.stringMatching(/JPEG header is truncated in the first 1048576 bytes/),
    });
    expect(body.bytesRead).toBeLessThanOrEqual(SNIFF_MAX_BYTES + 16 * KB);
    await body.close();
    // The same header in a file that ends there is simply truncated, as before.
    const cut = jpegWithAppSegments(3);
    const small = new UploadBody(chunked(cut.subarray(0, 150 * KB)), 20 * MB);
    await expect(inspectUpload(small, limits)).rejects.toMatchObject({
      message: 'The JPEG header is truncated',
    });
  });

  it('reads an AVIF only up to the end of its meta box, wherever that is', async () => {
    const big = new UploadBody(chunked(avifOf(6 * MB)), 20 * MB);
    expect(await inspectUpload(big, limits)).toMatchObject({ format: 'avif', width: 8, height: 6 });
    expect(big.bytesRead).toBe(SNIFF_FIRST_BYTES);

    const late = new UploadBody(chunked(avifOf(6 * MB, { freeBefore: 300 * KB })), 20 * MB);
    expect(await inspectUpload(late, limits)).toMatchObject({ format: 'avif', width: 8, height: 6 });
    expect(late.bytesRead).toBeGreaterThan(300 * KB);
    expect(late.bytesRead).toBeLessThanOrEqual(SNIFF_MAX_BYTES);

    const tooLate = new UploadBody(chunked(avifOf(6 * MB, { freeBefore: 2 * MB })), 20 * MB);
    await expect(inspectUpload(tooLate, limits)).rejects.toMatchObject({
      code: 'BAD_USER_INPUT',
      message: expect.stringMatching(/AVIF header is not within the first 1048576 bytes/),
    });
    expect(tooLate.bytesRead).toBeLessThanOrEqual(SNIFF_MAX_BYTES + 16 * KB);
    await tooLate.close();

    // A meta box claiming to run past the end of the file is a truncated file.
    const cut = avifOf(1 * MB, { freeBefore: 100 * KB });
    const meta = cut.indexOf('meta', 0, 'latin1') - 4;
    cut.writeUInt32BE(2 * MB, meta);
    await expect(inspectUpload(new UploadBody(chunked(cut), 20 * MB), limits)).rejects.toMatchObject({
      message: 'The AVIF header is truncated',
    });
  });

  it('checks a large WebP against the size of the whole file', async () => {
    const ok = new UploadBody(chunked(webpOf(3 * MB)), 20 * MB);
    expect(await inspectUpload(ok, limits)).toMatchObject({ format: 'webp', width: 5, height: 3 });
    expect(ok.bytesRead).toBe(SNIFF_FIRST_BYTES);
    // Its RIFF size claims more than was sent: a cut-off upload.
    const cut = new UploadBody(chunked(webpOf(3 * MB, 4 * MB)), 20 * MB);
    await expect(inspectUpload(cut, limits)).rejects.toMatchObject({
      message: 'The WebP header is truncated (RIFF size)',
    });
  });
});

describe('inspectUpload: animation from the first read', () => {
  const frames = noisyFrames;

  it('an animated WebP, an APNG and an AVIF sequence say so, larger than the first read or not; stills do not', async () => {
    const f = await frames();
    const webp = await sharp(f, { join: { animated: true } })
      .webp()
      .toBuffer();
    const apng = makeApng(f);
    const cases: [string, Buffer, boolean][] = [
      ['animated WebP', webp, true],
      ['APNG', apng, true],
      ['AVIF sequence', AVIF_SEQUENCE_400x300, true],
      ['still WebP', await sharp(f[0]!).webp().toBuffer(), false],
      ['still PNG', f[0]!, false],
      ['still AVIF', await sharp(f[0]!).avif().toBuffer(), false],
      [
        'GIF of three frames',
        await sharp(f, { join: { animated: true } })
          .gif()
          .toBuffer(),
        false,
      ],
      ['JPEG', await sharp(f[0]!).jpeg().toBuffer(), false],
    ];
    expect(webp.length).toBeGreaterThan(SNIFF_FIRST_BYTES);
    expect(apng.length).toBeGreaterThan(SNIFF_FIRST_BYTES);
    for (const [name, bytes, animated] of cases) {
      const got = await inspectUpload(new UploadBody(chunked(bytes), 20 * MB), limits);
      expect(got.animated, name).toBe(animated);
      expect({ width: got.width, height: got.height }, name).toEqual({ width: 400, height: 300 });
    }
  });
});

describe('inspectUpload: a GIF is as large as its frames, wherever they are', () => {
  it('a frame larger than the logical screen grows it, as sharp decodes it', async () => {
    const made = await sharp({ create: { width: 300, height: 200, channels: 3, background: '#0a0' } })
      .gif()
      .toBuffer();
    const gif = gifWithScreen(made, 1, 1);
    const seen = await sharp(gif).metadata();
    expect({ width: seen.width, height: seen.height }).toEqual({ width: 300, height: 200 });
    expect(await inspectUpload(new UploadBody(chunked(gif), MB), limits)).toMatchObject({
      format: 'gif',
      width: 300,
      height: 200,
    });
    await expect(
      inspectUpload(new UploadBody(chunked(gif), MB), { ...limits, uploadMaxPixels: 50_000 }),
    ).rejects.toMatchObject({ code: 'BAD_USER_INPUT', message: expect.stringContaining('300×200') });
  });

  it('a 20,000 × 20,000 frame behind 3 MB of comment, past every head, is refused', async () => {
    const gif = gifWithLateFrame(1, 3 * MB, 20_000, 20_000);
    const body = new UploadBody(chunked(gif), 20 * MB);
    await expect(inspectUpload(body, limits)).rejects.toMatchObject({
      code: 'BAD_USER_INPUT',
      message: expect.stringContaining('20000×20000'),
    });
    // Read on to the frame; the store still gets every byte, from the first, once.
    expect(body.bytesRead).toBeGreaterThan(3 * MB);
    const small = gifWithLateFrame(1, 3 * MB, 30, 20);
    const smallBody = new UploadBody(chunked(small), 20 * MB);
    expect(await inspectUpload(smallBody, limits)).toMatchObject({ width: 30, height: 20 });
    const stored: Buffer[] = [];
    for await (const chunk of smallBody.stream()) stored.push(chunk as Buffer);
    expect(Buffer.concat(stored).equals(small)).toBe(true);
  });

  it('sub-blocks of one byte are walked only so far; a GIF cut short is judged by what it has', async () => {
    // A comment of 1.1 million one-byte sub-blocks (2.2 MB).
    const comment = Buffer.alloc(2 + 2 * 1_100_000 + 1, 0x20);
    comment[0] = 0x21;
    comment[1] = 0xfe;
    for (let at = 2; at < comment.length - 1; at += 2) comment[at] = 1;
    comment[comment.length - 1] = 0;
    const first = gifWithLateFrame(1, 0, 1, 1);
    const hostile = Buffer.concat([first.subarray(0, 13 + 12), comment, first.subarray(13 + 12)]);
    const started = performance.now();
    await expect(inspectUpload(new UploadBody(chunked(hostile), 20 * MB), limits)).rejects.toMatchObject({
      code: 'BAD_USER_INPUT',
      message: expect.stringContaining('blocks'),
    });
    expect(performance.now() - started).toBeLessThan(2000);
    const cut = gifWithLateFrame(4, 2 * MB, 60, 40).subarray(0, 100 * KB);
    expect(await inspectUpload(new UploadBody(chunked(cut), 20 * MB), limits)).toMatchObject({
      width: 4,
      height: 4,
    });
  });
});

describe('UploadBody: the declared size is counted, not trusted', () => {
  it('refuses past the limit even when the size was declared within it', async () => {
    const liar = { size: 32 * KB, stream: () => chunked(Buffer.alloc(64 * KB)).stream() } as unknown as Blob;
    const body = new UploadBody(liar, 32 * KB);
    await expect(readAll(body)).rejects.toMatchObject({ code: 'PAYLOAD_TOO_LARGE' });
    expect(body.failure?.code).toBe('PAYLOAD_TOO_LARGE');
  });

  it('refuses a file longer or shorter than it said', async () => {
    const longer = { size: 10, stream: () => chunked(Buffer.alloc(64)).stream() } as unknown as Blob;
    await expect(readAll(new UploadBody(longer, MB))).rejects.toMatchObject({ code: 'BAD_USER_INPUT' });
    const shorter = { size: 100, stream: () => chunked(Buffer.alloc(64)).stream() } as unknown as Blob;
    const body = new UploadBody(shorter, MB);
    await expect(readAll(body)).rejects.toMatchObject({
      code: 'BAD_USER_INPUT',
      message: 'The file ended after 64 of its 100 bytes',
    });
  });
});
