import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Harness, startHarness } from '../support/harness.js';
import { uploadFile } from '../support/upload.js';

/** A 4000×3000 JPEG stored sideways: EXIF orientation 6 (displayed 3000×4000), with GPS tags. */
async function sidewaysPhoto(): Promise<Buffer> {
  return sharp({ create: { width: 4000, height: 3000, channels: 3, background: { r: 200, g: 80, b: 40 } } })
    .composite([
      {
        input: await sharp({
          create: { width: 800, height: 600, channels: 3, background: { r: 20, g: 90, b: 220 } },
        })
          .png()
          .toBuffer(),
        top: 100,
        left: 100,
      },
    ])
    .jpeg({ quality: 80 })
    .withExif({
      IFD0: { Make: 'SignetTestCamera' },
      IFD3: {
        GPSLatitudeRef: 'N',
        GPSLatitude: '48/1 51/1 30/1',
        GPSLongitudeRef: 'E',
        GPSLongitude: '2/1 17/1 40/1',
      },
    })
    .withMetadata({ orientation: 6 })
    .toBuffer();
}

const VARIANTS = /* GraphQL */ `
  query($id: ID!) {
    image(id: $id) {
      width height placeholder
      original: signedUrl { url }
      thumb: signedUrl(preset: "thumb") { url }
      medium: signedUrl(preset: "medium") { url }
      srcset(preset: "medium")
      streamThumb: proxyUrl(mode: STREAM, preset: "thumb")
    }
  }
`;

interface VariantsData {
  image: {
    width: number;
    height: number;
    placeholder: string | null;
    original: { url: string };
    thumb: { url: string };
    medium: { url: string };
    srcset: string;
    streamThumb: string;
  };
}

async function fetched(url: string) {
  const res = await fetch(url);
  const body = Buffer.from(await res.arrayBuffer());
  return {
    status: res.status,
    type: res.headers.get('content-type'),
    cacheControl: res.headers.get('cache-control'),
    body,
  };
}

// The whole path of a variant, per driver: an upload with EXIF orientation and GPS, then its
// presets fetched for real (COS: the fixture renders the signed processing; local: the gateway's
// bucket route renders on first request), checked with sharp.
describe.each(['cos', 'local'] as const)('an uploaded photo and its variants (%s driver)', (driver) => {
  let h: Harness;
  let data: VariantsData['image'];
  let id: string;

  beforeAll(async () => {
    h = await startHarness({ driver, redis: 'memory' });
    const up = await uploadFile(h, await sidewaysPhoto(), { type: 'image/jpeg', name: 'sideways.jpg' });
    expect(up.errors).toBeUndefined();
    id = up.data!.uploadImage.id;
    const res = await h.gql<VariantsData>(VARIANTS, { id }, { token: await h.token('alice') });
    expect(res.errors).toBeUndefined();
    data = res.data!.image;
  }, 60_000);
  afterAll(async () => {
    await h?.close();
  });

  it('records the size as displayed (orientation applied)', () => {
    expect({ width: data.width, height: data.height }).toEqual({ width: 3000, height: 4000 });
  });

  it('thumb is a WebP of exactly 320×320 without EXIF or GPS', async () => {
    const r = await fetched(data.thumb.url);
    expect(r.status).toBe(200);
    expect(r.type).toBe('image/webp');
    const m = await sharp(r.body).metadata();
    expect({ format: m.format, width: m.width, height: m.height }).toEqual({
      format: 'webp',
      width: 320,
      height: 320,
    });
    expect(m.exif).toBeUndefined();
  });

  it('medium is portrait 960×1280, without EXIF or GPS, and smaller than the original', async () => {
    const r = await fetched(data.medium.url);
    expect(r.status).toBe(200);
    const m = await sharp(r.body).metadata();
    expect({ format: m.format, width: m.width, height: m.height }).toEqual({
      format: 'webp',
      width: 960,
      height: 1280,
    });
    expect(m.exif).toBeUndefined();
    expect(m.orientation ?? 1).toBe(1);
    const original = await fetched(data.original.url);
    expect(r.body.length).toBeLessThan(original.body.length);
  });

  it('srcset of medium: 960w and 1920w (2x of the 1280 box, inside the original)', () => {
    const entries = data.srcset.split(', ').map((e) => e.split(' ')[1]);
    expect(entries).toEqual(['960w', '1920w']);
  });

  it('a proxy stream link of a preset streams that variant', async () => {
    const r = await fetched(data.streamThumb);
    expect(r.status).toBe(200);
    // Kept by a browser as long as a signed URL lives, not a year: the image can turn private.
    expect(r.cacheControl).toBe('private, max-age=3600');
    const m = await sharp(r.body).metadata();
    expect({ format: m.format, width: m.width, height: m.height }).toEqual({
      format: 'webp',
      width: 320,
      height: 320,
    });
  });

  it('tampering with the variant part of a URL is 403', async () => {
    const u = data.thumb.url;
    const tampered =
      driver === 'local'
        ? u.replace('v=320x320-cover-webp-75', 'v=640x640-cover-webp-75')
        : u
            .replace(encodeURIComponent('320x320').replace(/%/g, '%'), '640x640')
            .replace('320x320', '640x640');
    expect(tampered).not.toBe(u);
    expect((await fetched(tampered)).status).toBe(403);
    // Asking the thumb's signature for the original (the variant dropped) is 403 too.
    const dropped =
      driver === 'local' ? u.replace('&v=320x320-cover-webp-75', '') : u.replace(/&imageMogr2[^&]*/i, '');
    expect(dropped).not.toBe(u);
    expect((await fetched(dropped)).status).toBe(403);
  });
});

