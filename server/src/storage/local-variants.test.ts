import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLocalStorage, ensureLocalBucket } from './local.js';
import { variantDirOf } from './local-variants.js';

describe('variantDirOf', () => {
  it('puts every key in one folder directly under the root, whatever it contains', () => {
    const root = '/data/variants';
    for (const key of ['u/alice/a.jpg', 'a/../../etc', '..', '.', 'x%2Fy', 'é/ü', `u/${'a'.repeat(190)}`]) {
      const dir = variantDirOf(root, key);
      expect(path.dirname(dir), key).toBe(root);
      const name = path.basename(dir);
      expect(name === '.' || name === '..' || name.includes('/'), key).toBe(false);
      expect(Buffer.byteLength(name), key).toBeLessThanOrEqual(200);
    }
    expect(variantDirOf(root, 'u/alice/a.jpg')).toBe('/data/variants/u%2Falice%2Fa%2Ejpg');
  });

  it('hashes a key too long for a file name, and no short key can name the same folder', () => {
    const long = variantDirOf('/v', `u/${'é'.repeat(100)}`);
    expect(path.basename(long)).toMatch(/^%sha256-[0-9a-f]{64}$/);
    expect(variantDirOf('/v', `u/${'é'.repeat(101)}`)).not.toBe(long);
    // The encoded form of a key that looks like a hashed name differs from it.
    expect(variantDirOf('/v', path.basename(long))).not.toBe(long);
  });
});

describe('the local driver removes an object’s variants', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'signet-local-variants-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('on delete and on a put over the key, and lists none of them', async () => {
    const variantsRoot = path.join(dir, 'variants');
    await ensureLocalBucket(path.join(dir, 'bucket'));
    const storage = createLocalStorage({
      root: path.join(dir, 'bucket'),
      publicUrl: 'http://gw.test',
      secret: 's'.repeat(32),
      variantsRoot,
    });
    const key = 'u/alice/a.jpg';
    const other = 'u/alice/b.jpg';
    const fakeVariant = async (k: string) => {
      await mkdir(variantDirOf(variantsRoot, k), { recursive: true });
      await writeFile(path.join(variantDirOf(variantsRoot, k), '320x320-cover-webp-75'), 'v');
    };
    await storage.put(key, Buffer.from('one'), 'image/jpeg');
    await storage.put(other, Buffer.from('two'), 'image/jpeg');
    await fakeVariant(key);
    await fakeVariant(other);
    expect((await storage.list('')).objects.map((o) => o.key)).toEqual([key, other]);

    await storage.put(key, Buffer.from('three'), 'image/jpeg');
    expect(await readdir(variantsRoot)).toEqual([path.basename(variantDirOf(variantsRoot, other))]);
    await fakeVariant(key);
    await storage.delete(key);
    expect(await readdir(variantsRoot)).toEqual([path.basename(variantDirOf(variantsRoot, other))]);
    // Deleting a missing object (and its missing variants) still succeeds.
    await storage.delete(key);
  });
});
