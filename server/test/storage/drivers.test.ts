import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import fc from 'fast-check';
import { expect, it } from 'vitest';
import {
  OBJECT_CACHE_CONTROL,
  type SignWindow,
  type Storage,
  StorageError,
} from '../../src/storage/storage.js';
import { describeStorageDrivers } from '../support/storage-matrix.js';

// The Storage contract, once for every object-store driver against its verifying fixture (cos:
// the COS fixture; s3: s3rver behind the SigV4-verifying front). Driver-specific behaviour (the
// COS SDK's retries, its put deadlines under fault injection, security tokens) stays in
// cos.test.ts and s3-fixture.test.ts.

const MB = 1024 * 1024;
const nowSeconds = () => Math.floor(Date.now() / 1000);
const validWindow = (): SignWindow => ({ start: nowSeconds() - 1, end: nowSeconds() + 600 });

function signedUrl(s: Storage, key: string, window = validWindow()): string {
  const [sig] = s.signMany([key], window);
  return s.urlFor(key, { ...window, sig: sig! });
}

async function readAll(body: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of body) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

async function storageError(promise: Promise<unknown>): Promise<StorageError> {
  const err = await promise.then(
    () => {
      throw new Error('expected a StorageError');
    },
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(StorageError);
  return err as StorageError;
}

async function until(check: () => boolean, ms = 3_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

describeStorageDrivers('storage driver', ({ backend, skew }) => {
  it('puts, heads, gets (full and ranged) and deletes', async () => {
    const b = backend();
    const storage = b.storage();
    const key = 'users/u1/2026/photo (1) é+ü.jpg';
    const body = randomBytes(200_000);
    const { etag } = await storage.put(key, body, 'image/jpeg');
    expect(etag).toMatch(/^"[0-9a-f]{32}"$/);
    expect((await b.stored(key))?.equals(body)).toBe(true);

    const info = await storage.head(key);
    expect(info).toMatchObject({ size: body.length, etag, contentType: 'image/jpeg' });
    expect(info?.lastModified).toBeInstanceOf(Date);

    const full = await storage.get(key);
    expect(full).toMatchObject({ size: body.length, etag, contentType: 'image/jpeg', range: undefined });
    expect((await readAll(full.body)).equals(body)).toBe(true);

    const part = await storage.get(key, { range: { start: 1000, end: 70_999 } });
    expect(part.range).toEqual({ start: 1000, end: 70_999 });
    expect(part.size).toBe(body.length);
    expect(part.etag).toBe(etag);
    expect((await readAll(part.body)).equals(body.subarray(1000, 71_000))).toBe(true);

    const tail = await storage.get(key, { range: { start: 199_990, end: 1_000_000 } });
    expect(tail.range).toEqual({ start: 199_990, end: 199_999 });
    expect((await readAll(tail.body)).equals(body.subarray(199_990))).toBe(true);

    await storage.delete(key);
    expect(await storage.head(key)).toBeNull();
    expect(await b.stored(key)).toBeUndefined();
    await storage.delete(key); // idempotent
    await storage.ping();
    expect(b.signatureFailures).toBe(0);
    expect(b.signatureChecks).toBe(b.requests.total);
  });

  it('reports a missing object as null / not_found and a bad range as rejected', async () => {
    const storage = backend().storage();
    expect(await storage.head('nope.jpg')).toBeNull();
    expect((await storageError(storage.get('nope.jpg'))).kind).toBe('not_found');
    await storage.put('small.txt', Buffer.from('hello'), 'text/plain');
    const err = await storageError(storage.get('small.txt', { range: { start: 5, end: 9 } }));
    expect(err.kind).toBe('rejected');
    expect(err.message).toMatch(/range not satisfiable/);
  });

  it('signs a batch in one call, and each URL fetches its object byte for byte', async () => {
    const storage = backend().storage();
    const objects = new Map<string, Buffer>();
    for (let i = 0; i < 40; i++) objects.set(`batch/${i} img+${i}.png`, randomBytes(100 + i));
    objects.set('unicode/相册/фото €.webp', randomBytes(99));
    for (const [key, body] of objects) await storage.put(key, body, 'image/webp');
    const keys = [...objects.keys()];
    const w = validWindow();
    const sigs = storage.signMany(keys, w);
    expect(sigs).toHaveLength(keys.length);
    expect(new Set(sigs).size).toBe(keys.length);
    for (const [i, key] of keys.entries()) {
      const res = await fetch(storage.urlFor(key, { ...w, sig: sigs[i]! }));
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe('image/webp');
      expect(Buffer.from(await res.arrayBuffer()).equals(objects.get(key)!)).toBe(true);
    }
    expect(backend().signatureFailures).toBe(0);
  });

  it('keys with characters that need encoding round-trip exactly: upload, sign, fetch, list, delete', async () => {
    const b = backend();
    const storage = b.storage();
    const awkward = fc.constantFrom(
      ' ',
      '+',
      '%',
      '~',
      '*',
      "'",
      '(',
      ')',
      '!',
      '&',
      '=',
      '?',
      '#',
      ':',
      '@',
      ',',
      ';',
      '$',
      'é',
      '相册',
      '€',
      '😀',
      '%2F',
      '%20',
    );
    const keys = fc.sample(
      fc
        .array(fc.oneof(awkward, fc.string({ unit: 'grapheme-ascii', minLength: 1, maxLength: 4 })), {
          minLength: 1,
          maxLength: 12,
        })
        .map((parts) => `rt/${parts.join('')}`)
        // A segment of "." or ".." is normalised away by URL parsers on the way (fetch, proxies).
        .filter((k) => !k.split('/').some((s) => s === '.' || s === '..' || s === '')),
      { numRuns: 30, seed: 18 },
    );
    const unique = [...new Set(keys)];
    const bodies = new Map(unique.map((k) => [k, Buffer.from(`body of ${k}`)]));
    for (const [k, body] of bodies) await storage.put(k, body, 'application/octet-stream');
    const listed: string[] = [];
    let marker: string | undefined;
    do {
      const page = await storage.list('rt/', marker ? { marker } : {});
      listed.push(...page.objects.map((o) => o.key));
      marker = page.nextMarker;
    } while (marker !== undefined);
    expect(listed.sort()).toEqual([...unique].sort());
    const w = validWindow();
    const sigs = storage.signMany(unique, w);
    for (const [i, k] of unique.entries()) {
      const res = await fetch(storage.urlFor(k, { ...w, sig: sigs[i]! }));
      expect(res.status, k).toBe(200);
      expect(Buffer.from(await res.arrayBuffer()).equals(bodies.get(k)!), k).toBe(true);
      expect((await storage.head(k))?.size).toBe(bodies.get(k)!.length);
      await storage.delete(k);
      expect(await storage.head(k), k).toBeNull();
      expect(await b.stored(k)).toBeUndefined();
    }
    expect(b.signatureFailures).toBe(0);
  });

  it('signed URLs answer with the year-long private immutable Cache-Control, which cannot be edited', async () => {
    const b = backend();
    const storage = b.storage();
    await storage.put('mine.jpg', Buffer.from('mine'), 'image/jpeg');
    const url = signedUrl(storage, 'mine.jpg');
    const res = await fetch(url);
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe(OBJECT_CACHE_CONTROL);
    expect(await res.text()).toBe('mine');
    const param = /&response-cache-control=[^&]*/;
    expect(url).toMatch(param);
    const tampered = [
      url.replace(param, '&response-cache-control=no-store'),
      `${url}&response-cache-control=no-store`,
      url.replace(param, ''),
    ];
    for (const edited of tampered) {
      const r = await fetch(edited);
      expect(r.status, edited).toBe(403);
      expect(r.headers.get('cache-control')).toBeNull();
      await r.arrayBuffer();
    }
  });

  it('rejects expired, tampered and wrongly keyed URLs with 403', async () => {
    const b = backend();
    const storage = b.storage();
    await storage.put('p.jpg', Buffer.from('pixels'), 'image/jpeg');
    await storage.put('other.jpg', Buffer.from('other'), 'image/jpeg');

    const past = { start: nowSeconds() - 7200, end: nowSeconds() - 3600 };
    const expired = await fetch(signedUrl(storage, 'p.jpg', past));
    expect(expired.status).toBe(403);
    expect(await expired.text()).toContain('Request has expired');

    // A valid URL stops working once the store's clock passes its end.
    const url = signedUrl(storage, 'p.jpg', { start: nowSeconds() - 1, end: nowSeconds() + 60 });
    expect((await fetch(url)).status).toBe(200);
    skew(62_000);
    expect((await fetch(url)).status).toBe(403);
    skew(0);

    const bad = await fetch(b.tamperSignature(url));
    expect(bad.status).toBe(403);
    expect(await bad.text()).toContain('SignatureDoesNotMatch');

    // A signature is bound to its key.
    const swapped = url.replace('/p.jpg?', '/other.jpg?');
    expect(swapped).not.toBe(url);
    expect((await fetch(swapped)).status).toBe(403);

    // A wrong secret signs URLs (and requests) the store refuses.
    const wrong = b.storage({ secret: 'not-the-secret' });
    expect((await fetch(signedUrl(wrong, 'p.jpg'))).status).toBe(403);
    expect((await storageError(wrong.head('p.jpg'))).kind).toBe('unavailable');
    expect((await storageError(wrong.ping())).kind).toBe('unavailable');
  });

  it('maps persistent origin failures to unavailable', async () => {
    const b = backend();
    const storage = b.storage();
    await storage.put('f.jpg', Buffer.from('x'), 'image/jpeg');
    b.failNext(10);
    expect((await storageError(storage.get('f.jpg'))).kind).toBe('unavailable');
    b.failNext(10);
    expect((await storageError(storage.head('f.jpg'))).kind).toBe('unavailable');
    b.failNext(0);
    expect((await readAll((await storage.get('f.jpg')).body)).toString()).toBe('x');
  });

  it('maps the store refusing a request the driver built (throttled, a 400, a conflict) to unavailable, never rejected', async () => {
    const b = backend();
    const storage = b.storage();
    await storage.put('f.jpg', Buffer.from('x'), 'image/jpeg');
    for (const status of [429, 400, 409, 403]) {
      b.failNext(10, status);
      const got = await storageError(storage.get('f.jpg'));
      expect(got.kind, `get, ${status}`).toBe('unavailable');
      // The store's status stays on the error: `signet import` skips one object refused for good.
      expect(got.status, `get, ${status}`).toBe(status);
      b.failNext(10, status);
      expect(
        (await storageError(storage.put('g.jpg', Buffer.from('y'), 'image/jpeg'))).kind,
        `put, ${status}`,
      ).toBe('unavailable');
      b.failNext(10, status);
      expect((await storageError(storage.delete('f.jpg'))).kind, `delete, ${status}`).toBe('unavailable');
    }
    b.failNext(0);
    expect((await readAll((await storage.get('f.jpg')).body)).toString()).toBe('x');
  });

  it('fails in bounded time when the origin hangs', async () => {
    const b = backend();
    await b.storage().put('h.jpg', Buffer.from('x'), 'image/jpeg');
    const quick = b.storage({ timeoutMs: 300 });
    b.hang(true);
    for (const op of [() => quick.get('h.jpg'), () => quick.head('h.jpg'), () => quick.ping()]) {
      const started = Date.now();
      const err = await storageError(op());
      expect(err.kind).toBe('timeout');
      expect(Date.now() - started).toBeLessThan(2_000);
    }
    b.hang(false);
  });

  it('stops the download when the AbortSignal fires or the body is dropped', async () => {
    const b = backend();
    const storage = b.storage();
    const body = randomBytes(8 * MB);
    await storage.put('big.bin', body, 'application/octet-stream');
    const abortedBefore = b.requests.aborted;
    const controller = new AbortController();
    const obj = await storage.get('big.bin', { signal: controller.signal });
    expect(obj.size).toBe(body.length);
    const received: Buffer[] = [];
    const err = await (async () => {
      for await (const chunk of obj.body) {
        received.push(chunk as Buffer);
        if (received.length === 1) controller.abort();
      }
    })().then(
      () => null,
      (e: unknown) => e as Error,
    );
    expect(err?.name).toBe('AbortError');
    expect(Buffer.concat(received).length).toBeLessThan(body.length);
    await until(() => b.requests.aborted === abortedBefore + 1);

    // Aborting before the response arrives rejects the call itself.
    b.setLatency(500);
    const early = new AbortController();
    const pending = storage.get('big.bin', { signal: early.signal });
    setTimeout(() => early.abort(), 50);
    await expect(pending).rejects.toMatchObject({ name: 'AbortError' });
    b.setLatency(0);

    // A consumer that destroys the body also ends the transfer.
    const before = b.requests.aborted;
    const again = await storage.get('big.bin');
    again.body.once('data', () => again.body.destroy());
    await new Promise((r) => again.body.once('close', r));
    await until(() => b.requests.aborted > before);
  });

  it('downloads held by slow readers never block puts, heads or the probe (separate socket pools)', async () => {
    const s = backend().storage({ streamSockets: 2 });
    await s.put('pool/big.bin', randomBytes(8 * MB), 'application/octet-stream');
    const held = [await s.get('pool/big.bin'), await s.get('pool/big.bin')];
    const started = performance.now();
    await s.put('pool/small.bin', Buffer.from('x'), 'text/plain');
    expect(await s.head('pool/small.bin')).toMatchObject({ size: 1 });
    await s.ping();
    await s.delete('pool/small.bin');
    expect(performance.now() - started).toBeLessThan(2_000);
    for (const o of held) o.body.destroy();
  });

  it('pages through the keys under a prefix, in order', async () => {
    const storage = backend().storage();
    const keys = ['u/a/1.png', 'u/a/2.png', 'u/b/%2E%2E/3.png', 'u/o w&ner/4.png', 'u/z/5.png'];
    for (const key of keys) await storage.put(key, Buffer.from(key), 'image/png');
    await storage.put('x/not-an-upload.png', Buffer.from('x'), 'image/png');
    const seen: string[] = [];
    let marker: string | undefined;
    let pages = 0;
    do {
      const page = await storage.list('u/', { maxKeys: 2, ...(marker ? { marker } : {}) });
      pages++;
      for (const o of page.objects) {
        seen.push(o.key);
        expect(o.size).toBe(Buffer.byteLength(o.key));
        expect(Math.abs(o.lastModified.getTime() - Date.now())).toBeLessThan(60_000);
      }
      marker = page.nextMarker;
    } while (marker !== undefined);
    expect(seen).toEqual(keys);
    expect(pages).toBe(3);
    expect((await storage.list('u/none/')).objects).toEqual([]);
  });

  it('streams a put body of its declared size, and refuses one that is shorter or longer', async () => {
    const b = backend();
    const storage = b.storage();
    const body = randomBytes(3 * MB);
    const chunks = (buf: Buffer) => Readable.from([buf.subarray(0, MB), buf.subarray(MB)]);
    const { etag } = await storage.put('s.bin', chunks(body), 'application/octet-stream', body.length);
    expect((await b.stored('s.bin'))?.equals(body)).toBe(true);
    expect((await storage.head('s.bin'))?.etag).toBe(etag);

    const short = await storageError(storage.put('short.bin', chunks(body), 'image/png', body.length + 1));
    expect(short.kind).toBe('rejected');
    const long = await storageError(storage.put('long.bin', chunks(body), 'image/png', body.length - 1));
    expect(long.kind).toBe('rejected');
    // The clean-up after a failed put runs in the background: wait for it before looking.
    await until(() => b.requests.log.filter((r) => r.method === 'DELETE').length >= 2);
    expect(await b.stored('short.bin')).toBeUndefined();
    expect(await b.stored('long.bin')).toBeUndefined();
    await expect(storage.put('nosize.bin', chunks(body), 'image/png')).rejects.toMatchObject({
      kind: 'rejected',
    });
  });

  it('gives a put time in proportion to its size (a fixed deadline fails every slow large upload)', async () => {
    const b = backend();
    // 2 MB read at 2 MB/s by the store: a second, past a fixed 300 ms deadline but within
    // 300 ms + 2 MB at the slowest rate allowed (1 MB/s).
    const quick = b.storage({ timeoutMs: 300, putMinBytesPerSecond: MB });
    b.setPutBodyRate(2 * MB);
    const body = randomBytes(2 * MB);
    await quick.put('scaled.bin', body, 'application/octet-stream');
    expect((await b.stored('scaled.bin'))?.equals(body)).toBe(true);
  });

  it('cuts off a put still sending at its deadline: nothing lands, even after the store catches up', async () => {
    const b = backend();
    const quick = b.storage({ timeoutMs: 2_000, putMinBytesPerSecond: 16 * MB });
    // The store reads 256 KB/s; the deadline (2 s + 1 s for 16 MB) passes with most of it unsent.
    b.setPutBodyRate(256 * 1024);
    const err = await storageError(quick.put('slow.bin', randomBytes(16 * MB), 'application/octet-stream'));
    expect(err.kind).toBe('timeout');
    // The store now reads whatever reached it as fast as it can: an unaborted request would
    // complete here and store the object after its clean-up.
    b.setPutBodyRate(0);
    await until(() => b.requests.putsCut === 1, 10_000);
    expect(await b.stored('slow.bin')).toBeUndefined();
    // The clean-up delete went out once the request had settled.
    await until(() => b.requests.log.some((r) => r.method === 'DELETE' && r.key === 'slow.bin'));
    expect(await b.stored('slow.bin')).toBeUndefined();
  });

  it('waits for a put whose body was all sent to settle, then deletes what it stored', async () => {
    const b = backend();
    const quick = b.storage({ timeoutMs: 300 });
    b.holdPutResponses(true); // stored, but the answer never comes
    const started = Date.now();
    const err = await storageError(quick.put('held.bin', randomBytes(1024), 'application/octet-stream'));
    expect(err.kind).toBe('timeout');
    expect(Date.now() - started).toBeLessThan(5_000);
    // The object landed before the deadline; it is removed once the request gave up, never by a
    // delete racing a request in flight.
    await until(
      () => b.requests.log.some((r) => r.method === 'DELETE' && r.key === 'held.bin' && r.status !== 0),
      5_000,
    );
    expect(await b.stored('held.bin')).toBeUndefined();
    const log = b.requests.log.filter((r) => r.key === 'held.bin').map((r) => r.method);
    expect(log).toEqual(['PUT', 'DELETE']);
    expect(b.requests.putsCut).toBe(0);
    b.holdPutResponses(false);
  });
});
