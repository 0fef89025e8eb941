import { randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createCosStorage } from '../../src/storage/cos.js';
import {
  OBJECT_CACHE_CONTROL,
  type SignWindow,
  type Storage,
  StorageError,
} from '../../src/storage/storage.js';
import { type CosFixture, startCosFixture } from '../fixtures/cos-fixture.js';
import { asQuery, encodeKeyForUrl, referenceSign } from '../fixtures/cos-reference-signer.js';

const secretId = 'AKIDsignetFixture000000000000000';
const secretKey = 'signetFixtureSecretKey0000000000';
const bucket = 'signet-1250000000';
const region = 'ap-guangzhou';

let fixture: CosFixture;
let storage: Storage;
/** Added to the fixture's clock, to move "now" past a URL's window. */
let skewMs = 0;

const nowSeconds = () => Math.floor(Date.now() / 1000);
const validWindow = (): SignWindow => ({ start: nowSeconds() - 1, end: nowSeconds() + 600 });

function driver(extra: Partial<Parameters<typeof createCosStorage>[0]> = {}): Storage {
  return createCosStorage({
    secretId,
    secretKey,
    bucket,
    region,
    domain: fixture.host,
    protocol: 'http:',
    timeoutMs: 3_000,
    ...extra,
  });
}

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

