import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLocalStorage, ensureLocalBucket } from './local.js';
import type { Storage } from './storage.js';

let dir: string;
let storage: Storage;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'signet-local-'));
  storage = createLocalStorage({ root: dir, publicUrl: 'http://gw.test', secret: 's'.repeat(32) });
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function allKeys(prefix: string, maxKeys: number): Promise<{ keys: string[]; pages: number }> {
  const keys: string[] = [];
  let marker: string | undefined;
  let pages = 0;
  do {
    const page = await storage.list(prefix, { maxKeys, ...(marker !== undefined ? { marker } : {}) });
    pages++;
    keys.push(...page.objects.map((o) => o.key));
    marker = page.nextMarker;
  } while (marker !== undefined);
  return { keys, pages };
}

describe('local driver: put', () => {
  it('streams a body of its declared size into place, and leaves nothing of a wrong one', async () => {
    const body = Buffer.alloc(200 * 1024, 7);
    const { etag } = await storage.put(
      's/a.bin',
      Readable.from([body.subarray(0, 1000), body.subarray(1000)]),
      'x/y',
      body.length,
    );
    expect(await storage.head('s/a.bin')).toMatchObject({ size: body.length, contentType: 'x/y', etag });
    await expect(storage.put('s/b.bin', Readable.from([body]), 'x/y', body.length + 1)).rejects.toMatchObject(
      {
        kind: 'rejected',
      },
    );
    await expect(storage.put('s/c.bin', Readable.from([body]), 'x/y', body.length - 1)).rejects.toMatchObject(
      {
        kind: 'rejected',
      },
    );
    expect(await storage.head('s/b.bin')).toBeNull();
    expect(await storage.head('s/c.bin')).toBeNull();
    // No temporary file is left behind either.
    expect((await readdir(path.join(dir, 's'))).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });
});

describe('local driver: list', () => {
  it('lists in the UTF-8 byte order S3 and COS use, where it differs from JavaScript string order', async () => {
    // U+E000 is EE 80 80 in UTF-8 and 😀 (U+1F600) F0 9F 98 80: byte order puts U+E000 first,
    // while JavaScript's `<` (UTF-16 units: 0xE000 against the surrogate 0xD83D) puts 😀 first.
    const keys = ['o/\u{E000}.png', 'o/\u{1F600}.png', 'o/\u{FFFD}.png', 'o/z.png'];
    for (const key of keys) await storage.put(key, Buffer.from(key), 'image/png');
    const bytes = [...keys].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    expect(bytes).not.toEqual([...keys].sort());
    expect((await allKeys('o/', 1000)).keys).toEqual(bytes);
    // A page at a time, each marker a key: the same order, nothing twice or left out.
    expect((await allKeys('o/', 1)).keys).toEqual(bytes);
  });

  it('walks the keys under a prefix in key order, a page at a time, without metadata or temporary files', async () => {
    const keys = ['u/a/1.png', 'u/a/2.png', 'u/a.b/3.png', 'u/a0/4.png', 'u/b/5.png', 'u/%2E%2E/6.png'];
    for (const key of keys) await storage.put(key, Buffer.from(key), 'image/png');
    await storage.put('v/7.png', Buffer.from('v'), 'image/png');
    // A put cut short by a dying process leaves its temporary file: not an object.
    await writeFile(path.join(dir, 'u', 'a', '9.png.123.1765000000456.tmp'), 'partial');

    const expected = [...keys].sort();
    // '%' < '.' < '/' < '0' < 'b': u/%2E%2E/…, u/a.b/…, u/a/…, u/a0/…, u/b/…
    expect(expected).toEqual([
      'u/%2E%2E/6.png',
      'u/a.b/3.png',
      'u/a/1.png',
      'u/a/2.png',
      'u/a0/4.png',
      'u/b/5.png',
    ]);
    for (const size of [1, 2, 4, 1000]) {
      const { keys: seen, pages } = await allKeys('u/', size);
      expect(seen).toEqual(expected);
      expect(pages).toBe(Math.max(1, Math.ceil(expected.length / size)));
    }
    const page = await storage.list('u/a/');
    expect(page.objects.map((o) => o.key)).toEqual(['u/a/1.png', 'u/a/2.png']);
    expect(page.objects[0]).toMatchObject({ size: 'u/a/1.png'.length });
    expect(page.objects[0]!.lastModified).toBeInstanceOf(Date);
    expect(page.nextMarker).toBeUndefined();
    expect((await storage.list('none/')).objects).toEqual([]);
  });
});

describe('local driver: ping', () => {
  it('reports a bucket folder that is gone as down, and does not make it again (ensureLocalBucket does)', async () => {
    const root = path.join(dir, 'mounted-bucket');
    const gone = createLocalStorage({ root, publicUrl: 'http://gw.test', secret: 's'.repeat(32) });
    await expect(gone.ping()).rejects.toThrow(`the local bucket ${root} does not exist`);
    // A probe that made it would hide an unmounted volume behind an empty bucket.
    await expect(readdir(root)).rejects.toMatchObject({ code: 'ENOENT' });

    await writeFile(root, 'not a folder');
    await expect(gone.ping()).rejects.toThrow('is not a directory');
    await rm(root);

    await ensureLocalBucket(root);
    await expect(gone.ping()).resolves.toBeUndefined();
  });

  it('refuses a put into a bucket folder that is gone (unavailable) instead of making it again, empty', async () => {
    const root = path.join(dir, 'unmounted-bucket');
    const bucket = createLocalStorage({ root, publicUrl: 'http://gw.test', secret: 's'.repeat(32) });
    await ensureLocalBucket(root);
    await bucket.put('u/alice/a.png', Buffer.from('a'), 'image/png');
    await rm(root, { recursive: true });

    await expect(bucket.put('u/alice/b.png', Buffer.from('b'), 'image/png')).rejects.toMatchObject({
      kind: 'unavailable',
      message: expect.stringContaining('does not exist'),
    });
    await expect(readdir(root)).rejects.toMatchObject({ code: 'ENOENT' });
    await expect(bucket.ping()).rejects.toThrow('does not exist');
  });
});
