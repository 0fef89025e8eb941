/**
 * Variants on the s3 driver (docs/architecture.md, "Variants on s3"), end to end against s3rver
 * behind the SigV4-verifying front: a preset's URL is the original's until its derived object
 * exists (and a metric counts it), the after-upload job (BullMQ's queue, or the timer engine in
 * process) or the backfill makes the objects, the next page signs them, their bytes are the
 * preset's, and a delete leaves no object under the reserved prefix.
 */
import { randomUUID } from 'node:crypto';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeClock } from '../../src/clock.js';
import { SWEEP_MARK_KEY } from '../../src/images/sweep-guard.js';
import { objectKeyFor } from '../../src/images/upload.js';
import { DERIVED_VARIANT_PREFIX } from '../../src/storage/derived-variants.js';
import { testRedisUrl } from '../support/env.js';
import { type Harness, startHarness } from '../support/harness.js';
import { clearOfStepTurns } from '../support/step-turns.js';
import { uploadFile } from '../support/upload.js';

/** A 1200×900 photo-like JPEG: thumb 320×320 (2× 640×640), medium capped to 1200×900 (no 2×). */
async function photo(): Promise<Buffer> {
  const seed = await sharp({
    create: {
      width: 120,
      height: 90,
      channels: 3,
      background: '#7a9cc6',
      noise: { type: 'gaussian', mean: 128, sigma: 50 },
    },
  })
    .png()
    .toBuffer();
  return sharp(seed).resize(1200, 900, { fit: 'fill' }).jpeg({ quality: 85 }).toBuffer();
}

const IMAGE = /* GraphQL */ `
  query($id: ID!) {
    image(id: $id) {
      original: signedUrl { url }
      thumb: signedUrl(preset: "thumb") { url }
      medium: signedUrl(preset: "medium") { url }
      thumbSet: srcset(preset: "thumb")
    }
  }
`;

interface ImageUrls {
  original: { url: string };
  thumb: { url: string };
  medium: { url: string };
  thumbSet: string;
}

async function urlsOf(h: Harness, id: string): Promise<ImageUrls> {
  const res = await h.gql<{ image: ImageUrls }>(IMAGE, { id });
  expect(res.errors).toBeUndefined();
  return res.data!.image;
}

/** The object key a signed S3 URL names (path style: /bucket/key). */
function keyOf(url: string, bucket: string): string {
  const path = new URL(url).pathname;
  expect(path.startsWith(`/${bucket}/`)).toBe(true);
  return decodeURIComponent(path.slice(bucket.length + 2));
}

async function fetched(url: string) {
  const res = await fetch(url);
  return {
    status: res.status,
    type: res.headers.get('content-type'),
    body: Buffer.from(await res.arrayBuffer()),
  };
}

async function sizeOf(url: string) {
  const r = await fetched(url);
  expect(r.status).toBe(200);
  const m = await sharp(r.body).metadata();
  return { type: r.type, format: m.format, width: m.width, height: m.height };
}

/** Every key in the bucket under prefix (through the driver: the same listing the sweeps use). */
/** Every object of the bucket but the orphan sweep's mark (images/sweep-guard.ts), which a worker writes. */
async function objectsLeft(h: Harness): Promise<string[]> {
  return (await keysUnder(h, '')).filter((k) => k !== SWEEP_MARK_KEY);
}

async function keysUnder(h: Harness, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  let marker: string | undefined;
  do {
    const page = await h.storage.list(prefix, marker !== undefined ? { marker } : {});
    keys.push(...page.objects.map((o) => o.key));
    marker = page.nextMarker;
  } while (marker !== undefined);
  return keys;
}