async function until(check: () => boolean, ms = 2_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

beforeAll(async () => {
  fixture = await startCosFixture({ secretId, secretKey, now: () => Date.now() + skewMs });
  storage = driver();
});

beforeEach(() => {
  fixture.reset();
  skewMs = 0;
});

afterAll(async () => {
  await fixture?.close();
});

describe('cos fixture', () => {
  it('answers 403 to a request without a signature', async () => {
    fixture.objects.set('a.txt', {
      body: Buffer.from('secret'),
      contentType: 'text/plain',
      etag: '"x"',
      lastModified: new Date(),
    });
    const res = await fetch(`${fixture.url}/a.txt`);
    expect(res.status).toBe(403);
    expect(await res.text()).toContain('<Code>AccessDenied</Code>');
    const garbage = await fetch(`${fixture.url}/a.txt`, {
      headers: { authorization: 'q-sign-algorithm=sha1' },
    });
    expect(garbage.status).toBe(403);
    expect(fixture.requests.log.map((r) => r.status)).toEqual([403, 403]);
  });

  it('checks signatures made independently of the driver, and serves ranges and 304s', async () => {
    const body = Buffer.from('0123456789');
    fixture.objects.set('dir/x y.bin', {
      body,
      contentType: 'application/x-test',
      etag: '"e1"',
      lastModified: new Date(),
    });
    // Signed by the test's own implementation of the COS document, not the driver's signer.
    const w = validWindow();
    const signed = referenceSign({
      secretId,
      secretKey,
      method: 'GET',
      path: '/dir/x y.bin',
      headers: { host: fixture.host },
      keyTime: `${w.start};${w.end}`,
    });
    const url = `${fixture.url}${encodeKeyForUrl('dir/x y.bin')}?${asQuery(signed)}`;
    expect(url).toContain('/dir/x%20y.bin?q-sign-algorithm=sha1&');

    const full = await fetch(url);
    expect(full.status).toBe(200);
    expect(full.headers.get('accept-ranges')).toBe('bytes');
    expect(full.headers.get('etag')).toBe('"e1"');
    expect(await full.text()).toBe('0123456789');

    const cases: [string, number, string, string | null][] = [
      ['bytes=2-4', 206, '234', 'bytes 2-4/10'],
      ['bytes=7-', 206, '789', 'bytes 7-9/10'],
      ['bytes=-2', 206, '89', 'bytes 8-9/10'],
      ['bytes=8-100', 206, '89', 'bytes 8-9/10'],
    ];
    for (const [range, status, text, contentRange] of cases) {
      const res = await fetch(url, { headers: { range } });
      expect(res.status).toBe(status);
      expect(res.headers.get('content-range')).toBe(contentRange);
      expect(await res.text()).toBe(text);
    }
    const unsatisfiable = await fetch(url, { headers: { range: 'bytes=10-' } });
    expect(unsatisfiable.status).toBe(416);
    expect(unsatisfiable.headers.get('content-range')).toBe('bytes */10');
    await unsatisfiable.arrayBuffer();

    const notModified = await fetch(url, { headers: { 'if-none-match': '"e1"' } });
    expect(notModified.status).toBe(304);
    expect(fixture.signatureChecks).toBe(7);
    expect(fixture.signatureFailures).toBe(0);

    // The same signature on another object, and with one hex digit changed, is refused.
    const otherKey = url.replace('/dir/x%20y.bin?', '/dir/x%20z.bin?');
    const otherSig = url.replace(
      /q-signature=([0-9a-f])/,
      (_m, c: string) => `q-signature=${c === 'a' ? 'b' : 'a'}`,
    );
    for (const tampered of [otherKey, otherSig]) {
      expect(tampered).not.toBe(url);
      const res = await fetch(tampered);
      expect(res.status).toBe(403);
      expect(await res.text()).toContain('<Code>SignatureDoesNotMatch</Code>');
    }
    expect(fixture.signatureFailures).toBe(2);
  });
});

describe('cos storage driver against the fixture', () => {
  it('puts, heads, gets (full and ranged) and deletes', async () => {
    const key = 'users/u1/2026/photo (1) é+ü.jpg';
    const body = randomBytes(200_000);
    const { etag } = await storage.put(key, body, 'image/jpeg');
    expect(etag).toMatch(/^"[0-9a-f]{32}"$/);
    // Path-style: the fixture sees the raw key as the path.
    expect(fixture.objects.get(key)?.body.equals(body)).toBe(true);
    expect(fixture.objects.get(key)?.contentType).toBe('image/jpeg');
    expect(fixture.requests.log.at(-1)).toEqual({ method: 'PUT', key, status: 200 });

    const info = await storage.head(key);
    expect(info).toMatchObject({ size: body.length, etag, contentType: 'image/jpeg' });
    expect(info?.lastModified).toBeInstanceOf(Date);

    const full = await storage.get(key);
    expect(full).toMatchObject({ size: body.length, etag, contentType: 'image/jpeg', range: undefined });
    expect((await readAll(full.body)).equals(body)).toBe(true);

    const part = await storage.get(key, { range: { start: 1000, end: 70_999 } });
    expect(part.range).toEqual({ start: 1000, end: 70_999 });
    expect(part.size).toBe(body.length);
    expect((await readAll(part.body)).equals(body.subarray(1000, 71_000))).toBe(true);

    const tail = await storage.get(key, { range: { start: 199_990, end: 1_000_000 } });
    expect(tail.range).toEqual({ start: 199_990, end: 199_999 });
    expect((await readAll(tail.body)).equals(body.subarray(199_990))).toBe(true);

    await storage.delete(key);
    expect(await storage.head(key)).toBeNull();
    await storage.delete(key); // idempotent
    await storage.ping();
    expect(fixture.signatureFailures).toBe(0);
    expect(fixture.signatureChecks).toBe(fixture.requests.total);
  });

  it('reports a missing object as null / not_found and a bad range as rejected', async () => {
    expect(await storage.head('nope.jpg')).toBeNull();
    expect((await storageError(storage.get('nope.jpg'))).kind).toBe('not_found');
    await storage.put('small.txt', Buffer.from('hello'), 'text/plain');
    const err = await storageError(storage.get('small.txt', { range: { start: 5, end: 9 } }));
    expect(err.kind).toBe('rejected');
    expect(err.message).toMatch(/range not satisfiable/);
  });

  it('signs URLs that fetch returns byte for byte', async () => {
    const objects = new Map([
      ['a.jpg', randomBytes(1234)],
      ['with space/and+plus (2).png', randomBytes(50_000)],
      ['unicode/相册/фото €.webp', randomBytes(99)],
    ]);
    for (const [key, body] of objects) await storage.put(key, body, 'image/webp');
    const keys = [...objects.keys()];
    const w = validWindow();
    const sigs = storage.signMany(keys, w);
    for (const [i, key] of keys.entries()) {
      const url = storage.urlFor(key, { ...w, sig: sigs[i]! });
      expect(url.startsWith(`http://${fixture.host}/`)).toBe(true);
      const res = await fetch(url);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe('image/webp');
      expect(Buffer.from(await res.arrayBuffer()).equals(objects.get(key)!)).toBe(true);
    }
  });

  it('signed URLs answer with a year-long private immutable Cache-Control that cannot be edited', async () => {
    const yearLong = 'private, max-age=31536000, immutable';
    expect(OBJECT_CACHE_CONTROL).toBe(yearLong);
    // Uploaded by the gateway: the object's metadata carries the header too.
    const { etag } = await storage.put('mine.jpg', Buffer.from('mine'), 'image/jpeg');
    expect(fixture.objects.get('mine.jpg')?.cacheControl).toBe(yearLong);
    // Put there by someone else, with no metadata: the signed param alone gives it the header.
    fixture.objects.set('theirs.jpg', {
      body: Buffer.from('theirs'),
      contentType: 'image/jpeg',
      etag: '"t"',
      lastModified: new Date(),
    });
    for (const [key, text] of [
      ['mine.jpg', 'mine'],
      ['theirs.jpg', 'theirs'],
    ] as const) {
      const res = await fetch(signedUrl(storage, key));
      expect(res.status).toBe(200);
      expect(res.headers.get('cache-control')).toBe(yearLong);
      expect(await res.text()).toBe(text);
    }
    const url = signedUrl(storage, 'theirs.jpg');
    const revalidated = await fetch(url, { headers: { 'if-none-match': '"t"' } });
    expect([revalidated.status, revalidated.headers.get('cache-control')]).toEqual([304, yearLong]);

    // A URL signed without the param (as other tools may) still gets the stored metadata.
    const w = validWindow();
    const plain = referenceSign({
      secretId,
      secretKey,
      method: 'GET',
      path: '/mine.jpg',
      headers: { host: fixture.host },
      keyTime: `${w.start};${w.end}`,
    });
    const direct = await fetch(`${fixture.url}/mine.jpg?${asQuery(plain)}`);
    expect([direct.status, direct.headers.get('cache-control'), direct.headers.get('etag')]).toEqual([
      200,
      yearLong,
      etag,
    ]);
    await direct.arrayBuffer();

    // The param is signed: changed, duplicated with another value, or removed, the URL is refused.
    const param = /&response-cache-control=[^&]*/;
    expect(url).toMatch(param);
    const tampered = [
      url.replace(param, '&response-cache-control=no-store'),
      url.replace(
        param,
        `&response-cache-control=${encodeURIComponent('private, max-age=31536001, immutable')}`,
      ),
      `${url}&response-cache-control=no-store`,
      url.replace(param, ''),
      url.replace(param, '').replace('q-url-param-list=response-cache-control', 'q-url-param-list='),
    ];
    const failuresBefore = fixture.signatureFailures;
    for (const edited of tampered) {
      expect(edited).not.toBe(url);
      const res = await fetch(edited);
      expect(res.status, edited).toBe(403);
      expect(res.headers.get('cache-control')).toBeNull();
      await res.arrayBuffer();
    }
    expect(fixture.signatureFailures - failuresBefore).toBe(tampered.length);
  });

  it('rejects expired, tampered and wrongly keyed URLs with 403', async () => {
    await storage.put('p.jpg', Buffer.from('pixels'), 'image/jpeg');
    await storage.put('other.jpg', Buffer.from('other'), 'image/jpeg');

    // A window that has already passed.
    const past = { start: nowSeconds() - 7200, end: nowSeconds() - 3600 };
    const expired = await fetch(signedUrl(storage, 'p.jpg', past));
    expect(expired.status).toBe(403);
    expect(await expired.text()).toContain('Request has expired');

    // A valid URL stops working once the (fixture's) clock passes its end.
    const url = signedUrl(storage, 'p.jpg', { start: nowSeconds() - 1, end: nowSeconds() + 60 });
    expect((await fetch(url)).status).toBe(200);
    skewMs = 61_000;
    expect((await fetch(url)).status).toBe(403);
    skewMs = 0;

    const tampered = url.replace(/q-signature=([0-9a-f]+)/, (_, sig: string) => {
      const last = sig.at(-1) === '0' ? '1' : '0';
      return `q-signature=${sig.slice(0, -1)}${last}`;
    });
    const bad = await fetch(tampered);
    expect(bad.status).toBe(403);
    expect(await bad.text()).toContain('SignatureDoesNotMatch');

    // A signature is bound to its key.
    const swapped = url.replace('/p.jpg?', '/other.jpg?');
    expect((await fetch(swapped)).status).toBe(403);

    // A wrong secret signs URLs (and requests) the origin refuses.
    const wrong = driver({ secretKey: 'not-the-secret' });
    expect((await fetch(signedUrl(wrong, 'p.jpg'))).status).toBe(403);
    expect((await storageError(wrong.head('p.jpg'))).kind).toBe('unavailable');
    expect((await storageError(wrong.ping())).kind).toBe('unavailable');
  });

  it('maps origin failures to unavailable', async () => {
    await storage.put('f.jpg', Buffer.from('x'), 'image/jpeg');
    fixture.failNext(1);
    expect((await storageError(storage.get('f.jpg'))).kind).toBe('unavailable');
    expect((await readAll((await storage.get('f.jpg')).body)).toString()).toBe('x');

    // Non-streaming calls are retried by the SDK (up to 4 attempts), so one failure is absorbed...
    fixture.failNext(1, 503);
    expect(await storage.head('f.jpg')).not.toBeNull();
    // ...and a persistent one is not.
    fixture.failNext(10, 503);
    expect((await storageError(storage.head('f.jpg'))).kind).toBe('unavailable');
  });

  it('fails in bounded time when the origin hangs', async () => {
    await storage.put('h.jpg', Buffer.from('x'), 'image/jpeg');
    const quick = driver({ timeoutMs: 300 });
    fixture.hang(true);
    for (const op of [() => quick.get('h.jpg'), () => quick.head('h.jpg'), () => quick.ping()]) {
      const started = Date.now();
      const err = await storageError(op());
      expect(err.kind).toBe('timeout');
      expect(Date.now() - started).toBeLessThan(2_000);
    }
    fixture.hang(false);
  });

  it('stops the download when the AbortSignal fires', async () => {
    const body = randomBytes(8 * 1024 * 1024);
    await storage.put('big.bin', body, 'application/octet-stream');
    const controller = new AbortController();
    const obj = await storage.get('big.bin', { signal: controller.signal });
    expect(obj.size).toBe(body.length);
    const received: Buffer[] = [];
    const failure = (async () => {
      for await (const chunk of obj.body) {
        received.push(chunk as Buffer);
        if (received.length === 1) controller.abort();
      }
    })().then(
      () => null,
      (e: unknown) => e as Error,
    );
    const err = await failure;
    expect(err?.name).toBe('AbortError');
    expect(Buffer.concat(received).length).toBeLessThan(body.length);
    await until(() => fixture.requests.aborted === 1);

    // Aborting before the response arrives rejects the call itself.
    fixture.setLatency(500);
    const early = new AbortController();
    const pending = storage.get('big.bin', { signal: early.signal });
    setTimeout(() => early.abort(), 50);
    await expect(pending).rejects.toMatchObject({ name: 'AbortError' });
    fixture.setLatency(0);

    // A consumer that destroys the body also ends the transfer.
    const again = await storage.get('big.bin');
    again.body.once('data', () => again.body.destroy());
    await new Promise((r) => again.body.once('close', r));
    await until(() => fixture.requests.aborted === 2);
  });

  it('downloads held by slow readers never block puts, heads or the probe (separate socket pools)', async () => {
    const s = driver({ streamSockets: 2 });
    const big = randomBytes(8 * 1024 * 1024);
    await s.put('pool/big.bin', big, 'application/octet-stream');
    // Two downloads whose readers never read: both download sockets stay busy.
    const held = [await s.get('pool/big.bin'), await s.get('pool/big.bin')];
    const started = performance.now();
    await s.put('pool/small.bin', Buffer.from('x'), 'text/plain');
    expect(await s.head('pool/small.bin')).toMatchObject({ size: 1 });
    await s.ping();
    await s.delete('pool/small.bin');
    // With one shared pool of two sockets these would wait for the downloads (here: forever).
    expect(performance.now() - started).toBeLessThan(2_000);
    for (const o of held) o.body.destroy();
  });
});

describe('cos storage driver with a security token', () => {
  let tokenFixture: CosFixture;

  beforeAll(async () => {
    tokenFixture = await startCosFixture({ secretId, secretKey, securityToken: 'tmp-token/+=' });
  });

  afterAll(async () => {
    await tokenFixture?.close();
  });

  it('sends the token with requests and URLs', async () => {
    const withToken = createCosStorage({
      secretId,
      secretKey,
      securityToken: 'tmp-token/+=',
      bucket,
      region,
      domain: tokenFixture.host,
      protocol: 'http:',
    });
    await withToken.put('t.jpg', Buffer.from('token'), 'image/jpeg');
    expect((await readAll((await withToken.get('t.jpg')).body)).toString()).toBe('token');

    const url = signedUrl(withToken, 't.jpg');
    expect(url).toContain('&x-cos-security-token=tmp-token%2F%2B%3D');
    const res = await fetch(url);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('token');

    const stripped = url.replace(/&x-cos-security-token=[^&]*/, '');
    expect((await fetch(stripped)).status).toBe(403);

    const withoutToken = createCosStorage({
      secretId,
      secretKey,
      bucket,
      region,
      domain: tokenFixture.host,
      protocol: 'http:',
    });
    expect((await storageError(withoutToken.head('t.jpg'))).kind).toBe('unavailable');
  });
});

describe('cos driver: list', () => {
  it('pages through the keys under a prefix, in order, through the real SDK', async () => {
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
    expect(fixture.signatureFailures).toBe(0);
  });
});

describe('cos driver: put', () => {
  const MB = 1024 * 1024;

  it('streams a body of its declared size, and refuses one that is shorter or longer', async () => {
    const body = randomBytes(3 * MB);
    const { Readable } = await import('node:stream');
    const chunks = (b: Buffer) => Readable.from([b.subarray(0, MB), b.subarray(MB)]);
    const { etag } = await storage.put('s.bin', chunks(body), 'application/octet-stream', body.length);
    expect(fixture.objects.get('s.bin')?.body.equals(body)).toBe(true);
    expect(etag).toBe(fixture.objects.get('s.bin')!.etag);

    const short = await storageError(storage.put('short.bin', chunks(body), 'image/png', body.length + 1));
    expect(short.kind).toBe('rejected');
    const long = await storageError(storage.put('long.bin', chunks(body), 'image/png', body.length - 1));
    expect(long.kind).toBe('rejected');
    expect(fixture.objects.has('short.bin') || fixture.objects.has('long.bin')).toBe(false);
    await expect(storage.put('nosize.bin', chunks(body), 'image/png')).rejects.toMatchObject({
      kind: 'rejected',
    });
  });

  it('gives a put time in proportion to its size (a fixed 10 s failed every slow large upload)', async () => {
    // 2 MB read at 2 MB/s by the store: a second, past a fixed 300 ms deadline but within
    // 300 ms + 2 MB at the slowest rate allowed (1 MB/s).
    const quick = driver({ timeoutMs: 300, putMinBytesPerSecond: MB });
    fixture.setPutBodyRate(2 * MB);
    const body = randomBytes(2 * MB);
    await quick.put('scaled.bin', body, 'application/octet-stream');
    expect(fixture.objects.get('scaled.bin')?.body.equals(body)).toBe(true);
  });

  it('cuts off a put still sending at its deadline: nothing lands, even after the store catches up', async () => {
    const quick = driver({ timeoutMs: 2_000, putMinBytesPerSecond: 16 * MB });
    // The store reads 256 KB/s; the deadline (2 s + 1 s for 16 MB) passes with most of it unsent.
    fixture.setPutBodyRate(256 * 1024);
    const err = await storageError(quick.put('slow.bin', randomBytes(16 * MB), 'application/octet-stream'));
    expect(err.kind).toBe('timeout');
    // The store now reads whatever reached it as fast as it can: an unaborted request would
    // complete here and store the object after its clean-up.
    fixture.setPutBodyRate(0);
    await until(() => fixture.requests.putsCut === 1, 10_000);
    expect(fixture.objects.has('slow.bin')).toBe(false);
    // The clean-up delete went out once the request had settled.
    await until(() => fixture.requests.log.some((r) => r.method === 'DELETE' && r.key === 'slow.bin'));
    expect(fixture.objects.has('slow.bin')).toBe(false);
  });

  it('waits for a put whose body was all sent to settle, then deletes what it stored', async () => {
    const quick = driver({ timeoutMs: 300 });
    fixture.holdPutResponses(true); // stored, but the answer never comes
    const started = Date.now();
    const err = await storageError(quick.put('held.bin', randomBytes(1024), 'application/octet-stream'));
    expect(err.kind).toBe('timeout');
    expect(Date.now() - started).toBeLessThan(5_000);
    // The object landed before the deadline; it is removed once the request gave up (the SDK's
    // own idle timeout ends it), never by a delete racing a request in flight.
    await until(() => !fixture.objects.has('held.bin'), 5_000);
    const log = fixture.requests.log.filter((r) => r.key === 'held.bin').map((r) => r.method);
    expect(log).toEqual(['PUT', 'DELETE']);
    expect(fixture.requests.putsCut).toBe(0);
  });
});
