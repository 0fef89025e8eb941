/**
 * The COS fixture's Cloud Infinite processing, checked on its own: requests signed by the
 * reference signer or built by the COS SDK (never the gateway's signer or cos-processing.ts), the
 * imageMogr2 syntax as Tencent's documents write it, real sharp on both sides.
 */
import COS from 'cos-nodejs-sdk-v5';
import sharp from 'sharp';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type CosFixture, startCosFixture } from '../fixtures/cos-fixture.js';
import { parseImageMogr2 } from '../fixtures/cos-image-processing.js';
import { asQuery, encodeKeyForUrl, referenceSign } from '../fixtures/cos-reference-signer.js';

const secretId = 'AKIDsignetFixture000000000000000';
const secretKey = 'signetFixtureSecretKey0000000000';

let fixture: CosFixture;

const nowSeconds = () => Math.floor(Date.now() / 1000);

/** A reference-signed GET URL of `key` whose signature covers `params`, which the URL then carries. */
function signedUrl(key: string, params: Record<string, string>, carried = params): string {
  const sig = referenceSign({
    secretId,
    secretKey,
    method: 'GET',
    path: `/${key}`,
    params,
    headers: { host: fixture.host },
    keyTime: `${nowSeconds() - 1};${nowSeconds() + 600}`,
  });
  const extra = Object.entries(carried)
    .map(([k, v]) => (v === '' ? k : `${encodeURIComponent(k)}=${encodeURIComponent(v)}`))
    .join('&');
  return `${fixture.url}${encodeKeyForUrl(key)}?${asQuery(sig)}${extra ? `&${extra}` : ''}`;
}

async function outcome(res: Response): Promise<{ status: number; code: string | null }> {
  const text = await res.text();
  return { status: res.status, code: text.match(/<Code>([^<]*)<\/Code>/)?.[1] ?? null };
}

async function image(res: Response) {
  expect(res.status).toBe(200);
  const body = Buffer.from(await res.arrayBuffer());
  const meta = await sharp(body).metadata();
  return { body, meta, type: res.headers.get('content-type') };
}

/** A JPEG whose left half is red and right half blue, with EXIF (and GPS) unless told otherwise. */
async function halves(width: number, height: number, orientation?: number): Promise<Buffer> {
  const left = await sharp({ create: { width: width / 2, height, channels: 3, background: '#ff0000' } })
    .png()
    .toBuffer();
  let img = sharp({ create: { width, height, channels: 3, background: '#0000ff' } }).composite([
    { input: left, left: 0, top: 0 },
  ]);
  img = img.withExif({ IFD0: { Make: 'Signet' }, IFD3: { GPSLatitudeRef: 'N' } });
  if (orientation) img = img.withMetadata({ orientation });
  return img.jpeg({ quality: 92 }).toBuffer();
}

function store(key: string, body: Buffer, contentType = 'image/jpeg'): void {
  fixture.objects.set(key, { body, contentType, etag: '"x"', lastModified: new Date() });
}

async function pixel(body: Buffer, x: number, y: number): Promise<number[]> {
  const { data, info } = await sharp(body).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  const at = (y * info.width + x) * info.channels;
  return [data[at]!, data[at + 1]!, data[at + 2]!];
}

const near = (got: number[], want: number[]) => got.every((c, i) => Math.abs(c - want[i]!) < 40);

beforeAll(async () => {
  fixture = await startCosFixture({ secretId, secretKey, processing: { timeoutMs: 3_000 } });
});

beforeEach(() => fixture.reset());

afterAll(async () => {
  await fixture?.close();
});

describe('parseImageMogr2 (the documented syntax)', () => {
  it('reads the documents’ forms and refuses what it does not support', () => {
    expect(parseImageMogr2('imageMogr2/thumbnail/200x/').thumbnail).toEqual({ kind: 'width', w: 200 });
    expect(parseImageMogr2('imageMogr2/thumbnail/x300').thumbnail).toEqual({ kind: 'height', h: 300 });
    expect(parseImageMogr2('imageMogr2/thumbnail/!50p').thumbnail).toEqual({ kind: 'percent', p: 50 });
    expect(parseImageMogr2('imageMogr2/thumbnail/10000@').thumbnail).toEqual({ kind: 'area', a: 10000 });
    const plan = parseImageMogr2(
      'imageMogr2/auto-orient/thumbnail/!320x320r/gravity/center/crop/320x320/format/webp/quality/75!/strip',
    );
    expect(plan).toMatchObject({
      autoOrient: true,
      thumbnail: { kind: 'cover', w: 320, h: 320 },
      crop: { w: 320, h: 320, gravity: [0.5, 0.5] },
      format: 'webp',
      quality: 75,
      strip: true,
    });
    expect(parseImageMogr2('imageMogr2/thumbnail/100x50>').thumbnail).toEqual({
      kind: 'shrink',
      w: 100,
      h: 50,
    });
    expect(parseImageMogr2('imageMogr2/thumbnail/100x50!').thumbnail).toEqual({
      kind: 'force',
      w: 100,
      h: 50,
    });
    // #00FF00 in URL-safe Base64.
    expect(parseImageMogr2('imageMogr2/thumbnail/10x10/pad/1/color/IzAwRkYwMA').color).toEqual({
      r: 0,
      g: 255,
      b: 0,
    });
    for (const unsupported of [
      'imageMogr2/blur/8x5',
      'imageMogr2/rquality/80',
      'imageMogr2/format/bmp',
      'imageMogr2/thumbnail/0x10',
      'imageMogr2/thumbnail/10000x10',
      'imageMogr2/quality/101',
      'imageMogr2/crop/10x10/thumbnail/20x20',
      'imageMogr2/thumbnail/10x10/thumbnail/20x20',
      'imageMogr2/thumbnail/20x|imageMogr2/format/png',
      'imageMogr2/strip/pad/1',
      'imageView2/1/w/100',
    ]) {
      expect(() => parseImageMogr2(unsupported), unsupported).toThrow();
    }
  });
});