async function fallbacks(h: Harness, preset: string): Promise<number> {
  const m = await h.container.metrics.variantFallbacks.get();
  return m.values.find((v) => v.labels.preset === preset)?.value ?? 0;
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, ms = 30_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function deleteImage(h: Harness, id: string): Promise<void> {
  const res = await h.gql<{ deleteImage: boolean }>('mutation($id: ID!) { deleteImage(id: $id) }', { id });
  expect(res.errors).toBeUndefined();
  expect(res.data!.deleteImage).toBe(true);
}

// The after-upload job on each engine: BullMQ (its own variants queue, on a worker) and the
// timer engine (in process, without Redis).
describe.each([
  ['bullmq', testRedisUrl()],
  ['timer', 'memory'],
] as const)('s3 derived variants after upload (%s engine)', (engine, redis) => {
  let h: Harness;
  let bucket: string;

  beforeAll(async () => {
    h = await startHarness({
      driver: 's3',
      redis,
      start: true,
      env: { VARIANT_BACKFILL_INTERVAL_SECONDS: '0' },
    });
    bucket = h.s3Fixture!.bucket;
    expect(h.container.jobs.kind).toBe(engine);
  }, 60_000);
  afterAll(async () => {
    await h?.close();
  });

  it('the job makes every preset; the page then signs the derived objects, of the preset sizes; a delete leaves none', async () => {
    const up = await uploadFile(h, await photo(), { type: 'image/jpeg', name: 'p.jpg' });
    expect(up.errors).toBeUndefined();
    const { id, key } = up.data!.uploadImage;

    // The job runs on its own; the next page after it signs the derived objects.
    const urls = await until('thumb signed as its derived object', async () => {
      const u = await urlsOf(h, id);
      return keyOf(u.thumb.url, bucket).startsWith(DERIVED_VARIANT_PREFIX) &&
        keyOf(u.medium.url, bucket).startsWith(DERIVED_VARIANT_PREFIX)
        ? u
        : undefined;
    });
    expect(keyOf(urls.original.url, bucket)).toBe(key);
    expect(keyOf(urls.thumb.url, bucket)).toBe(`${DERIVED_VARIANT_PREFIX}${key}/320x320-cover-webp-75`);
    expect(keyOf(urls.medium.url, bucket)).toBe(`${DERIVED_VARIANT_PREFIX}${key}/1200x900-inside-webp-80`);

    expect(await sizeOf(urls.thumb.url)).toEqual({
      type: 'image/webp',
      format: 'webp',
      width: 320,
      height: 320,
    });
    expect(await sizeOf(urls.medium.url)).toEqual({
      type: 'image/webp',
      format: 'webp',
      width: 1200,
      height: 900,
    });
    const [x1, x2] = urls.thumbSet.split(', ').map((e) => e.split(' '));
    expect([x1![1], x2![1]]).toEqual(['320w', '640w']);
    expect(keyOf(x2![0]!, bucket)).toBe(`${DERIVED_VARIANT_PREFIX}${key}/640x640-cover-webp-75`);
    expect(await sizeOf(x2![0]!)).toEqual({ type: 'image/webp', format: 'webp', width: 640, height: 640 });

    // Exactly the three variants the presets ask of this image, and nothing else.
    expect((await keysUnder(h, DERIVED_VARIANT_PREFIX)).sort()).toEqual(
      ['1200x900-inside-webp-80', '320x320-cover-webp-75', '640x640-cover-webp-75'].map(
        (v) => `${DERIVED_VARIANT_PREFIX}${key}/${v}`,
      ),
    );

    await deleteImage(h, id);
    expect(await keysUnder(h, DERIVED_VARIANT_PREFIX)).toEqual([]);
    expect(await objectsLeft(h)).toEqual([]);
    // The URLs handed out before the delete are dead: the objects are gone.
    expect((await fetched(urls.thumb.url)).status).toBe(404);
  }, 90_000);
});

describe('s3 derived variants of images that have none (backfill)', () => {
  let h: Harness;
  let bucket: string;

  beforeAll(async () => {
    // No workers: nothing makes variants until the test runs the backfill.
    h = await startHarness({ driver: 's3', redis: testRedisUrl() });
    bucket = h.s3Fixture!.bucket;
  }, 60_000);
  afterAll(async () => {
    await h?.close();
  });

  /** A row and its object as an older version (or an import) left them: no variants. */
  async function existing(): Promise<{ id: string; key: string }> {
    const id = randomUUID();
    const key = objectKeyFor('alice', id, 'jpg');
    const bytes = await photo();
    const { etag } = await h.storage.put(key, bytes, 'image/jpeg');
    await h.container.imagesRepo.insert({
      id,
      ownerId: 'alice',
      objectKey: key,
      contentType: 'image/jpeg',
      byteSize: bytes.length,
      width: 1200,
      height: 900,
      etag,
      animated: false,
      createdAt: new Date(),
    });
    return { id, key };
  }

  it("a preset's URL is the original's until its object exists (counted), then the derived object's", async () => {
    const a = await existing();
    const b = await existing();
    // Asked again below, a's URL must be the same step's (byte-identical): not across a turn.
    await clearOfStepTurns(h.container.config, [a.id]);
    const thumbBefore = await fallbacks(h, 'thumb');
    const before = await urlsOf(h, a.id);
    // The original's object, and counted: thumb (1×) and thumb's srcset (1× and 2×).
    expect(keyOf(before.thumb.url, bucket)).toBe(a.key);
    expect(keyOf(before.medium.url, bucket)).toBe(a.key);
    expect(before.thumb.url).toBe(before.original.url);
    expect((await fetched(before.thumb.url)).status).toBe(200);
    expect((await fallbacks(h, 'thumb')) - thumbBefore).toBe(3);
    expect(await fallbacks(h, 'medium')).toBeGreaterThanOrEqual(1);
    // Asked again: a cache hit of the original's URL (the derived objects still do not exist).
    expect((await urlsOf(h, a.id)).thumb.url).toBe(before.thumb.url);

    const run = await h.container.derivedVariants!.backfill();
    expect(run).toMatchObject({ made: 2, failed: 0, unrenderable: 0, complete: true });
    // Each row is made once: a second run finds nothing to do.
    expect(await h.container.derivedVariants!.backfill()).toMatchObject({ visited: 0, complete: true });

    // The cached fallback was dropped when the object was made: this page signs the object.
    const after = await urlsOf(h, a.id);
    expect(keyOf(after.thumb.url, bucket)).toBe(`${DERIVED_VARIANT_PREFIX}${a.key}/320x320-cover-webp-75`);
    expect(await sizeOf(after.thumb.url)).toEqual({
      type: 'image/webp',
      format: 'webp',
      width: 320,
      height: 320,
    });
    expect(await sizeOf(after.medium.url)).toEqual({
      type: 'image/webp',
      format: 'webp',
      width: 1200,
      height: 900,
    });
    const counted = await fallbacks(h, 'thumb');
    await urlsOf(h, b.id);
    expect(await fallbacks(h, 'thumb')).toBe(counted);

    await deleteImage(h, a.id);
    await deleteImage(h, b.id);
    expect(await keysUnder(h, DERIVED_VARIANT_PREFIX)).toEqual([]);
    expect(await objectsLeft(h)).toEqual([]);
  }, 90_000);

  it('an original that cannot be rendered keeps its presets on the original, and is not tried again', async () => {
    const id = randomUUID();
    const key = objectKeyFor('alice', id, 'jpg');
    const junk = Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), Buffer.alloc(2000, 7)]);
    const { etag } = await h.storage.put(key, junk, 'image/jpeg');
    await h.container.imagesRepo.insert({
      id,
      ownerId: 'alice',
      objectKey: key,
      contentType: 'image/jpeg',
      byteSize: junk.length,
      width: 1200,
      height: 900,
      etag,
      animated: false,
      createdAt: new Date(),
    });
    expect(await h.container.derivedVariants!.backfill()).toMatchObject({ unrenderable: 1, made: 0 });
    expect(await h.container.derivedVariants!.backfill()).toMatchObject({ visited: 0 });
    expect(keyOf((await urlsOf(h, id)).thumb.url, bucket)).toBe(key);
    expect(await keysUnder(h, DERIVED_VARIANT_PREFIX)).toEqual([]);
    await deleteImage(h, id);
  }, 60_000);

  it('a derived object stored while its image is being deleted does not outlive it', async () => {
    const { id, key } = await existing();
    const [row] = await h.container.imagesRepo.findLive([id]);
    const fixture = h.s3Fixture!;
    // The job's first put is stored, its answer held: the image is deleted in between.
    const seen = fixture.requests.log.length;
    fixture.holdPutResponses(true);
    const making = h.container.derivedVariants!.make(row!);
    await until('a derived object stored', async () =>
      fixture.requests.log
        .slice(seen)
        .some((r) => r.method === 'PUT' && r.key.startsWith(`${DERIVED_VARIANT_PREFIX}${key}/`))
        ? true
        : undefined,
    );
    await deleteImage(h, id);
    fixture.holdPutResponses(false);
    expect(await making).toBe('gone');
    expect(await keysUnder(h, `${DERIVED_VARIANT_PREFIX}${key}`)).toEqual([]);
    expect(await objectsLeft(h)).toEqual([]);
  }, 60_000);
});

