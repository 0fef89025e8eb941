import { randomUUID } from 'node:crypto';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import sharp, { type Sharp } from 'sharp';
import { thumbHashToApproximateAspectRatio, thumbHashToRGBA } from 'thumbhash';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { crc32 } from '../../src/crc32.js';
import type { ImageRow } from '../../src/db/types.js';
import { seedDemoPhotos } from '../../src/demo-photos.js';
import { UNDECODABLE_PLACEHOLDER } from '../../src/images/placeholders.js';
import { thumbHashOf, UndecodableImage } from '../../src/images/thumbhash.js';
import { inspectImage, inspectUpload, UploadBody } from '../../src/images/upload.js';
import { SNIFF_FIRST_BYTES } from '../../src/uploads/sniff.js';
import { pngDeclaring, SVG } from '../fixtures/images.js';
import { testRedisUrl } from '../support/env.js';
import { type Harness, startHarness } from '../support/harness.js';
import { seed } from '../support/seed.js';
import { uploadFile } from '../support/upload.js';

/**
 * A 4000×3000 landscape JPEG stored with EXIF orientation 6 (shown turned a quarter clockwise:
 * 3000×4000), red on its stored top half and blue on its bottom half, so displayed the right half
 * is red and the left half blue. It carries GPS tags, as a phone's photo does.
 */
async function orientedPhoto(): Promise<Buffer> {
  const svg = Buffer.from(
    '<svg xmlns="http://www.w3.org/2000/svg" width="4000" height="3000">' +
      '<rect width="4000" height="1500" fill="#ff0000"/><rect y="1500" width="4000" height="1500" fill="#0000ff"/></svg>',
  );
  return sharp(svg)
    .jpeg({ quality: 80 })
    .withExif({
      IFD0: { Make: 'Signet', Model: 'Test camera' },
      IFD3: {
        GPSLatitudeRef: 'N',
        GPSLatitude: '48/1 51/1 24/1',
        GPSLongitudeRef: 'E',
        GPSLongitude: '2/1 21/1 3/1',
      },
    })
    .withMetadata({ orientation: 6 })
    .toBuffer();
}

/** Entries of the GPS IFD of an EXIF block (TIFF header first, as sharp's metadata() gives it). */
function gpsEntryCount(exif: Buffer): number {
  const t = exif.subarray(exif.toString('latin1', 0, 6) === 'Exif\0\0' ? 6 : 0);
  const le = t.toString('latin1', 0, 2) === 'II';
  const u16 = (o: number) => (le ? t.readUInt16LE(o) : t.readUInt16BE(o));
  const u32 = (o: number) => (le ? t.readUInt32LE(o) : t.readUInt32BE(o));
  const ifd0 = u32(4);
  for (let i = 0; i < u16(ifd0); i++) {
    const e = ifd0 + 2 + i * 12;
    if (u16(e) === 0x8825) return u16(u32(e + 8));
  }
  return 0;
}

/** A noisy JPEG (so its entropy-coded data is long), for cutting and corrupting. */
async function noisyJpeg(width: number, height: number): Promise<Buffer> {
  return sharp({
    create: {
      width,
      height,
      channels: 3,
      background: '#808080',
      noise: { type: 'gaussian', mean: 128, sigma: 30 },
    },
  })
    .jpeg({ quality: 85 })
    .toBuffer();
}

/** A real tiny JPEG whose frame header declares `w`×`h` (a decompression bomb of a few hundred bytes). */
async function jpegDeclaring(w: number, h: number): Promise<Buffer> {
  const jpeg = Buffer.from(
    await sharp({ create: { width: 16, height: 16, channels: 3, background: '#336699' } })
      .jpeg()
      .toBuffer(),
  );
  for (let at = 2; at < jpeg.length; ) {
    const marker = jpeg[at + 1]!;
    const len = jpeg.readUInt16BE(at + 2);
    if (marker === 0xc0) {
      jpeg.writeUInt16BE(h, at + 5);
      jpeg.writeUInt16BE(w, at + 7);
      return jpeg;
    }
    at += 2 + len;
  }
  throw new Error('no SOF0 in the JPEG sharp made');
}

