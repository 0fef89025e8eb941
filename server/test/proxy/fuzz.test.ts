import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makePng } from '../fixtures/images.js';
import { testRedisUrl } from '../support/env.js';
import { type Harness, startHarness } from '../support/harness.js';
import { errorLogsSince, expectHealthy, type RawResponse, rawRequest, Tally } from '../support/hostile.js';
import { proxyLinks } from '../support/proxy.js';
import { seed } from '../support/seed.js';
import { uploadFile } from '../support/upload.js';

// Property-based fuzzing of the REST sidecars: /proxy/<anything> with any token, and the Range /
// If-None-Match / If-Range handling of /proxy/:id?mode=stream and /local-bucket/*, against the real
// app (PostgreSQL, Redis, local driver). Properties: never a 5xx, only the statuses of the error table (docs/architecture.md, "Errors")
// allows, and every 200/206 carries exactly the bytes its headers describe.
const tally = new Tally();
afterAll(() => tally.print('proxy/fuzz'));

/** Characters node's HTTP client refuses in a path are percent-encoded; everything else is sent raw. */
const rawPath = (s: string) => s.replace(/[^\u0021-\u007e]/gu, (c) => encodeURIComponent(c));
/** Header values: printable ASCII only (anything else is refused by the client before it is sent). */
const printable = (s: string) => s.replace(/[^\x20-\x7e]/g, '~');

const PROXY_STATUSES = new Set([200, 206, 302, 304, 400, 401, 403, 404, 405, 416, 431]);

/** The route a request target reaches: dot segments resolve first (`/proxy/..` is `/`). */
const landsOn = (path: string) => new URL(path, 'http://gateway.invalid').pathname;

const safeDecode = (s: string) => {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
};

/** A 200/206/304/416 answer to a ranged GET of `object` is exactly right. */
function expectRangeAnswer(r: RawResponse, object: Buffer, method: string, label: string): void {
  expect([200, 206, 304, 416], label).toContain(r.status);
  const size = object.length;
  if (r.status === 206) {
    const m = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(String(r.headers['content-range']));
    expect(m, label).not.toBeNull();
    const [start, end, total] = [Number(m![1]), Number(m![2]), Number(m![3])];
    expect(total, label).toBe(size);
    expect(start <= end && end < size, label).toBe(true);
    expect(Number(r.headers['content-length']), label).toBe(end - start + 1);
    if (method === 'GET') expect(r.body.equals(object.subarray(start, end + 1)), label).toBe(true);
  } else if (r.status === 200) {
    expect(Number(r.headers['content-length']), label).toBe(size);
    if (method === 'GET') expect(r.body.equals(object), label).toBe(true);
  } else if (r.status === 304) {
    expect(r.body.length, label).toBe(0);
  } else {
    expect(r.headers['content-range'], label).toBe(`bytes */${size}`);
  }
}

/** Range headers: well-formed, near misses, huge numbers, several ranges, garbage. */
const rangeHeader = (size: number) =>
  fc.oneof(
    fc.tuple(fc.nat(size * 2), fc.nat(size * 2)).map(([a, b]) => `bytes=${a}-${b}`),
    fc.nat(size * 2).map((a) => `bytes=${a}-`),
    fc.nat(size * 2).map((n) => `bytes=-${n}`),
    fc.constantFrom(
      'bytes=0-0',
      'bytes=-0',
      'bytes=0-',
      `bytes=${size - 1}-`,
      `bytes=${size}-`,
      'bytes=99999999999999999999-',
      'bytes=0-99999999999999999999',
      'bytes=-99999999999999999999',
      'bytes=00000000000000000000001-2',
      'bytes=1-0',
      'bytes=0-1,2-3',
      'bytes=-',
      'bytes=',
      'items=0-1',
      'BYTES = 1 - 2',
      'bytes=1.5-2',
      'bytes=-1-2',
      'bytes=0x10-',
      'bytes=\t1-2',
    ),
    fc.string({ maxLength: 40 }).map(printable),
    fc.tuple(fc.integer(), fc.integer()).map(([a, b]) => `bytes=${a}-${b}`),
  );