describe('s3 derived variants and the refresh sweep (fake clock)', () => {
  const clock = new FakeClock(Date.now());
  let h: Harness;
  let bucket: string;

  beforeAll(async () => {
    h = await startHarness({
      driver: 's3',
      redis: 'memory',
      clock,
      env: { URL_TTL_SECONDS: '3600', REFRESH_AHEAD_SECONDS: '900' },
    });
    bucket = h.s3Fixture!.bucket;
  }, 60_000);
  afterAll(async () => {
    await h?.close();
  });

  it("a cached fallback left by a race is replaced at the step's boundary by the derived object's URL", async () => {
    const id = randomUUID();
    const key = objectKeyFor('alice', id, 'jpg');
    const bytes = await photo();
    const { etag } = await h.storage.put(key, bytes, 'image/jpeg');
    await h.container.imagesRepo.insert({
      id,
      ownerId: 'alice',
      objectKey: key,
      contentType: 'image/jpeg',
      byteSize: bytes.length,
      width: 1200,
      height: 900,
      etag,
      animated: false,
      createdAt: new Date(clock.now()),
    });
    const before = await urlsOf(h, id);
    expect(keyOf(before.thumb.url, bucket)).toBe(key);

    // The object made and the row updated, but the cached fallback not purged (as when a request
    // that read the row before the update wrote its signature after the purge).
    const thumbKey = `${DERIVED_VARIANT_PREFIX}${key}/320x320-cover-webp-75`;
    const thumb = await sharp(bytes).resize(320, 320, { fit: 'cover' }).webp({ quality: 75 }).toBuffer();
    await h.storage.put(thumbKey, thumb, 'image/webp');
    expect(await h.container.imagesRepo.addVariantReady(id, '320x320-cover-webp-75')).toBe(true);
    const stale = await urlsOf(h, id);
    // The row says the object exists, the cache holds a signature of the original: the URL is the
    // original's, and it works (never a 403).
    expect(stale.thumb.url).toBe(before.thumb.url);
    expect((await fetched(stale.thumb.url)).status).toBe(200);

    // Past the step's boundary the sweep re-signs it from the row: the derived object.
    clock.advance(46 * 60_000);
    await h.container.access.flush();
    const swept = await h.container.refresher.sweep();
    expect(swept.refreshed).toBeGreaterThan(0);
    const after = await urlsOf(h, id);
    expect(keyOf(after.thumb.url, bucket)).toBe(thumbKey);
    expect(await sizeOf(after.thumb.url)).toEqual({
      type: 'image/webp',
      format: 'webp',
      width: 320,
      height: 320,
    });

    // The SDK signs object operations with the real time, which the fixture checks against this
    // clock: back to now for the delete.
    clock.set(Date.now());
    await deleteImage(h, id);
    expect(await objectsLeft(h)).toEqual([]);
  }, 60_000);
});