function decode(placeholder: string) {
  const hash = Buffer.from(placeholder, 'base64');
  return { ...thumbHashToRGBA(hash), ratio: thumbHashToApproximateAspectRatio(hash) };
}

/** signet_placeholders_computed_total by result. */
async function counter(h: Harness): Promise<Record<string, number>> {
  const { values } = await h.container.metrics.placeholdersComputed.get();
  return Object.fromEntries(values.map((v) => [String(v.labels.result), v.value]));
}

async function rowOf(h: Harness, id: string) {
  return h.db.kysely.selectFrom('images').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
}

/** Puts bytes in the bucket and a row naming them, as a row from before placeholders existed. */
async function oldRow(
  h: Harness,
  owner: string,
  bytes: Buffer | null,
  ext = 'jpg',
  contentType = 'image/jpeg',
): Promise<ImageRow> {
  const id = randomUUID();
  const key = `u/${owner}/${id}.${ext}`;
  const etag = bytes ? (await h.storage.put(key, bytes, contentType)).etag : null;
  return h.container.imagesRepo.insert({
    id,
    ownerId: owner,
    objectKey: key,
    contentType,
    byteSize: bytes?.length ?? 0,
    width: 10,
    height: 10,
    etag,
    animated: false,
    createdAt: new Date(),
  });
}

