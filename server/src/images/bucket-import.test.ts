import { mkdir, mkdtemp, rm, truncate, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { gifWithLateFrame, gifWithScreen } from '../../test/fixtures/images.js';
import type { ImportedImage } from '../db/images-repo.js';
import { createLocalStorage } from '../storage/local.js';
import { type Storage, StorageError } from '../storage/storage.js';
import { type BucketImportDeps, importBucket } from './bucket-import.js';

const config = {
  uploadAllowSvg: false,
  uploadMaxPixels: 1_000_000,
  uploadMaxBytes: 20 * 1024 * 1024,
  regions: undefined,
};

describe('importBucket against the local driver', () => {
  let root: string;
  let storage: Storage;
  const rows: ImportedImage[] = [];
  const images: BucketImportDeps['images'] = {
    keysWithRows: async () => new Map(),
    insertImported: async (r) => {
      rows.push(...r);
      return r.map((x) => x.objectKey);
    },
  };

  beforeEach(async () => {
    root = await mkdtemp(path.join(os.tmpdir(), 'signet-import-'));
    await mkdir(path.join(root, 'photos'));
    storage = createLocalStorage({ root, publicUrl: 'http://x', secret: 'x'.repeat(32) });
    rows.length = 0;
  });
  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('an object rewritten shorter after the listing is skipped as changed; the rest is imported', async () => {
    // An APP2 segment of 64 KB first: the frame header lies past the first read, which reads on.
    const made = await sharp({ create: { width: 400, height: 300, channels: 3, background: '#0a0' } })
      .jpeg()
      .toBuffer();
    const app2 = Buffer.alloc(2 + 65535, 0x20);
    app2[0] = 0xff;
    app2[1] = 0xe2;
    app2.writeUInt16BE(65535, 2);
    const photo = Buffer.concat([made.subarray(0, 2), app2, app2, made.subarray(2)]);
    expect(photo.length).toBeGreaterThan(100_000);
    for (let i = 0; i < 5; i++) await writeFile(path.join(root, 'photos', `p${i}.jpg`), photo);
    const file = (name: string) => path.join(root, 'photos', name);
    const rewritten: BucketImportDeps['storage'] = {
      list: async (...args) => {
        const page = await storage.list(...args);
        await truncate(file('p0.jpg'), 40_000); // the first read ends early
        return page;
      },
      get: async (key, options) => {
        // Rewritten between the first read and the read on: that range is out of it now.
        if (key === 'photos/p1.jpg' && options?.range?.start) await truncate(file('p1.jpg'), 30_000);
        return storage.get(key, options);
      },
    };
    const res = await importBucket(
      { config, storage: rewritten, images },
      { ownerId: 'shop', concurrency: 1 },
    );
    expect(res.skipped).toMatchObject({ changed: 2 });
    expect(res.imported).toBe(3);
    expect(rows.map((r) => r.objectKey).sort()).toEqual(['photos/p2.jpg', 'photos/p3.jpg', 'photos/p4.jpg']);
  });

  it('an object the store refuses to read for good (a 400) is skipped as unreadable; throttling or a denial ends the run', async () => {
    const png = await sharp({ create: { width: 4, height: 3, channels: 3, background: '#00a' } })
      .png()
      .toBuffer();
    for (let i = 0; i < 3; i++) await writeFile(path.join(root, 'photos', `p${i}.png`), png);
    // As the s3 and cos drivers report a store's 4xx (server/test/storage/drivers.test.ts): an
    // object encrypted with a customer key answers a plain GET 400.
    const refusing = (status: number): BucketImportDeps['storage'] => ({
      list: (...args) => storage.list(...args),
      get: async (key, options) => {
        if (key === 'photos/p1.png') {
          throw new StorageError('unavailable', `get ${key}: InvalidRequest`, { status });
        }
        return storage.get(key, options);
      },
    });
    const res = await importBucket(
      { config, storage: refusing(400), images },
      { ownerId: 'shop', concurrency: 1 },
    );
    expect(res.skipped).toMatchObject({ unreadable: 1 });
    expect(rows.map((r) => r.objectKey).sort()).toEqual(['photos/p0.png', 'photos/p2.png']);
    for (const status of [429, 403, 503]) {
      rows.length = 0;
      await expect(
        importBucket({ config, storage: refusing(status), images }, { ownerId: 'shop', concurrency: 1 }),
        String(status),
      ).rejects.toBeInstanceOf(StorageError);
    }
  });

  it('a GIF is judged by its frames, also one 2 MB into the object', async () => {
    const made = await sharp({ create: { width: 1200, height: 1000, channels: 3, background: '#0a0' } })
      .gif()
      .toBuffer();
    await writeFile(path.join(root, 'photos', 'screen.gif'), gifWithScreen(made, 1, 1));
    await writeFile(
      path.join(root, 'photos', 'late.gif'),
      gifWithLateFrame(1, 2 * 1024 * 1024, 20_000, 20_000),
    );
    await writeFile(path.join(root, 'photos', 'fine.gif'), gifWithLateFrame(1, 2 * 1024 * 1024, 30, 20));
    const res = await importBucket({ config, storage, images }, { ownerId: 'shop' });
    expect(res.skipped).toMatchObject({ 'too-many-pixels': 2 });
    expect(rows).toEqual([expect.objectContaining({ objectKey: 'photos/fine.gif', width: 30, height: 20 })]);
  });
});
