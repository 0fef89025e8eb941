/**
 * Variants on the cos driver, end to end against the COS fixture (which renders imageMogr2 with
 * its own parser and real sharp, and verifies every signature): the bytes a browser would get from
 * a variant's signed URL.
 */
import sharp from 'sharp';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createCosStorage } from '../../src/storage/cos.js';
import { OBJECT_CACHE_CONTROL, type SignWindow, type Storage } from '../../src/storage/storage.js';
import { type Variant, variantOf, variantOutputSize } from '../../src/storage/variant.js';
import { type CosFixture, startCosFixture } from '../fixtures/cos-fixture.js';

const secretId = 'AKIDsignetFixture000000000000000';
const secretKey = 'signetFixtureSecretKey0000000000';

let fixture: CosFixture;
let storage: Storage;

const thumb = variantOf({ width: 320, height: 320, fit: 'cover', format: 'webp', quality: 75 });
const medium = variantOf({ width: 1280, height: 1280, fit: 'inside', format: 'webp', quality: 80 });

const nowSeconds = () => Math.floor(Date.now() / 1000);
const window = (): SignWindow => ({ start: nowSeconds() - 1, end: nowSeconds() + 600 });

/** The driver's URL of `key` (of its variant when given), signed in one bulk call like the hot path. */
function urlOf(key: string, variant?: Variant): string {
  const w = window();
  const [sig] = storage.signMany([key], w, [variant]);
  return storage.urlFor(key, { ...w, sig: sig! }, variant);
}

const photos = new Map<string, Promise<Buffer>>();

/**
 * A photo-like JPEG (smooth noise: a small random image scaled up), with EXIF and GPS tags; made
 * once per size and orientation.
 */
function photo(width: number, height: number, orientation?: number): Promise<Buffer> {
  const id = `${width}x${height}@${orientation ?? 1}`;
  let made = photos.get(id);
  if (!made) {
    made = (async () => {
      const seed = await sharp({
        create: {
          width: Math.max(1, Math.round(width / 10)),
          height: Math.max(1, Math.round(height / 10)),
          channels: 3,
          background: '#7a9cc6',
          noise: { type: 'gaussian', mean: 128, sigma: 50 },
        },
      })
        .png()
        .toBuffer();
      let img = sharp(seed)
        .resize(width, height, { fit: 'fill' })
        .withExif({
          IFD0: { Make: 'Signet', Model: 'Fixture' },
          IFD3: {
            GPSLatitudeRef: 'N',
            GPSLatitude: '48/1 51/1 24/1',
            GPSLongitudeRef: 'E',
            GPSLongitude: '2/1 21/1 8/1',
          },
        });
      if (orientation) img = img.withMetadata({ orientation });
      return img.jpeg({ quality: 85 }).toBuffer();
    })();
    photos.set(id, made);
  }
  return made;
}

async function fetched(url: string) {
  const res = await fetch(url);
  const body = Buffer.from(await res.arrayBuffer());
  return { res, body };
}

async function errorCode(res: Response): Promise<string | undefined> {
  return (await res.text()).match(/<Code>([^<]*)<\/Code>/)?.[1];
}

beforeAll(async () => {
  fixture = await startCosFixture({ secretId, secretKey, processing: { timeoutMs: 3_000 } });
  storage = createCosStorage({
    secretId,
    secretKey,
    bucket: 'signet-1250000000',
    region: 'ap-guangzhou',
    domain: fixture.host,
    protocol: 'http:',
    timeoutMs: 5_000,
  });
});

beforeEach(() => fixture.reset());

afterAll(async () => {
  await fixture?.close();
});