// The header reader decides width and height at upload; sharp decodes for placeholders and
// variants. The two must agree on every format and every orientation, or a variant's box and the
// row's size would differ.
describe('the upload header reader agrees with sharp on the displayed size', () => {
  const limits = { uploadAllowSvg: false, uploadMaxPixels: 100_000_000 };
  const read = async (bytes: Buffer) => {
    const body = new UploadBody(new Blob([new Uint8Array(bytes)]), bytes.length);
    try {
      const r = await inspectUpload(body, limits);
      return { width: r.width, height: r.height };
    } finally {
      await body.close();
    }
  };
  const scene = () =>
    sharp({ create: { width: 300, height: 200, channels: 3, background: '#ff5e3a' } }).composite([
      {
        input: { create: { width: 100, height: 50, channels: 3, background: '#007aff' } },
        left: 10,
        top: 20,
      },
    ]);

  // Every format sharp writes an orientation into (AVIF gets it as irot/imir, not EXIF), both as a
  // whole file and past the first read (noise makes the file larger than SNIFF_FIRST_BYTES, so a
  // WebP's EXIF chunk, after the image data, lies beyond the head and is read on for).
  const ORIENTED = [
    ['JPEG', (s: Sharp) => s.jpeg()],
    ['PNG', (s: Sharp) => s.png()],
    ['WebP (lossy)', (s: Sharp) => s.webp()],
    ['WebP (lossless)', (s: Sharp) => s.webp({ lossless: true })],
    ['AVIF', (s: Sharp) => s.avif({ effort: 0 })],
  ] as const;
  const noisy = () =>
    sharp({
      create: {
        width: 600,
        height: 400,
        channels: 3,
        background: '#808080',
        noise: { type: 'gaussian', mean: 128, sigma: 60 },
      },
    });
  it.each(
    ORIENTED.flatMap(([name, encode]) =>
      [1, 2, 3, 4, 5, 6, 7, 8].flatMap((orientation) => [
        [name, orientation, 'small', encode, scene] as const,
        [name, orientation, 'past the head', encode, noisy] as const,
      ]),
    ),
  )('%s with EXIF orientation %i (%s)', async (name, orientation, size, encode, source) => {
    const bytes = await encode(await source())
      .withMetadata({ orientation })
      .toBuffer();
    if (size === 'past the head') expect(bytes.length).toBeGreaterThan(SNIFF_FIRST_BYTES);
    const meta = await sharp(bytes).metadata();
    if (name !== 'AVIF') expect(meta.orientation).toBe(orientation);
    expect(await read(bytes)).toEqual(meta.autoOrient);
    const [w, h] = size === 'small' ? [300, 200] : [600, 400];
    expect(await read(bytes)).toEqual(orientation >= 5 ? { width: h, height: w } : { width: w, height: h });
  });

  // Files sharp does not write but libvips reads: where and how the EXIF chunk counts for it.
  const tiff = (orientation: number, order: 'II' | 'MM' = 'II') => {
    const t = Buffer.alloc(26);
    const le = order === 'II';
    t.write(order, 0, 'latin1');
    const u16 = (v: number, at: number) => (le ? t.writeUInt16LE(v, at) : t.writeUInt16BE(v, at));
    const u32 = (v: number, at: number) => (le ? t.writeUInt32LE(v, at) : t.writeUInt32BE(v, at));
    u16(42, 2);
    u32(8, 4); // IFD0
    u16(1, 8); // one entry: orientation, SHORT, count 1
    u16(0x0112, 10);
    u16(3, 12);
    u32(1, 14);
    u16(orientation, 18);
    return t;
  };
  const EXIF_PREFIX = Buffer.from('Exif\0\0', 'latin1');
  const pngChunk = (type: string, data: Buffer) => {
    const head = Buffer.alloc(8);
    head.writeUInt32BE(data.length, 0);
    head.write(type, 4, 'latin1');
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])), 0);
    return Buffer.concat([head, data, crc]);
  };
  /** The PNG's chunks after IHDR, with `insert` placed before IDAT or before IEND. */
  const pngWith = async (insert: Buffer[], where: 'IDAT' | 'IEND') => {
    const png = await noisy().png().toBuffer();
    const parts: Buffer[] = [png.subarray(0, 33)];
    for (let at = 33; at < png.length; ) {
      const end = at + 12 + png.readUInt32BE(at);
      if (png.toString('latin1', at + 4, at + 8) === where && insert.length) parts.push(...insert.splice(0));
      parts.push(png.subarray(at, end));
      at = end;
    }
    return Buffer.concat(parts);
  };
  const webpChunk = (type: string, data: Buffer) => {
    const head = Buffer.alloc(8);
    head.write(type, 0, 'latin1');
    head.writeUInt32LE(data.length, 4);
    return Buffer.concat([head, data, Buffer.alloc(data.length & 1)]);
  };
  /** A WebP sharp made with EXIF (VP8X, ICCP, VP8, EXIF), its EXIF chunks replaced by `exif`. */
  const webpWith = async (exif: Buffer[], opts: { flag?: boolean; first?: boolean } = {}) => {
    const webp = await noisy().webp().withMetadata({ orientation: 1 }).toBuffer();
    const chunks: Buffer[] = [];
    for (let at = 12; at < webp.length; ) {
      const n = webp.readUInt32LE(at + 4);
      chunks.push(Buffer.from(webp.subarray(at, at + 8 + n + (n & 1))));
      at += 8 + n + (n & 1);
    }
    const [vp8x, ...rest] = chunks.filter((c) => c.toString('latin1', 0, 4) !== 'EXIF');
    if (opts.flag === false) vp8x![8]! &= ~0x08;
    const body = opts.first ? [vp8x!, ...exif, ...rest] : [vp8x!, ...rest, ...exif];
    const riff = Buffer.alloc(12);
    riff.write('RIFF', 0, 'latin1');
    riff.writeUInt32LE(4 + body.reduce((n, c) => n + c.length, 0), 4);
    riff.write('WEBP', 8, 'latin1');
    return Buffer.concat([riff, ...body]);
  };
  const padding = pngChunk('tEXt', Buffer.concat([Buffer.from('Comment\0'), Buffer.alloc(100_000, 0x61)]));
  it.each([
    ['PNG: eXIf before IDAT, big-endian', () => pngWith([pngChunk('eXIf', tiff(6, 'MM'))], 'IDAT'), 6],
    [
      'PNG: eXIf past the head (100 kB tEXt first)',
      () => pngWith([padding, pngChunk('eXIf', tiff(6))], 'IDAT'),
      6,
    ],
    [
      'PNG: eXIf after IDAT (libvips reads no further)',
      () => pngWith([pngChunk('eXIf', tiff(6))], 'IEND'),
      1,
    ],
    [
      'PNG: eXIf starting Exif\\0\\0 (libpng drops it)',
      () => pngWith([pngChunk('eXIf', Buffer.concat([EXIF_PREFIX, tiff(6)]))], 'IDAT'),
      1,
    ],
    [
      'PNG: two eXIf, the first counts',
      () => pngWith([pngChunk('eXIf', tiff(6)), pngChunk('eXIf', tiff(3))], 'IDAT'),
      6,
    ],
    ['PNG: orientation 9 (out of range)', () => pngWith([pngChunk('eXIf', tiff(9))], 'IDAT'), 1],
    ['WebP: bare TIFF header', () => webpWith([webpChunk('EXIF', tiff(6))]), 6],
    ['WebP: EXIF before the image data', () => webpWith([webpChunk('EXIF', tiff(6))], { first: true }), 6],
    ['WebP: EXIF flag not set', () => webpWith([webpChunk('EXIF', tiff(6))], { flag: false }), 1],
    [
      'WebP: two EXIF, the first counts',
      () => webpWith([webpChunk('EXIF', tiff(3)), webpChunk('EXIF', tiff(6))]),
      3,
    ],
    [
      'WebP: odd length, then XMP',
      () =>
        webpWith([
          webpChunk('EXIF', Buffer.concat([EXIF_PREFIX, tiff(6), Buffer.alloc(1)])),
          webpChunk('XMP ', Buffer.from('x')),
        ]),
      6,
    ],
  ] as const)('%s', async (_name, make, orientation) => {
    const bytes = await make();
    const meta = await sharp(bytes).metadata();
    expect(meta.orientation ?? 1).toBe(orientation);
    expect(await read(bytes)).toEqual(meta.autoOrient);
    // As a whole file too (the inspector's path for one that fits in its first read).
    expect(inspectImage(bytes, limits)).toMatchObject(meta.autoOrient);
  });

  it.each([
    ['PNG', () => scene().png()],
    ['WebP (lossy)', () => scene().webp()],
    ['WebP (lossless)', () => scene().webp({ lossless: true })],
    ['GIF', () => scene().gif()],
    ['AVIF', () => scene().avif()],
  ] as const)('%s', async (_name, make) => {
    const bytes = await make().toBuffer();
    expect(await read(bytes)).toEqual((await sharp(bytes).metadata()).autoOrient);
  });
});

