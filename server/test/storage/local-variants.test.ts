import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SWEEP_MARK_KEY } from '../../src/images/sweep-guard.js';
import { localSignature } from '../../src/storage/local.js';
import { variantDirOf } from '../../src/storage/local-variants.js';
import { type Variant, variantOf } from '../../src/storage/variant.js';
import { pngDeclaring } from '../fixtures/images.js';
import { makePhoto } from '../fixtures/photos.js';
import { type Harness, startHarness } from '../support/harness.js';
import { uploadFile } from '../support/upload.js';

const YEAR_LONG = 'private, max-age=31536000, immutable';
const THUMB = variantOf({ width: 320, height: 320, fit: 'cover', format: 'webp', quality: 75 });
const MEDIUM = variantOf({ width: 1280, height: 1280, fit: 'inside', format: undefined, quality: undefined });

/** The local driver's variants over real HTTP: the real route, driver, renderer and disk. */
describe('/local-bucket variants', () => {
  let h: Harness;
  let photo: Buffer;
  let rotated: Buffer;
  const PHOTO = 'u/variants/photo.jpg';
  const ROTATED = 'u/variants/rotated.jpg';
  const TRUNCATED = 'u/variants/truncated.jpg';
  const BOMB = 'u/variants/bomb.png';

  /** A signed URL of `key` (and of its variant), as the driver makes them, alive now by default. */
  function signed(key: string, variant?: Variant, window = liveWindow()): string {
    const [sig] = h.storage.signMany([key], window, variant ? [variant] : undefined);
    return h.storage.urlFor(key, { ...window, sig: sig! }, variant);
  }
  function liveWindow() {
    const now = Math.floor(Date.now() / 1000);
    return { start: now - 60, end: now + 3600 };
  }
  async function made(result = 'ok'): Promise<number> {
    const m = await h.container.metrics.localVariantsMade.get();
    return m.values.find((v) => v.labels.result === result)?.value ?? 0;
  }
  async function fetchImage(url: string, init?: RequestInit) {
    const res = await fetch(url, init);
    const body = Buffer.from(await res.arrayBuffer());
    return { res, body };
  }

  beforeAll(async () => {
    h = await startHarness({
      driver: 'local',
      redis: 'memory',
      env: { VARIANT_CONCURRENCY: '2', VARIANT_TIMEOUT_SECONDS: '20' },
    });
    photo = await makePhoto(2400, 1600);
    rotated = await makePhoto(2400, 1600, { orientation: 6, gps: true });
    await h.storage.put(PHOTO, photo, 'image/jpeg');
    await h.storage.put(ROTATED, rotated, 'image/jpeg');
    await h.storage.put(TRUNCATED, photo.subarray(0, photo.length >> 1), 'image/jpeg');
    await h.storage.put(BOMB, pngDeclaring(50_000, 50_000), 'image/png');
  }, 60_000);

  afterAll(async () => {
    await h?.close();
  });

  it('cover 320×320 WebP q75 is a WebP of exactly 320×320, with the headers of an object', async () => {
    const { res, body } = await fetchImage(signed(PHOTO, THUMB));
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('image/webp');
    expect(res.headers.get('cache-control')).toBe(YEAR_LONG);
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(res.headers.get('content-security-policy')).toContain('sandbox');
    expect(res.headers.get('content-disposition')).toBeNull();
    expect(Number(res.headers.get('content-length'))).toBe(body.length);
    const meta = await sharp(body).metadata();
    expect([meta.format, meta.width, meta.height]).toEqual(['webp', 320, 320]);
    expect(body.length).toBeLessThan(photo.length);
  });

  it('inside 1280×1280 keeps the aspect ratio: 1280×853, in the original format', async () => {
    const { res, body } = await fetchImage(signed(PHOTO, MEDIUM));
    expect([res.status, res.headers.get('content-type')]).toEqual([200, 'image/jpeg']);
    const meta = await sharp(body).metadata();
    expect([meta.format, meta.width, meta.height]).toEqual(['jpeg', 1280, 853]);
  });

  it('an EXIF orientation 6 original with GPS gives a portrait variant without any EXIF', async () => {
    const original = await sharp(rotated).metadata();
    expect([original.width, original.height, original.orientation]).toEqual([2400, 1600, 6]);
    for (const v of [MEDIUM, THUMB]) {
      const { res, body } = await fetchImage(signed(ROTATED, v));
      expect(res.status).toBe(200);
      const meta = await sharp(body).metadata();
      expect([meta.exif, meta.orientation, meta.xmp]).toEqual([undefined, undefined, undefined]);
      // No GPS IFD pointer (tag 0x8825) anywhere in the bytes either.
      expect(body.includes(Buffer.from('Exif\0\0'))).toBe(false);
      if (v === MEDIUM) expect([meta.width, meta.height]).toEqual([853, 1280]);
    }
  });

  it('a second request is served from disk, not rendered again', async () => {
    const v = variantOf({ width: 500, height: undefined, fit: 'inside', format: 'png', quality: undefined });
    const before = await made();
    const first = await fetchImage(signed(PHOTO, v));
    expect(first.res.status).toBe(200);
    expect(await made()).toBe(before + 1);
    const file = path.join(variantDirOf(path.join(h.config.dataDir, 'variants'), PHOTO), v.key);
    const mtime = (await stat(file)).mtimeMs;

    const second = await fetchImage(signed(PHOTO, v));
    expect(second.res.status).toBe(200);
    expect(second.body.equals(first.body)).toBe(true);
    expect(second.res.headers.get('etag')).toBe(first.res.headers.get('etag'));
    expect(await made()).toBe(before + 1);
    expect((await stat(file)).mtimeMs).toBe(mtime);
  });

  it('concurrent first requests of one variant share one render', async () => {
    const v = variantOf({ width: 640, height: 480, fit: 'cover', format: 'avif', quality: 50 });
    const before = await made();
    const all = await Promise.all(Array.from({ length: 6 }, () => fetchImage(signed(PHOTO, v))));
    expect(all.map((r) => r.res.status)).toEqual([200, 200, 200, 200, 200, 200]);
    expect(new Set(all.map((r) => r.res.headers.get('etag'))).size).toBe(1);
    expect(all.every((r) => r.body.equals(all[0]!.body))).toBe(true);
    expect(await made()).toBe(before + 1);
    const meta = await sharp(all[0]!.body).metadata();
    expect([meta.format, meta.width, meta.height]).toEqual(['heif', 640, 480]);
    expect(all[0]!.res.headers.get('content-type')).toBe('image/avif');
  });

  it('answers If-None-Match with 304 and Range with 206, for GET and HEAD', async () => {
    const url = signed(PHOTO, THUMB);
    const { res, body } = await fetchImage(url);
    const etag = res.headers.get('etag')!;
    expect(etag).toMatch(/^"[0-9a-f]{32}"$/);
    const notModified = await fetchImage(url, { headers: { 'if-none-match': etag } });
    expect([notModified.res.status, notModified.body.length]).toEqual([304, 0]);
    expect(notModified.res.headers.get('etag')).toBe(etag);
    expect(notModified.res.headers.get('cache-control')).toBe(YEAR_LONG);
    const other = await fetchImage(url, { headers: { 'if-none-match': '"other"' } });
    expect(other.res.status).toBe(200);

    const part = await fetchImage(url, { headers: { range: 'bytes=0-11' } });
    expect(part.res.status).toBe(206);
    expect(part.res.headers.get('content-range')).toBe(`bytes 0-11/${body.length}`);
    expect(part.body.equals(body.subarray(0, 12))).toBe(true);
    const unsatisfiable = await fetch(url, { headers: { range: `bytes=${body.length}-` } });
    expect(unsatisfiable.status).toBe(416);
    await unsatisfiable.arrayBuffer();

    const head = await fetchImage(url, { method: 'HEAD' });
    expect([head.res.status, head.body.length, head.res.headers.get('content-length')]).toEqual([
      200,
      0,
      String(body.length),
    ]);
  });

  it('refuses a tampered, dropped, malformed or expired variant with 403', async () => {
    const url = signed(PHOTO, THUMB);
    const edit = (f: (u: URL) => void) => {
      const u = new URL(url);
      f(u);
      return u.toString();
    };
    const bad = [
      // Any part of v edited (another valid variant, a larger box, another format or quality).
      edit((u) => u.searchParams.set('v', '640x640-cover-webp-75')),
      edit((u) => u.searchParams.set('v', '320x320-cover-png-75')),
      edit((u) => u.searchParams.set('v', '320x320-cover-webp-100')),
      edit((u) => u.searchParams.set('v', '320x320-contain-webp-75')),
      // v dropped: the original was never signed with this signature.
      edit((u) => u.searchParams.delete('v')),
      edit((u) => u.searchParams.set('v', '')),
      // v added to a URL of the original.
      `${signed(PHOTO)}&v=${THUMB.key}`,
      // Expired, though signed correctly.
      signed(PHOTO, THUMB, { start: liveWindow().start - 7200, end: liveWindow().start - 3600 }),
    ];
    for (const u of bad) {
      const res = await fetch(u);
      expect(res.status, u).toBe(403);
      expect(res.headers.get('cache-control')).toBe('no-store');
      await res.arrayBuffer();
    }
    // A malformed variant key under a valid signature (only a signer's mistake could make one):
    // still 403, never 500 — and nothing rendered.
    const before = await made();
    for (const key of ['320x320-cover-webp-075', '0x320-cover-webp-75', 'xx-cover', '320x320-fill-webp-75']) {
      const w = liveWindow();
      const sig = localSignature(h.config.localSigningSecret, PHOTO, w, key);
      const u = new URL(h.storage.urlFor(PHOTO, { ...w, sig }));
      u.searchParams.delete('sig');
      u.searchParams.set('v', key);
      u.searchParams.set('sig', sig);
      const res = await fetch(u);
      expect(res.status, key).toBe(403);
      await res.arrayBuffer();
    }
    expect(await made()).toBe(before);
    expect((await fetch(url)).status).toBe(200);
  });

  it('a truncated original answers VARIANT_FAILED within a bound, and is still served itself', async () => {
    const started = Date.now();
    const res = await fetch(signed(TRUNCATED, THUMB));
    expect(res.status).toBe(422);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('VARIANT_FAILED');
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(await made('unreadable')).toBeGreaterThanOrEqual(1);
    const original = await fetchImage(signed(TRUNCATED));
    expect([original.res.status, original.body.length]).toEqual([200, photo.length >> 1]);
    // The failure is not kept: nothing under the object's variants folder.
    const dir = variantDirOf(path.join(h.config.dataDir, 'variants'), TRUNCATED);
    expect(await readdir(dir).catch(() => [])).toEqual([]);
  });

  it('a decompression bomb object (declares 50,000×50,000) is refused without being decoded', async () => {
    const started = Date.now();
    const rss = process.memoryUsage().rss;
    const res = await fetch(signed(BOMB, THUMB));
    expect(res.status).toBe(422);
    expect(((await res.json()) as { error: { message: string } }).error.message).toMatch(/pixels/);
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(await made('too_large')).toBeGreaterThanOrEqual(1);
    // 2.5 billion pixels decoded would be gigabytes.
    expect(process.memoryUsage().rss - rss).toBeLessThan(200 * 1024 * 1024);
  });

  it('a missing object is 404 for its variants too', async () => {
    const res = await fetch(signed('u/variants/none.jpg', THUMB));
    expect(res.status).toBe(404);
    await res.arrayBuffer();
  });

  it('variants stay out of listings, and deleting the object deletes them', async () => {
    const key = 'u/variants/deleted.jpg';
    await h.storage.put(key, photo, 'image/jpeg');
    expect((await fetch(signed(key, THUMB))).status).toBe(200);
    expect((await fetch(signed(key, MEDIUM))).status).toBe(200);
    const dir = variantDirOf(path.join(h.config.dataDir, 'variants'), key);
    expect((await readdir(dir)).sort()).toEqual(
      [THUMB.key, `${THUMB.key}.json`, MEDIUM.key, `${MEDIUM.key}.json`].sort(),
    );
    // The orphan sweep's mark is the bucket's too, once a worker has swept (images/sweep-guard.ts).
    const listed = (await h.storage.list('')).objects.map((o) => o.key).filter((k) => k !== SWEEP_MARK_KEY);
    expect(listed.sort()).toEqual([BOMB, key, PHOTO, ROTATED, TRUNCATED].sort());

    await h.storage.delete(key);
    expect(await readdir(dir).catch((e: NodeJS.ErrnoException) => e.code)).toBe('ENOENT');
    expect((await fetch(signed(key, THUMB))).status).toBe(404);
  });

  it('deleteImage through GraphQL removes the image’s variants', async () => {
    const up = await uploadFile(h, photo, { name: 'p.jpg', type: 'image/jpeg' });
    expect(up.errors).toBeUndefined();
    const { id, key } = up.data!.uploadImage;
    expect((await fetch(signed(key, THUMB))).status).toBe(200);
    const dir = variantDirOf(path.join(h.config.dataDir, 'variants'), key);
    expect((await readdir(dir)).length).toBe(2);
    const del = await h.gql<{ deleteImage: boolean }>('mutation($id: ID!) { deleteImage(id: $id) }', { id });
    expect(del.data?.deleteImage).toBe(true);
    expect(await readdir(dir).catch((e: NodeJS.ErrnoException) => e.code)).toBe('ENOENT');
  });

  it('20 concurrent first requests of different variants all answer, and /healthz stays responsive', async () => {
    const variants = Array.from({ length: 20 }, (_, i) =>
      variantOf({ width: 200 + i * 40, height: 200 + i * 20, fit: 'cover', format: 'webp', quality: 70 }),
    );
    const before = await made();
    let done = false;
    const healthLatencies: number[] = [];
    const probe = (async () => {
      while (!done) {
        const t = performance.now();
        const res = await fetch(`${h.url}/healthz`);
        await res.arrayBuffer();
        expect(res.status).toBe(200);
        healthLatencies.push(performance.now() - t);
        await new Promise((r) => setTimeout(r, 25));
      }
    })();
    const started = Date.now();
    const results = await Promise.all(variants.map((v) => fetchImage(signed(PHOTO, v))));
    done = true;
    await probe;
    expect(results.map((r) => r.res.status)).toEqual(variants.map(() => 200));
    for (const [i, r] of results.entries()) {
      const meta = await sharp(r.body).metadata();
      expect([meta.width, meta.height]).toEqual([variants[i]!.width, variants[i]!.height]);
    }
    expect(await made()).toBe(before + 20);
    // The pool held at most VARIANT_CONCURRENCY renders; the event loop kept answering.
    expect(h.container.localVariants!.inFlight).toBe(0);
    expect(healthLatencies.length).toBeGreaterThan(3);
    expect(Math.max(...healthLatencies)).toBeLessThan(500);
    expect(Date.now() - started).toBeLessThan(60_000);
  }, 90_000);
});