describe('cos driver variants (Cloud Infinite processing, signed)', () => {
  it('thumb: a 2400×1600 JPEG comes back as a WebP of exactly 320×320, cacheable like the original', async () => {
    const original = await photo(2400, 1600);
    await storage.put('v/photo.jpg', original, 'image/jpeg');
    const { res, body } = await fetched(urlOf('v/photo.jpg', thumb));
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('image/webp');
    expect(res.headers.get('cache-control')).toBe(OBJECT_CACHE_CONTROL);
    const meta = await sharp(body).metadata();
    expect([meta.format, meta.width, meta.height]).toEqual(['webp', 320, 320]);
    // Decodable, and much smaller than the original.
    const { info } = await sharp(body).raw().toBuffer({ resolveWithObject: true });
    expect([info.width, info.height]).toEqual([320, 320]);
    expect(body.length).toBeLessThan(original.length / 10);
    expect(fixture.processing).toEqual({ ok: 1, failed: 0 });
  });

  it('medium (inside 1280×1280) keeps the aspect ratio: 1280×853', async () => {
    await storage.put('v/wide.jpg', await photo(2400, 1600), 'image/jpeg');
    const { res, body } = await fetched(urlOf('v/wide.jpg', medium));
    expect(res.status).toBe(200);
    const meta = await sharp(body).metadata();
    expect([meta.format, meta.width, meta.height]).toEqual(['webp', 1280, 853]);
    // What the domain predicts for this variant is what COS renders.
    expect(variantOutputSize(medium, { width: 2400, height: 1600 })).toEqual({ width: 1280, height: 853 });
  });

  it('never enlarges: a 200×100 original asked for a bigger inside box stays 200×100', async () => {
    await storage.put('v/small.jpg', await photo(200, 100), 'image/jpeg');
    const { res, body } = await fetched(urlOf('v/small.jpg', medium));
    expect(res.status).toBe(200);
    const meta = await sharp(body).metadata();
    expect([meta.width, meta.height]).toEqual([200, 100]);
    expect(variantOutputSize(medium, { width: 200, height: 100 })).toEqual({ width: 200, height: 100 });
  });

  it('the original and its variants are different signed URLs of the same key, each working', async () => {
    const original = await photo(2400, 1600);
    await storage.put('v/both.jpg', original, 'image/jpeg');
    const w = window();
    const keys = ['v/both.jpg', 'v/both.jpg', 'v/both.jpg'];
    const variants = [undefined, thumb, medium];
    const sigs = storage.signMany(keys, w, variants);
    expect(new Set(sigs).size).toBe(3);
    const [orig, t, m] = await Promise.all(
      keys.map((k, i) => fetched(storage.urlFor(k, { ...w, sig: sigs[i]! }, variants[i]))),
    );
    expect(orig!.body.equals(original)).toBe(true);
    expect(orig!.res.headers.get('content-type')).toBe('image/jpeg');
    expect((await sharp(t!.body).metadata()).width).toBe(320);
    expect((await sharp(m!.body).metadata()).width).toBe(1280);
  });

  it('tampering with any part of the processing is 403, and so is dropping it', async () => {
    await storage.put('v/t.jpg', await photo(800, 600), 'image/jpeg');
    const url = urlOf('v/t.jpg', thumb);
    expect((await fetched(url)).res.status).toBe(200);
    const name = [...new URL(url).searchParams.keys()].find((k) => k.startsWith('imageMogr2/'))!;
    expect(name).toBe(
      'imageMogr2/auto-orient/thumbnail/!320x320r/gravity/center/crop/320x320/format/webp/quality/75!/strip',
    );
    const encoded = url.slice(url.indexOf('&imageMogr2') + 1, url.indexOf('=', url.indexOf('&imageMogr2')));
    const withParam = (processing: string | null) =>
      url.replace(`&${encoded}=`, processing === null ? '' : `&${encodeURIComponent(processing)}=`);
    const edits = {
      size: withParam(name.replace(/320x320/g, '640x640')),
      format: withParam(name.replace('format/webp', 'format/png')),
      quality: withParam(name.replace('quality/75!', 'quality/100!')),
      fit: withParam(name.replace('!320x320r/gravity/center/crop/320x320', '320x320>')),
      strip: withParam(name.replace('/strip', '')),
      dropped: withParam(null),
      // Another variant's processing, in a URL signed for this one.
      swapped: url.replace(
        `&${encoded}=`,
        `&${new URL(urlOf('v/t.jpg', medium)).search.split('&').find((p) => p.startsWith('imageMogr2'))}`,
      ),
    };
    for (const [what, edited] of Object.entries(edits)) {
      expect(edited, what).not.toBe(url);
      const res = await fetch(edited);
      expect([what, res.status, await errorCode(res)]).toEqual([what, 403, 'SignatureDoesNotMatch']);
    }
    // A processing added to the original's URL is refused too.
    const onOriginal = `${urlOf('v/t.jpg')}&${encoded}=`;
    const res = await fetch(onOriginal);
    expect([res.status, await errorCode(res)]).toEqual([403, 'AccessDenied']);
    expect(fixture.processing).toEqual({ ok: 1, failed: 0 });
  });

  it('an EXIF-orientation-6 original comes back portrait, without EXIF or GPS', async () => {
    const original = await photo(2400, 1600, 6);
    const before = await sharp(original).metadata();
    expect([before.orientation, before.exif === undefined]).toEqual([6, false]);
    await storage.put('v/turned.jpg', original, 'image/jpeg');
    for (const [variant, size] of [
      [medium, [853, 1280]],
      [thumb, [320, 320]],
    ] as const) {
      const { res, body } = await fetched(urlOf('v/turned.jpg', variant));
      expect(res.status).toBe(200);
      const meta = await sharp(body).metadata();
      expect([meta.width, meta.height]).toEqual(size);
      expect(meta.exif).toBeUndefined();
      expect(meta.orientation).toBeUndefined();
    }
  });

  it('a corrupt or truncated object answers its variant with an error quickly; the original still works', async () => {
    const good = await photo(2400, 1600);
    const truncated = good.subarray(0, Math.floor(good.length * 0.6));
    await storage.put('v/cut.jpg', truncated, 'image/jpeg');
    await storage.put('v/junk.jpg', Buffer.from('definitely not a JPEG'), 'image/jpeg');
    for (const [key, bytes] of [
      ['v/cut.jpg', truncated],
      ['v/junk.jpg', Buffer.from('definitely not a JPEG')],
    ] as const) {
      const started = performance.now();
      const res = await fetch(urlOf(key, thumb));
      expect(res.status).toBeGreaterThanOrEqual(400);
      await res.arrayBuffer();
      expect(performance.now() - started).toBeLessThan(3_500);
      const original = await fetched(urlOf(key));
      expect(original.res.status).toBe(200);
      expect(original.body.equals(bytes)).toBe(true);
    }
    expect(fixture.processing.failed).toBe(2);
    // The fixture is still serving variants.
    await storage.put('v/fine.jpg', good, 'image/jpeg');
    expect((await fetched(urlOf('v/fine.jpg', thumb))).res.status).toBe(200);
  });
});