describe('COS fixture: imageMogr2 processing upon download', () => {
  it('applies a signed processing, written raw as the documents do or encoded as the SDK does', async () => {
    store('p/photo.jpg', await halves(600, 400));
    const processing = 'imageMogr2/thumbnail/300x/format/png';
    const raw = await image(await fetch(signedUrl('p/photo.jpg', { [processing]: '' })));
    expect([raw.type, raw.meta.format, raw.meta.width, raw.meta.height]).toEqual([
      'image/png',
      'png',
      300,
      200,
    ]);
    const encoded =
      signedUrl('p/photo.jpg', { [processing]: '' }, {}) + `&${encodeURIComponent(processing)}=`;
    const again = await image(await fetch(encoded));
    expect(again.body.equals(raw.body)).toBe(true);
    // The original is still served as stored.
    const original = await fetch(signedUrl('p/photo.jpg', {}));
    expect(Buffer.from(await original.arrayBuffer()).equals(fixture.objects.get('p/photo.jpg')!.body)).toBe(
      true,
    );
    expect(fixture.processing).toEqual({ ok: 2, failed: 0 });
  });

  it('accepts the COS SDK’s own presigned URL with the processing in its Query', async () => {
    store('sdk.jpg', await halves(400, 200));
    const cos = new COS({
      SecretId: secretId,
      SecretKey: secretKey,
      Domain: fixture.host,
      Protocol: 'http:',
    });
    const params = {
      Bucket: 'signet-1250000000',
      Region: 'ap-guangzhou',
      Key: 'sdk.jpg',
      Query: { 'imageMogr2/thumbnail/!100x100r/gravity/center/crop/100x100/format/webp': '' },
      Sign: true,
      Expires: 600,
    };
    let returned = '';
    const called = await new Promise<string>((resolve, reject) => {
      returned = cos.getObjectUrl(params, (err, data) => (err ? reject(err) : resolve(data.Url)));
    });
    // Both of the SDK's forms of q-url-param-list (encoded once more in the callback's).
    for (const url of [called, returned]) {
      const out = await image(await fetch(url));
      expect([out.type, out.meta.width, out.meta.height]).toEqual(['image/webp', 100, 100]);
    }
  });

  it('refuses a processing that was edited, dropped, added, or left out of the signature', async () => {
    store('t.jpg', await halves(400, 200));
    const processing =
      'imageMogr2/thumbnail/!100x100r/gravity/center/crop/100x100/format/webp/quality/75!/strip';
    const url = signedUrl('t.jpg', { [processing]: '' });
    expect((await image(await fetch(url))).meta.width).toBe(100);
    const edits = [
      url.replace('crop/100x100', 'crop/200x200'),
      url.replace('format/webp', 'format/png'),
      url.replace('quality/75!', 'quality/95!'),
      url.replace(`&${processing}`, ''),
      url.replace(
        `&${processing}`,
        '&imageMogr2/thumbnail/!100x100r/gravity/center/crop/100x100/format/webp/quality/75!',
      ),
    ];
    for (const edited of edits) {
      expect(edited).not.toBe(url);
      expect(await outcome(await fetch(edited)), edited).toEqual({
        status: 403,
        code: 'SignatureDoesNotMatch',
      });
    }
    // A second processing next to the signed one, or one on a URL signed for the original.
    const added = `${url}&imageMogr2/thumbnail/4000x`;
    expect(await outcome(await fetch(added))).toEqual({ status: 403, code: 'AccessDenied' });
    const onOriginal = `${signedUrl('t.jpg', {})}&imageMogr2/thumbnail/50x`;
    expect(await outcome(await fetch(onOriginal))).toEqual({ status: 403, code: 'AccessDenied' });
    expect(fixture.processing).toEqual({ ok: 1, failed: 0 });
  });

  it('crops from the gravity, pads contain to the box, and never enlarges with >', async () => {
    store('h.jpg', await halves(400, 200)); // red | blue
    const east = await image(
      await fetch(
        signedUrl('h.jpg', { 'imageMogr2/thumbnail/!100x100r/gravity/east/crop/100x100/format/png': '' }),
      ),
    );
    expect([east.meta.width, east.meta.height]).toEqual([100, 100]);
    expect(near(await pixel(east.body, 50, 50), [0, 0, 255])).toBe(true);
    const west = await image(
      await fetch(
        signedUrl('h.jpg', { 'imageMogr2/thumbnail/!100x100r/gravity/west/crop/100x100/format/png': '' }),
      ),
    );
    expect(near(await pixel(west.body, 50, 50), [255, 0, 0])).toBe(true);

    const padded = await image(
      await fetch(signedUrl('h.jpg', { 'imageMogr2/thumbnail/100x100/pad/1/format/png': '' })),
    );
    expect([padded.meta.width, padded.meta.height]).toEqual([100, 100]);
    expect(near(await pixel(padded.body, 50, 2), [255, 255, 255])).toBe(true); // the white band
    expect(near(await pixel(padded.body, 10, 50), [255, 0, 0])).toBe(true);

    const notEnlarged = await image(
      await fetch(signedUrl('h.jpg', { 'imageMogr2/thumbnail/1280x1280>': '' })),
    );
    expect([notEnlarged.meta.width, notEnlarged.meta.height, notEnlarged.type]).toEqual([
      400,
      200,
      'image/jpeg',
    ]);
    const enlarged = await image(await fetch(signedUrl('h.jpg', { 'imageMogr2/thumbnail/800x800': '' })));
    expect([enlarged.meta.width, enlarged.meta.height]).toEqual([800, 400]);
  });

  it('orients by EXIF with auto-orient, and keeps metadata unless strip is asked for', async () => {
    store('o.jpg', await halves(400, 200, 6));
    const kept = await image(await fetch(signedUrl('o.jpg', { 'imageMogr2/thumbnail/200x200>': '' })));
    expect([kept.meta.width, kept.meta.height]).toEqual([200, 100]);
    expect(kept.meta.exif).toBeDefined();
    const oriented = await image(
      await fetch(signedUrl('o.jpg', { 'imageMogr2/auto-orient/thumbnail/200x200>/format/webp/strip': '' })),
    );
    expect([oriented.meta.width, oriented.meta.height, oriented.meta.format]).toEqual([100, 200, 'webp']);
    expect(oriented.meta.exif).toBeUndefined();
    expect(oriented.meta.orientation).toBeUndefined();
  });

  it('answers unsupported operations and broken images with an error, quickly, and keeps serving', async () => {
    const good = await halves(400, 200);
    store('g.jpg', good);
    store('cut.jpg', good.subarray(0, Math.floor(good.length / 2)));
    store('junk.jpg', Buffer.from('not an image at all'));
    const blur = await fetch(signedUrl('g.jpg', { 'imageMogr2/blur/8x5': '' }));
    expect(await outcome(blur)).toEqual({ status: 400, code: 'InvalidArgument' });
    for (const key of ['cut.jpg', 'junk.jpg']) {
      const started = performance.now();
      const res = await fetch(signedUrl(key, { 'imageMogr2/thumbnail/100x/format/webp': '' }));
      expect(await outcome(res)).toEqual({ status: 400, code: 'InvalidImage' });
      expect(performance.now() - started).toBeLessThan(3_000);
      // The stored bytes are still served as they are.
      const original = await fetch(signedUrl(key, {}));
      expect(Buffer.from(await original.arrayBuffer()).equals(fixture.objects.get(key)!.body)).toBe(true);
    }
    // ignore-error/1 answers the original instead, as documented.
    const ignored = await fetch(signedUrl('cut.jpg', { 'imageMogr2/thumbnail/100x/ignore-error/1': '' }));
    expect(ignored.status).toBe(200);
    expect(Buffer.from(await ignored.arrayBuffer()).equals(fixture.objects.get('cut.jpg')!.body)).toBe(true);
    expect(fixture.processing).toMatchObject({ failed: 3 });
  });

  it('refuses to decode more pixels than its limit', async () => {
    const small = await startCosFixture({ secretId, secretKey, processing: { limitInputPixels: 10_000 } });
    try {
      small.objects.set('big.jpg', {
        body: await halves(400, 200),
        contentType: 'image/jpeg',
        etag: '"b"',
        lastModified: new Date(),
      });
      const sig = referenceSign({
        secretId,
        secretKey,
        method: 'GET',
        path: '/big.jpg',
        params: { 'imageMogr2/thumbnail/10x': '' },
        headers: { host: small.host },
        keyTime: `${nowSeconds() - 1};${nowSeconds() + 600}`,
      });
      const res = await fetch(`${small.url}/big.jpg?${asQuery(sig)}&imageMogr2/thumbnail/10x`);
      expect(await outcome(res)).toEqual({ status: 400, code: 'InvalidImage' });
    } finally {
      await small.close();
    }
  });
});