describe('/local-bucket variants under a full queue', () => {
  let h: Harness;
  const KEY = 'u/queue/photo.jpg';

  beforeAll(async () => {
    h = await startHarness({
      driver: 'local',
      redis: 'memory',
      env: { VARIANT_CONCURRENCY: '1', VARIANT_QUEUE_MAX: '1' },
    });
    await h.storage.put(KEY, await makePhoto(2400, 1600), 'image/jpeg');
  }, 60_000);
  afterAll(async () => {
    await h?.close();
  });

  it('refuses what does not fit with 503 and Retry-After; a retry then succeeds', async () => {
    const now = Math.floor(Date.now() / 1000);
    const w = { start: now - 60, end: now + 3600 };
    const url = (i: number) => {
      const v = variantOf({ width: 300 + i, height: 300, fit: 'cover', format: 'webp', quality: 60 });
      const [sig] = h.storage.signMany([KEY], w, [v]);
      return h.storage.urlFor(KEY, { ...w, sig: sig! }, v);
    };
    const results = await Promise.all(
      [0, 1, 2, 3, 4].map(async (i) => {
        const res = await fetch(url(i));
        await res.arrayBuffer();
        return { status: res.status, retryAfter: res.headers.get('retry-after') };
      }),
    );
    const statuses = results.map((r) => r.status).sort();
    expect(statuses).toEqual([200, 200, 503, 503, 503]);
    for (const r of results) if (r.status === 503) expect(r.retryAfter).toBe('5');
    const refused = results.findIndex((r) => r.status === 503);
    expect((await fetch(url(refused))).status).toBe(200);
  });
});