// Uploads and placeholders against the real things: PostgreSQL, the COS SDK talking to the
// fixture, and sharp. The background jobs are not started: each test runs the work it checks.
describe('upload pipeline: displayed size and ThumbHash placeholders (PostgreSQL + cos + sharp)', () => {
  let h: Harness;

  beforeAll(async () => {
    h = await startHarness({ driver: 'cos', redis: 'memory' });
  });
  afterAll(async () => {
    await h?.close();
  });

  it('a 4000×3000 JPEG with EXIF orientation 6 and GPS is 3000×4000 and gets a portrait ThumbHash', async () => {
    const bytes = await orientedPhoto();
    const meta = await sharp(bytes).metadata();
    expect(meta).toMatchObject({ width: 4000, height: 3000, orientation: 6 });
    expect(gpsEntryCount(meta.exif!)).toBeGreaterThanOrEqual(4);

    const started = performance.now();
    const res = await uploadFile(h, bytes, { name: 'phone.jpg' });
    expect(res.errors).toBeUndefined();
    const img = res.data!.uploadImage;
    expect(img).toMatchObject({ contentType: 'image/jpeg', width: 3000, height: 4000 });
    // Stored without its GPS (UPLOAD_STRIP_METADATA, the default), still upright.
    const stored = await sharp(h.fixture!.objects.get(img.key)!.body).metadata();
    expect(stored).toMatchObject({ width: 4000, height: 3000, orientation: 6 });
    expect(gpsEntryCount(stored.exif!)).toBe(0);

    await h.container.placeholders.idle();
    const took = performance.now() - started;
    const got = await h.gql<{ image: { width: number; height: number; placeholder: string | null } }>(
      'query($id: ID!) { image(id: $id) { width height placeholder } }',
      { id: img.id },
    );
    const placeholder = got.data!.image.placeholder!;
    expect(placeholder).toMatch(/^[A-Za-z0-9+/]+=*$/);
    expect((await rowOf(h, img.id)).placeholder).toBe(placeholder);

    const thumb = decode(placeholder);
    // Portrait, about 3:4: the hash was taken from the image as displayed.
    expect(thumb.w).toBeLessThan(thumb.h);
    expect(thumb.ratio).toBeGreaterThan(0.6);
    expect(thumb.ratio).toBeLessThan(0.9);
    // Turned as displayed: blue on the left, red on the right (the stored top half was red).
    const at = (x: number, y: number) => {
      const i = (y * thumb.w + x) * 4;
      return { r: thumb.rgba[i]!, b: thumb.rgba[i + 2]! };
    };
    const mid = Math.floor(thumb.h / 2);
    expect(at(0, mid).b).toBeGreaterThan(at(0, mid).r + 60);
    expect(at(thumb.w - 1, mid).r).toBeGreaterThan(at(thumb.w - 1, mid).b + 60);
    expect(took).toBeLessThan(15_000);
  });

  it('a decompression bomb (50,000×50,000 in a few hundred bytes) is refused at upload and never decoded', async () => {
    const before = await counter(h);
    const objects = h.fixture!.objects.size;
    for (const bomb of [await jpegDeclaring(50_000, 50_000), pngDeclaring(50_000, 50_000)]) {
      expect(bomb.length).toBeLessThan(1024);
      const started = performance.now();
      const res = await uploadFile(h, bomb, { name: 'bomb.jpg' });
      expect(res.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
      expect(res.errors![0]!.message).toMatch(/50000×50000 pixels; at most 100000000 pixels/);
      expect(performance.now() - started).toBeLessThan(2_000);
    }
    await h.container.placeholders.idle();
    expect(h.fixture!.objects.size).toBe(objects);
    // Nothing was stored, so nothing was handed to sharp.
    expect(await counter(h)).toEqual(before);

    // Even as an object already in the bucket (a row from before), sharp refuses it from its
    // header (limitInputPixels) without decoding a pixel.
    const started = performance.now();
    const err = await thumbHashOf(await jpegDeclaring(50_000, 50_000), {
      maxPixels: 100_000_000,
      timeoutSeconds: 10,
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UndecodableImage);
    expect((err as Error).message).toMatch(/pixel limit/);
    expect(performance.now() - started).toBeLessThan(1_000);
  });

  it('a truncated or corrupt JPEG is stored without a placeholder (null), never failing or hanging its upload', async () => {
    const jpeg = await noisyJpeg(1200, 800);
    const corrupt = Buffer.from(jpeg);
    // Scan data overwritten with 0xff 0x01 pairs (markers where entropy-coded bytes belong).
    for (let i = Math.floor(corrupt.length / 3); i < corrupt.length - 2; i += 2) {
      corrupt[i] = 0xff;
      corrupt[i + 1] = 0x01;
    }
    for (const bytes of [jpeg.subarray(0, Math.floor(jpeg.length / 2)), corrupt]) {
      const started = performance.now();
      const res = await uploadFile(h, bytes, { name: 'broken.jpg' });
      expect(performance.now() - started).toBeLessThan(10_000);
      // The header is intact, so the upload is accepted: its bytes are the client's to keep.
      expect(res.errors).toBeUndefined();
      const img = res.data!.uploadImage;
      expect(img).toMatchObject({ width: 1200, height: 800 });
      await h.container.placeholders.idle();
      expect((await rowOf(h, img.id)).placeholder).toBe(UNDECODABLE_PLACEHOLDER);
      const got = await h.gql<{ image: { placeholder: string | null } }>(
        'query($id: ID!) { image(id: $id) { placeholder } }',
        { id: img.id },
      );
      expect(got.errors).toBeUndefined();
      expect(got.data!.image.placeholder).toBeNull();
    }
    expect(h.logs.join('')).toMatch(/image has no placeholder/);
  });

  it('the backfill fills rows without a placeholder, marks corrupt and missing objects once, and never retries them', async () => {
    await h.container.placeholders.idle();
    const ids = await seed(h, 'bob', 5);
    const truncated = await oldRow(h, 'bob', (await noisyJpeg(600, 400)).subarray(0, 3000));
    const missing = await oldRow(h, 'bob', null);
    const bomb = await oldRow(h, 'bob', await jpegDeclaring(50_000, 50_000));
    const svg = await oldRow(h, 'bob', SVG, 'svg', 'image/svg+xml');
    const before = await counter(h);

    const first = await h.container.placeholders.backfill();
    expect(first).toMatchObject({ visited: 9, computed: 5, undecodable: 4, failed: 0, complete: true });
    for (const id of ids) {
      const p = (await rowOf(h, id)).placeholder!;
      // The seeded PNGs are 24×16: a landscape hash.
      const thumb = decode(p);
      expect(thumb.w).toBeGreaterThan(thumb.h);
    }
    // SVG is never rasterised on the server: marked like an undecodable object.
    for (const row of [truncated, missing, bomb, svg]) {
      expect((await rowOf(h, row.id)).placeholder).toBe(UNDECODABLE_PLACEHOLDER);
    }
    const after = await counter(h);
    expect((after.computed ?? 0) - (before.computed ?? 0)).toBe(5);
    expect((after.undecodable ?? 0) - (before.undecodable ?? 0)).toBe(4);
    expect(h.logs.join('')).toMatch(/placeholder backfill progress/);

    // The marked rows are not visited again.
    const second = await h.container.placeholders.backfill();
    expect(second).toEqual({ visited: 0, computed: 0, undecodable: 0, failed: 0, complete: true });
  });

  it('storage failing leaves rows without a placeholder, and a later run computes them', async () => {
    await h.container.placeholders.idle();
    const ids = await seed(h, 'carol', 3);
    h.fixture!.failNext(1000, 503);
    try {
      const run = await h.container.placeholders.backfill();
      expect(run.failed).toBe(3);
      expect(run.computed + run.undecodable).toBe(0);
    } finally {
      h.fixture!.failNext(0);
    }
    for (const id of ids) expect((await rowOf(h, id)).placeholder).toBeNull();
    const again = await h.container.placeholders.backfill();
    expect(again).toMatchObject({ visited: 3, computed: 3, failed: 0 });
    for (const id of ids) expect((await rowOf(h, id)).placeholder).toMatch(/^[A-Za-z0-9+/]+=*$/);
  });

  it('demo photos: generated JPEGs of a few megapixels, each with its placeholder, made once', async () => {
    const cacheDir = await mkdtemp(path.join(os.tmpdir(), 'signet-demo-'));
    try {
      const ids = await seedDemoPhotos({
        storage: h.storage,
        images: h.container.imagesRepo,
        clock: { now: () => Date.now() },
        ownerId: 'dora',
        count: 4,
        cacheDir,
        limits: { maxPixels: 100_000_000, timeoutSeconds: 10 },
      });
      expect(ids).toHaveLength(4);
      const files = (await readdir(cacheDir)).filter((f) => f.endsWith('.jpg'));
      expect(files).toHaveLength(4);
      const mtimes = await Promise.all(files.map(async (f) => (await stat(path.join(cacheDir, f))).mtimeMs));
      const rows = await Promise.all(ids.map((id) => rowOf(h, id)));
      for (const row of rows) {
        const body = h.fixture!.objects.get(row.object_key)!.body;
        expect(row.content_type).toBe('image/jpeg');
        expect(Number(row.byte_size)).toBe(body.length);
        // Real-looking photo sizes: grain keeps the encoder from flattening them.
        expect(body.length).toBeGreaterThan(400 * 1024);
        expect(body.length).toBeLessThan(1200 * 1024);
        const meta = await sharp(body).metadata();
        expect({ width: meta.width, height: meta.height }).toEqual({ width: row.width, height: row.height });
        expect([2400, 1600]).toContain(row.width);
        const thumb = decode(row.placeholder!);
        expect(thumb.w > thumb.h).toBe(row.width! > row.height!);
      }
      // A portrait among them.
      expect(rows.some((r) => r.height! > r.width!)).toBe(true);

      // Seeded again (a fresh database on the same DATA_DIR): the photos are read, not made again.
      const again = await seedDemoPhotos({
        storage: h.storage,
        images: h.container.imagesRepo,
        clock: { now: () => Date.now() },
        ownerId: 'dora2',
        count: 2,
        cacheDir,
        limits: { maxPixels: 100_000_000, timeoutSeconds: 10 },
      });
      expect(await Promise.all(files.map(async (f) => (await stat(path.join(cacheDir, f))).mtimeMs))).toEqual(
        mtimes,
      );
      const againRows = await Promise.all(again.map((id) => rowOf(h, id)));
      expect(againRows.map((r) => r.placeholder)).toEqual(rows.slice(0, 2).map((r) => r.placeholder));
    } finally {
      await rm(cacheDir, { recursive: true, force: true });
    }
  });
});

// A bucket that never answers costs each image at most PLACEHOLDER_TIMEOUT_SECONDS.
describe('placeholders with a hanging bucket', () => {
  let h: Harness;

  beforeAll(async () => {
    h = await startHarness({ driver: 'cos', redis: 'memory', env: { PLACEHOLDER_TIMEOUT_SECONDS: '1' } });
  });
  afterAll(async () => {
    h?.fixture?.hang(false);
    await h?.close();
  });

  it('gives up on each image after the timeout, leaves the rows for a later run, and that run fills them', async () => {
    const ids = await seed(h, 'frank', 3);
    h.fixture!.hang(true);
    const started = performance.now();
    const run = await h.container.placeholders.backfill().finally(() => h.fixture!.hang(false));
    // Two at a time, one second each: two rounds, not a hang.
    expect(performance.now() - started).toBeLessThan(6_000);
    expect(run).toMatchObject({ visited: 3, failed: 3, computed: 0 });
    for (const id of ids) expect((await rowOf(h, id)).placeholder).toBeNull();
    expect(await h.container.placeholders.backfill()).toMatchObject({ computed: 3, failed: 0 });
  });
});

// The backfill as scheduled: a BullMQ job scheduler when Redis is configured, timers otherwise.
describe.each(['BullMQ', 'timers'])('placeholder backfill scheduled on %s', (engine) => {
  let h: Harness;

  beforeAll(async () => {
    h = await startHarness({
      driver: 'cos',
      redis: engine === 'BullMQ' ? testRedisUrl() : 'memory',
      start: true,
      env: { PLACEHOLDER_BACKFILL_INTERVAL_SECONDS: '1' },
    });
  });
  afterAll(async () => {
    await h?.close();
  });

  it('fills seeded rows within seconds, and marks a corrupt one', async () => {
    const ids = await seed(h, 'erin', 4);
    const corrupt = await oldRow(h, 'erin', Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0, 16, 1, 2, 3]));
    const deadline = Date.now() + 20_000;
    for (;;) {
      const rows = await Promise.all([...ids, corrupt.id].map((id) => rowOf(h, id)));
      if (rows.every((r) => r.placeholder !== null)) {
        for (const r of rows.slice(0, 4)) expect(decode(r.placeholder!).w).toBeGreaterThan(0);
        expect(rows[4]!.placeholder).toBe(UNDECODABLE_PLACEHOLDER);
        break;
      }
      if (Date.now() > deadline) throw new Error(`rows still without a placeholder: ${JSON.stringify(rows)}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  });
});