// A variant streamed through /proxy: the gateway passes the client's conditions to the store
// (here the local bucket route, which renders and serves the variant) and its answer back. A
// resumed download with a stale validator must get the whole variant, not a range of another
// version; a range past the end hears the variant's size.
describe('a variant streamed through /proxy: If-Range, 416 and If-Modified-Since (local driver)', () => {
  let h: Harness;
  let data: VariantsData['image'];

  beforeAll(async () => {
    h = await startHarness({ driver: 'local', redis: 'memory' });
    const up = await uploadFile(h, await sidewaysPhoto(), { type: 'image/jpeg', name: 'sideways.jpg' });
    expect(up.errors).toBeUndefined();
    const res = await h.gql<VariantsData>(
      VARIANTS,
      { id: up.data!.uploadImage.id },
      { token: await h.token('alice') },
    );
    expect(res.errors).toBeUndefined();
    data = res.data!.image;
  }, 60_000);
  afterAll(async () => {
    await h?.close();
  });

  it('keeps a range only while If-Range holds, on the stream and on the bucket URL alike', async () => {
    for (const url of [data.streamThumb, data.thumb.url]) {
      const full = await fetch(url);
      expect(full.status).toBe(200);
      const etag = full.headers.get('etag')!;
      const lastModified = full.headers.get('last-modified')!;
      const size = (await full.arrayBuffer()).byteLength;
      expect(etag).toMatch(/^"/);

      const same = await fetch(url, { headers: { range: 'bytes=0-9', 'if-range': etag } });
      expect(same.status).toBe(206);
      expect((await same.arrayBuffer()).byteLength).toBe(10);
      const sameDate = await fetch(url, { headers: { range: 'bytes=0-9', 'if-range': lastModified } });
      expect(sameDate.status).toBe(206);
      await sameDate.arrayBuffer();
      for (const stale of ['"another-version"', `W/${etag}`, 'Thu, 01 Jan 2015 00:00:00 GMT']) {
        const other = await fetch(url, { headers: { range: 'bytes=0-9', 'if-range': stale } });
        expect(other.status, `${url} If-Range ${stale}`).toBe(200);
        expect((await other.arrayBuffer()).byteLength).toBe(size);
      }

      const past = await fetch(url, { headers: { range: `bytes=${size + 100}-` } });
      expect(past.status).toBe(416);
      expect(past.headers.get('content-range')).toBe(`bytes */${size}`);
      await past.arrayBuffer();
    }
  });

  it('answers 304 only to an HTTP-date, not to anything Date.parse would take', async () => {
    for (const url of [data.streamThumb, data.thumb.url]) {
      const later = new Date(Date.now() + 86_400_000).toUTCString();
      const cached = await fetch(url, { headers: { 'if-modified-since': later } });
      expect(cached.status).toBe(304);
      for (const notADate of ['3000', '2099-01-01', 'tomorrow 3000']) {
        const res = await fetch(url, { headers: { 'if-modified-since': notADate } });
        expect(res.status, `${url} If-Modified-Since ${notADate}`).toBe(200);
        await res.arrayBuffer();
      }
    }
  });
});

// A WebP stored sideways: its orientation is in an EXIF chunk after the image data (past the
// upload's first read), which the upload's size reader used to skip, so the row said 2000×1500
// while every variant sharp rendered was portrait, and srcset's `w` descriptors were wrong.
describe('an uploaded WebP with EXIF orientation 6 (local driver)', () => {
  let h: Harness;

  beforeAll(async () => {
    h = await startHarness({ driver: 'local', redis: 'memory' });
  });
  afterAll(async () => {
    await h?.close();
  });

  it('records its size as displayed, and srcset describes the widths its variants have', async () => {
    const bytes = await sharp({
      create: {
        width: 2000,
        height: 1500,
        channels: 3,
        background: '#808080',
        noise: { type: 'gaussian', mean: 128, sigma: 30 },
      },
    })
      .webp({ quality: 60 })
      .withMetadata({ orientation: 6 })
      .toBuffer();
    expect(bytes.length).toBeGreaterThan(64 * 1024);
    expect(await sharp(bytes).metadata()).toMatchObject({ width: 2000, height: 1500, orientation: 6 });

    const up = await uploadFile(h, bytes, { type: 'image/webp', name: 'sideways.webp' });
    expect(up.errors).toBeUndefined();
    expect(up.data!.uploadImage).toMatchObject({ width: 1500, height: 2000 });
    const res = await h.gql<VariantsData>(VARIANTS, { id: up.data!.uploadImage.id });
    expect(res.errors).toBeUndefined();
    const image = res.data!.image;
    expect({ width: image.width, height: image.height }).toEqual({ width: 1500, height: 2000 });

    // medium is 1280×1280 inside: 960 wide at 1x; at 2x the box holds the whole original.
    const entries = image.srcset.split(', ').map((e) => e.split(' ') as [string, string]);
    expect(entries.map(([, w]) => w)).toEqual(['960w', '1500w']);
    for (const [url, w] of entries) {
      const m = await sharp((await fetched(url)).body).metadata();
      expect(`${m.width}w`).toBe(w);
    }
  }, 60_000);
});

// An animated WebP's variants are the original itself, as a GIF's are: a variant used to be its
// first frame, a still.
describe('an uploaded animated WebP (local driver)', () => {
  let h: Harness;

  beforeAll(async () => {
    h = await startHarness({ driver: 'local', redis: 'memory' });
  });
  afterAll(async () => {
    await h?.close();
  });

  it('keeps its 3 frames in every preset', async () => {
    const frames = await Promise.all(
      ['#ff0000', '#00ff00', '#0000ff'].map((background) =>
        sharp({ create: { width: 400, height: 300, channels: 3, background } })
          .png()
          .toBuffer(),
      ),
    );
    const bytes = await sharp(frames, { join: { animated: true } })
      .webp({ loop: 0, delay: [300, 300, 300] })
      .toBuffer();
    expect((await sharp(bytes).metadata()).pages).toBe(3);
    const up = await uploadFile(h, bytes, { type: 'image/webp', name: 'animated.webp' });
    expect(up.errors).toBeUndefined();
    const res = await h.gql<VariantsData>(VARIANTS, { id: up.data!.uploadImage.id });
    expect(res.errors).toBeUndefined();
    const image = res.data!.image;
    for (const url of [image.thumb.url, image.medium.url, image.streamThumb]) {
      const r = await fetched(url);
      expect(r.status).toBe(200);
      expect(r.type).toBe('image/webp');
      expect((await sharp(r.body).metadata()).pages).toBe(3);
      expect(r.body.equals(bytes)).toBe(true);
    }
  }, 60_000);
});