const ifNoneMatch = (etag: string) =>
  fc.oneof(
    fc.constantFrom(
      etag,
      `W/${etag}`,
      '*',
      `"x", ${etag}`,
      `${etag.slice(0, -1)}`,
      '""',
      'W/""',
      `${etag}, *`,
    ),
    fc.string({ maxLength: 60 }).map(printable),
    fc
      .array(
        fc.string({ maxLength: 10 }).map((s) => `"${printable(s).replace(/"/g, '')}"`),
        { maxLength: 5 },
      )
      .map((a) => a.join(', ')),
  );

/** Range, If-None-Match, If-Range and If-Modified-Since on one stream link, checked byte for byte. */
async function fuzzStreamHeaders(h: Harness, path: string, object: Buffer, what: string, numRuns: number) {
  const head = await rawRequest(h.url, { method: 'HEAD', path });
  expect(head.status).toBe(200);
  const etag = String(head.headers.etag);
  const later = new Date(Date.now() + 86_400_000).toUTCString();
  await fc.assert(
    fc.asyncProperty(
      fc.option(rangeHeader(object.length), { nil: undefined }),
      fc.option(ifNoneMatch(etag), { nil: undefined }),
      fc.option(fc.oneof(fc.constant(etag), fc.string({ maxLength: 30 }).map(printable)), { nil: undefined }),
      fc.option(fc.constantFrom('yesterday', 'Thu, 01 Jan 1970 00:00:00 GMT', later), { nil: undefined }),
      fc.constantFrom('GET', 'GET', 'HEAD'),
      async (range, inm, ifRange, ims, method) => {
        const headers: Record<string, string> = {};
        if (range !== undefined) headers.range = range;
        if (inm !== undefined) headers['if-none-match'] = inm;
        if (ifRange !== undefined) headers['if-range'] = ifRange;
        if (ims !== undefined) headers['if-modified-since'] = ims;
        const r = await rawRequest(h.url, { method, path, headers });
        tally.add(what);
        expectRangeAnswer(r, object, method, `${method} ${JSON.stringify(headers)} -> ${r.status}`);
        return true;
      },
    ),
    { numRuns },
  );
}

describe('hostile proxy and local-bucket input (fast-check)', () => {
  let h: Harness;
  let ids: string[];
  let links: { redirect: string; stream: string };
  let bigId: string;
  let big: Buffer;
  let bigStream: string;
  let bucketUrl: string;
  let logMark: number;

  beforeAll(async () => {
    // The larger object is a PNG padded after IEND, which a stripped PNG is stored without
    // (UPLOAD_STRIP_METADATA): stored as it came, the ranges land in the padding too.
    h = await startHarness({
      driver: 'local',
      redis: testRedisUrl(),
      env: { URL_TTL_SECONDS: '3600', UPLOAD_STRIP_METADATA: 'false' },
    });
    ids = await seed(h, 'alice', 4);
    await seed(h, 'bob', 2);
    links = await proxyLinks(h, ids[0]!);
    // A larger object, so ranges have room to land inside, across and past it.
    big = Buffer.concat([makePng(8, 8, [1, 2, 3], [4, 5, 6]), Buffer.alloc(70_000, 7)]);
    const up = await uploadFile(h, big, { name: 'big.png' });
    bigId = up.data!.uploadImage.id;
    bigStream = (await proxyLinks(h, bigId)).stream;
    bucketUrl = up.data!.uploadImage.signedUrl.url;
    logMark = h.logs.length;
  });
  afterAll(async () => {
    await h?.close();
  });

  const pathOf = (u: string) => {
    const url = new URL(u);
    return `${url.pathname}${url.search}`;
  };

  it('/proxy/<anything>: paths, encodings, methods: only the statuses of the error table (docs/architecture.md, "Errors") allows', async () => {
    const token = new URL(links.redirect).searchParams.get('t')!;
    const segment = fc.oneof(
      fc.string({ unit: 'grapheme', maxLength: 60 }),
      fc.constantFrom(
        '..',
        '../..',
        '%2e%2e',
        '%2e%2e%2f%2e%2e%2fetc%2fpasswd',
        '..%2F..%2Fetc',
        '%252F',
        '.%2e/',
        '%00',
        '%',
        '%E0%A4%A',
        '//',
        '\\..\\',
        `${ids[0]}/`,
        `${ids[0]}/..`,
        `${ids[0]}%2F..%2F${ids[1]}`,
        `..%2F${ids[1]}`,
        ids[0]!.toUpperCase(),
        `${ids[0]}%20`,
        `%20${ids[0]}`,
        `{${ids[0]}}`,
      ),
      fc.nat(14_000).map((n) => 'f'.repeat(n)),
      fc
        .tuple(fc.constantFrom(...ids), fc.nat(35), fc.string({ unit: 'grapheme', maxLength: 2 }))
        .map(([id, i, s]) => id.slice(0, i) + s + id.slice(i + 1)),
      fc.constantFrom(...ids),
    );
    const query = fc.oneof(
      fc.constant(`?t=${token}`),
      fc.constant(''),
      fc.string({ maxLength: 80 }).map((s) => `?${s}`),
      fc.constantFrom(
        '?mode=stream',
        '?mode=zip',
        '?mode=',
        `?t=${token}&mode=STREAM`,
        `?t=${token}&t=x`,
        `?t=${token}&mode=stream&mode=redirect`,
      ),
    );
    const method = fc.constantFrom(
      'GET',
      'GET',
      'GET',
      'HEAD',
      'POST',
      'PUT',
      'DELETE',
      'OPTIONS',
      'PATCH',
      'TRACE',
    );
    await fc.assert(
      fc.asyncProperty(segment, query, method, async (seg, q, m) => {
        const path = rawPath(`/proxy/${seg}${q}`);
        const r = await rawRequest(h.url, { method: m, path });
        tally.add('proxy path');
        const label = `${m} ${path.slice(0, 200)} -> ${r.status}`;
        expect(r.status, label).toBeLessThan(500);
        const target = new URL(path, 'http://gateway.invalid');
        if (target.pathname.startsWith('/proxy/')) {
          expect(PROXY_STATUSES.has(r.status), label).toBe(true);
          // Only the exact id with its own token is served.
          if (r.status === 302 || r.status === 200) {
            expect(target.pathname.toLowerCase(), label).toBe(`/proxy/${ids[0]}`);
            expect(target.searchParams.get('t'), label).toBe(token);
          }
        } else {
          // Dot segments led elsewhere (the app's pages): never an image, never a signed URL.
          expect(String(r.headers['content-type'] ?? ''), label).not.toMatch(/^image\//);
          expect(r.headers.location, label).toBeUndefined();
        }
        return true;
      }),
      { numRuns: 900 },
    );
  });

  it('?t= tokens: garbage, truncated, re-keyed, huge, another image’s: refused with 4xx, never served', async () => {
    const token = new URL(links.redirect).searchParams.get('t')!;
    const otherToken = new URL((await proxyLinks(h, ids[1]!)).redirect).searchParams.get('t')!;
    const [kid, exp, mac] = token.split('.') as [string, string, string];
    const tokenArb = fc.oneof(
      fc.string({ maxLength: 80 }),
      fc.string({ unit: 'grapheme', maxLength: 40 }),
      fc.nat(token.length - 1).map((n) => token.slice(0, n)),
      fc
        .tuple(fc.nat(token.length - 1), fc.constantFrom('A', 'z', '0', '-', '_', '.'))
        .map(([i, c]) => token.slice(0, i) + c + token.slice(i + 1))
        .filter((t) => t !== token),
      fc
        .stringMatching(/^[A-Za-z0-9_-]{1,16}$/)
        .filter((k) => k !== kid)
        .map((k) => `${k}.${exp}.${mac}`),
      fc
        .nat()
        .map((n) => `${kid}.${n.toString(36)}.${mac}`)
        .filter((t) => t !== token),
      fc.constantFrom(
        `${kid}.0.${mac}`,
        `${kid}.zzzzzzzzzzz.${mac}`,
        `${kid}.${exp}.${mac}A`,
        `${kid}..${mac}`,
        `${token}.${token}`,
        otherToken,
        `${token} `,
        encodeURIComponent(token).replace(/\./g, '%2E'),
      ),
      fc.nat(12_000).map((n) => `${kid}.${exp}.${'A'.repeat(n)}`),
    );
    await fc.assert(
      fc.asyncProperty(
        tokenArb,
        fc.constantFrom('', '&mode=stream'),
        fc.constantFrom('GET', 'HEAD'),
        async (t, mode, m) => {
          const path = rawPath(`/proxy/${ids[0]}?t=${t}${mode}`);
          const r = await rawRequest(h.url, { method: m, path });
          tally.add('proxy token');
          const label = `${m} ${path.slice(0, 160)} -> ${r.status}`;
          // The genuine token opens redirect mode only: the mode is part of what a token grants.
          if ((t === token || safeDecode(t) === token) && mode === '')
            expect([302], label).toContain(r.status);
          else expect([400, 401, 403, 431], label).toContain(r.status);
          return true;
        },
      ),
      { numRuns: 700 },
    );
  });

  it('Range, If-None-Match and If-Range on /proxy/:id?mode=stream: exactly the right bytes or 304/416', async () => {
    await fuzzStreamHeaders(
      h,
      pathOf(bigStream),
      big,
      'proxy stream Range/If-None-Match (local driver)',
      500,
    );
  });

  it('Range and If-None-Match on /local-bucket/*: the same rules as the proxy', async () => {
    const head = await rawRequest(h.url, { method: 'HEAD', path: pathOf(bucketUrl) });
    expect(head.status).toBe(200);
    const etag = String(head.headers.etag);
    await fc.assert(
      fc.asyncProperty(
        fc.option(rangeHeader(big.length), { nil: undefined }),
        fc.option(ifNoneMatch(etag), { nil: undefined }),
        fc.constantFrom('GET', 'GET', 'HEAD'),
        async (range, inm, method) => {
          const headers: Record<string, string> = {};
          if (range !== undefined) headers.range = range;
          if (inm !== undefined) headers['if-none-match'] = inm;
          const r = await rawRequest(h.url, { method, path: pathOf(bucketUrl), headers });
          tally.add('local-bucket Range/If-None-Match');
          expectRangeAnswer(r, big, method, `${method} ${JSON.stringify(headers)} -> ${r.status}`);
          return true;
        },
      ),
      { numRuns: 400 },
    );
  });

  it('/local-bucket/*: tampered keys, windows and signatures are 4xx, never served', async () => {
    const u = new URL(bucketUrl);
    const key = u.pathname.slice('/local-bucket/'.length);
    const [s, e, sig] = ['s', 'e', 'sig'].map((p) => u.searchParams.get(p)!) as [string, string, string];
    const keyArb = fc.oneof(
      fc.constant(key),
      fc.string({ unit: 'grapheme', maxLength: 60 }),
      fc.constantFrom(
        `${key}/..`,
        `../${key}`,
        key.replace(/\//g, '%2F'),
        `${key}.signet-meta.json`,
        '..%2F..%2Fetc%2Fpasswd',
        '%2e%2e/%2e%2e/etc/passwd',
        `${key}%00`,
        '',
        '/',
        `u/alice/../../../${key}`,
      ),
      fc.nat(10_000).map((n) => `u/${'a'.repeat(n)}`),
    );
    const num = (v: string) =>
      fc.oneof(
        fc.constant(v),
        fc.integer().map(String),
        fc.string({ maxLength: 12 }),
        fc.constantFrom('', '1e3', '-0', '0x10', `${v}.0`, ' '),
      );
    const sigArb = fc.oneof(
      fc.constant(sig),
      fc.string({ maxLength: 60 }),
      fc.nat(sig.length - 1).map((n) => sig.slice(0, n)),
      fc
        .tuple(fc.nat(sig.length - 1), fc.constantFrom('A', '_', '-'))
        .map(([i, c]) => sig.slice(0, i) + c + sig.slice(i + 1)),
      fc.constant(`${sig}${sig}`),
    );
    await fc.assert(
      fc.asyncProperty(
        keyArb,
        num(s),
        num(e),
        sigArb,
        fc.constantFrom('GET', 'HEAD', 'POST'),
        async (k, ss, ee, sg, m) => {
          const qs = new URLSearchParams({ s: ss, e: ee, sig: sg }).toString();
          const path = rawPath(`/local-bucket/${k}?${qs}`);
          const r = await rawRequest(h.url, { method: m, path });
          tally.add('local-bucket key/signature');
          // The key is the decoded path (like COS: `u%2Falice%2Fx` is `u/alice/x`); the window and
          // signature only in the exact form they were signed.
          const sameKey = k.split('/').map(safeDecode).join('/') === key;
          const untouched = sameKey && ss === s && ee === e && sg === sig;
          const label = `${m} ${path.slice(0, 160)} -> ${r.status}`;
          if (untouched && m !== 'POST') expect(r.status, label).toBe(200);
          else if (landsOn(path).startsWith('/local-bucket/'))
            expect([400, 403, 404, 405, 431], label).toContain(r.status);
          else {
            // `..` resolved the target out of the bucket: whatever answers, it is not the object.
            expect(r.status, label).toBeLessThan(500);
            expect(r.body.equals(big), label).toBe(false);
            expect(String(r.headers['content-type'] ?? ''), label).not.toMatch(/^image\//);
          }
          return true;
        },
      ),
      { numRuns: 700 },
    );
  });

  it('afterwards: healthy, no error-level log line, and the objects are intact', async () => {
    await expectHealthy(h);
    expect(errorLogsSince(h, logMark)).toEqual([]);
    const r = await rawRequest(h.url, { path: pathOf(bigStream) });
    expect(r.status).toBe(200);
    expect(r.body.equals(big)).toBe(true);
  });
});

describe('hostile Range headers on /proxy/:id?mode=stream with the cos driver (fast-check)', () => {
  let h: Harness;

  beforeAll(async () => {
    h = await startHarness({ driver: 'cos', redis: testRedisUrl(), env: { UPLOAD_STRIP_METADATA: 'false' } });
    await seed(h, 'alice', 1);
  });
  afterAll(async () => {
    await h?.close();
  });

  it('the origin’s ranges (COS SDK against the fixture) pass through exactly, or 304/416', async () => {
    const big = Buffer.concat([makePng(8, 8, [9, 8, 7], [6, 5, 4]), Buffer.alloc(50_000, 3)]);
    const up = await uploadFile(h, big, { name: 'big.png' });
    const stream = new URL((await proxyLinks(h, up.data!.uploadImage.id)).stream);
    const objects = h.fixture!.objects.size;
    await fuzzStreamHeaders(
      h,
      `${stream.pathname}${stream.search}`,
      big,
      'proxy stream Range/If-None-Match (cos driver)',
      300,
    );
    expect(h.fixture!.objects.size).toBe(objects);
    expect(h.fixture!.requests.log.every((e) => e.status < 500)).toBe(true);
    await expectHealthy(h);
  });
});
