import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  JPEG_5x3,
  makeAvif,
  makeGif,
  makePng,
  makeWebpExtended,
  pngDeclaring,
  SVG,
  WEBP_LOSSLESS_5x3,
  WEBP_LOSSY_5x3,
} from '../fixtures/images.js';
import { testRedisUrl } from '../support/env.js';
import { type Harness, startHarness } from '../support/harness.js';
import { errorLogsSince, expectClientAnswer, expectHealthy, rawRequest, Tally } from '../support/hostile.js';
import { postGraphql, type RawGql } from '../support/raw-graphql.js';
import { UPLOAD_MUTATION } from '../support/upload.js';

// Property-based fuzzing of uploads against the real app (PostgreSQL, Redis, the COS SDK against
// the fixture): file bytes (random, truncated, wrong magic bytes, enormous declared dimensions,
// too large) and the multipart envelope itself (missing or wrong map, several files, huge or
// broken operations, truncated bodies). Properties: never a 5xx or INTERNAL_SERVER_ERROR, and a
// refused upload leaves no object in the bucket and no row; an accepted one exactly one of each,
// under a key the server chose.
const tally = new Tally();
const MAX_BYTES = 64 * 1024;
const MAX_PIXELS = 1_000_000;
const KEY =
  /^u\/alice\/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.(png|jpg|gif|webp|avif)$/;

const VALID: Buffer[] = [
  makePng(6, 4, [255, 94, 58], [0, 122, 255]),
  JPEG_5x3,
  WEBP_LOSSY_5x3,
  WEBP_LOSSLESS_5x3,
  makeWebpExtended(),
  makeGif(7, 5),
  makeAvif(),
];

/** A small GIF whose screen and frame claim w×h (makeGif would encode every pixel). */
function gifDeclaring(width: number, height: number): Buffer {
  const gif = makeGif(2, 2);
  gif.writeUInt16LE(width, 6);
  gif.writeUInt16LE(height, 8);
  // the image descriptor follows the 13-byte header and the 12-byte palette
  gif.writeUInt16LE(width, 25 + 5);
  gif.writeUInt16LE(height, 25 + 7);
  return gif;
}

/** File contents: every way an upload's bytes can be wrong, and a few right ones. */
const fileBytes: fc.Arbitrary<{ what: string; bytes: Buffer }> = fc.oneof(
  fc.uint8Array({ maxLength: 3000 }).map((b) => ({ what: 'random bytes', bytes: Buffer.from(b) })),
  fc
    .tuple(fc.constantFrom(...VALID), fc.nat(400))
    .map(([v, n]) => ({ what: 'truncated image', bytes: v.subarray(0, n % (v.length + 1)) })),
  fc
    .tuple(
      fc.constantFrom(...VALID),
      fc.array(fc.tuple(fc.nat(15), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }),
    )
    .map(([v, edits]) => {
      const b = Buffer.from(v);
      for (const [i, x] of edits) b[i % b.length] = x;
      return { what: 'wrong magic bytes', bytes: b };
    }),
  fc
    .tuple(fc.constantFrom(...VALID), fc.array(fc.tuple(fc.nat(), fc.nat(7)), { minLength: 1, maxLength: 8 }))
    .map(([v, flips]) => {
      const b = Buffer.from(v);
      for (const [i, bit] of flips) b[i % b.length]! ^= 1 << bit;
      return { what: 'bit-flipped image', bytes: b };
    }),
  fc
    .tuple(fc.integer({ min: 0, max: 0xffffffff }), fc.integer({ min: 0, max: 0xffffffff }))
    .map(([w, hh]) => ({ what: 'declared dimensions (PNG)', bytes: pngDeclaring(w, hh) })),
  fc
    .tuple(fc.integer({ min: 1, max: 65535 }), fc.integer({ min: 1, max: 65535 }))
    .map(([w, hh]) => ({ what: 'declared dimensions (GIF)', bytes: gifDeclaring(w, hh) })),
  fc
    .tuple(fc.integer({ min: 0, max: 0xffffffff }), fc.integer({ min: 0, max: 0xffffffff }))
    .map(([w, hh]) => ({ what: 'declared dimensions (AVIF)', bytes: makeAvif({ width: w, height: hh }) })),
  fc.nat(2000).map((n) => ({
    what: 'over UPLOAD_MAX_BYTES',
    bytes: Buffer.concat([VALID[0]!, Buffer.alloc(MAX_BYTES + 1 + n - VALID[0]!.length)]),
  })),
  fc.constantFrom(
    { what: 'empty file', bytes: Buffer.alloc(0) },
    { what: 'svg', bytes: SVG },
    { what: 'html', bytes: Buffer.from('<!doctype html><script>alert(1)</script>') },
    { what: 'valid image', bytes: VALID[0]! },
    { what: 'valid image', bytes: JPEG_5x3 },
  ),
);

const BOUNDARY = 'hostile-boundary-7MA4YWxk';

interface Part {
  name: string;
  filename?: string;
  type?: string;
  body: Buffer;
}

function multipart(parts: readonly Part[], boundary = BOUNDARY): Buffer {
  const chunks: Buffer[] = [];
  for (const p of parts) {
    const disposition = `form-data; name="${p.name}"${p.filename !== undefined ? `; filename="${p.filename}"` : ''}`;
    chunks.push(
      Buffer.from(
        `--${boundary}\r\nContent-Disposition: ${disposition}\r\n${p.type ? `Content-Type: ${p.type}\r\n` : ''}\r\n`,
      ),
    );
    chunks.push(p.body, Buffer.from('\r\n'));
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return Buffer.concat(chunks);
}

const ops = (extra: Record<string, unknown> = {}) =>
  Buffer.from(JSON.stringify({ query: UPLOAD_MUTATION, variables: { file: null, ...extra } }));
const map = (m: unknown) => Buffer.from(JSON.stringify(m));
const file = (name = '0', bytes: Buffer = VALID[0]!): Part => ({
  name,
  filename: 'a.png',
  type: 'image/png',
  body: bytes,
});

/** Broken multipart envelopes (the file itself is a valid PNG in most of them). */
interface Envelope {
  what: string;
  parts: readonly Part[];
}

const envelope: fc.Arbitrary<Envelope> = fc.oneof<fc.Arbitrary<Envelope>[]>(
  fc.constant({ what: 'missing map', parts: [{ name: 'operations', body: ops() }, file()] }),
  fc.constant({
    what: 'missing operations',
    parts: [{ name: 'map', body: map({ 0: ['variables.file'] }) }, file()],
  }),
  fc.constant({
    what: 'no file part',
    parts: [
      { name: 'operations', body: ops() },
      { name: 'map', body: map({ 0: ['variables.file'] }) },
    ],
  }),
  fc
    .constantFrom(
      { 0: ['variables.nope'] },
      { 5: ['variables.file'] },
      { 0: ['variables.file.deeper'] },
      { 0: ['query'] },
      { 0: ['variables'] },
      { 0: ['__proto__.polluted'] },
      { 0: ['variables.__proto__.x'] },
      { 0: ['constructor.prototype.x'] },
      { 0: 'variables.file' },
      { 0: [] },
      { 0: [42] },
      [['variables.file']],
      'variables.file',
      null,
      {},
    )
    .map((m) => ({
      what: 'map pointing nowhere',
      parts: [{ name: 'operations', body: ops() }, { name: 'map', body: map(m) }, file()],
    })),
  fc.nat(3).map((n) => ({
    what: 'several files',
    parts: [
      { name: 'operations', body: ops() },
      {
        name: 'map',
        body: map(
          Object.fromEntries(Array.from({ length: n + 2 }, (_, i) => [String(i), ['variables.file']])),
        ),
      },
      ...Array.from({ length: n + 2 }, (_, i) => file(String(i))),
    ],
  })),
  fc.nat(200_000).map((n) => ({
    what: 'huge operations field',
    parts: [
      {
        name: 'operations',
        body: Buffer.from(
          JSON.stringify({
            query: UPLOAD_MUTATION,
            variables: { file: null, pad: 'x'.repeat(64 * 1024 + n) },
          }),
        ),
      },
      { name: 'map', body: map({ 0: ['variables.file'] }) },
      file(),
    ],
  })),
  fc.oneof(fc.string({ maxLength: 200 }), fc.json({ maxDepth: 3 })).map((s) => ({
    what: 'operations not a GraphQL request',
    parts: [
      { name: 'operations', body: Buffer.from(s) },
      { name: 'map', body: map({ 0: ['variables.file'] }) },
      file(),
    ],
  })),
  fc.oneof(fc.string({ maxLength: 100 }), fc.json({ maxDepth: 3 })).map((s) => ({
    what: 'map any JSON or not',
    parts: [{ name: 'operations', body: ops() }, { name: 'map', body: Buffer.from(s) }, file()],
  })),
  fc.constant({
    what: 'file before operations',
    parts: [
      file(),
      { name: 'operations', body: ops() },
      { name: 'map', body: map({ 0: ['variables.file'] }) },
    ],
  }),
  fc.constant({
    what: 'client-chosen key in variables',
    parts: [
      { name: 'operations', body: ops({ key: '../../etc/passwd', objectKey: 'u/bob/evil.png' }) },
      { name: 'map', body: map({ 0: ['variables.file'] }) },
      file(),
    ],
  }),
  fc.nat(30).map((n) => ({
    what: 'many fields',
    parts: [
      { name: 'operations', body: ops() },
      { name: 'map', body: map({ 0: ['variables.file'] }) },
      ...Array.from({ length: n + 8 }, (_, i) => ({ name: `f${i}`, body: Buffer.from('x') })),
      file(),
    ],
  })),
  fc.tuple(fc.string({ maxLength: 40 }), fc.string({ maxLength: 40 })).map(([fname, type]) => ({
    what: 'odd file name and type',
    parts: [
      { name: 'operations', body: ops() },
      { name: 'map', body: map({ 0: ['variables.file'] }) },
      {
        name: '0',
        filename: fname.replace(/["\r\n]/g, ''),
        type: type.replace(/[\r\n]/g, ''),
        body: VALID[0]!,
      },
    ],
  })),
);

describe('hostile uploads (fast-check)', () => {
  let h: Harness;
  let logMark: number;

  beforeAll(async () => {
    h = await startHarness({
      driver: 'cos',
      redis: testRedisUrl(),
      env: { UPLOAD_MAX_BYTES: String(MAX_BYTES), UPLOAD_MAX_PIXELS: String(MAX_PIXELS) },
    });
    logMark = h.logs.length;
  });
  afterAll(async () => {
    tally.print('uploads/fuzz');
    await h?.close();
  });

  async function rows(): Promise<number> {
    const r = await h.db.kysely
      .selectFrom('images')
      .select((eb) => eb.fn.countAll<string>().as('n'))
      .executeTakeFirstOrThrow();
    return Number(r.n);
  }

  /** Sends a multipart body and checks the invariants: coded 4xx and nothing stored, or one stored. */
  async function sendAndCheck(body: Buffer, label: string, boundary = BOUNDARY): Promise<RawGql> {
    const objects = h.fixture!.objects.size;
    const keysBefore = new Set(h.fixture!.objects.keys());
    const before = await rows();
    const r = await postGraphql(h, body, {
      'content-type': `multipart/form-data; boundary=${boundary}`,
      'apollo-require-preflight': 'true',
      authorization: `Bearer ${await h.token('alice')}`,
    });
    expectClientAnswer(r, label);
    const image = r.body?.data?.uploadImage as { key?: unknown; byteSize?: unknown } | undefined;
    if (image) {
      // Judged by what was stored, not by the fields the answer carries: a spliced byte can make
      // a valid document that selects other fields (e.g. `contentType: byteSize`, an alias).
      expect(h.fixture!.objects.size, label).toBe(objects + 1);
      expect(await rows(), label).toBe(before + 1);
      const key = [...h.fixture!.objects.keys()].find((k) => !keysBefore.has(k))!;
      expect(key, label).toMatch(KEY);
      if (image.key !== undefined) expect(image.key, label).toBe(key);
      if (image.byteSize !== undefined)
        expect(h.fixture!.objects.get(key)!.body.length, label).toBe(image.byteSize);
    } else {
      expect(r.codes.length, `${label}: ${r.text.slice(0, 200)}`).toBeGreaterThan(0);
      expect(h.fixture!.objects.size, label).toBe(objects);
      expect(await rows(), label).toBe(before);
    }
    return r;
  }

  it('file bytes: random, truncated, wrong magic, huge dimensions, too large', async () => {
    await fc.assert(
      fc.asyncProperty(
        fileBytes,
        fc.string({ maxLength: 30 }),
        fc.constantFrom('image/png', 'image/jpeg', 'application/octet-stream', 'text/html', ''),
        async ({ what, bytes }, name, type) => {
          const parts = [
            { name: 'operations', body: ops() },
            { name: 'map', body: map({ 0: ['variables.file'] }) },
            { name: '0', filename: `${name.replace(/["\r\n]/g, '')}.png`, type, body: bytes },
          ];
          const r = await sendAndCheck(multipart(parts), `${what} (${bytes.length} bytes)`);
          tally.add(`file: ${what}`);
          if (what === 'over UPLOAD_MAX_BYTES') expect(r.codes).toEqual(['PAYLOAD_TOO_LARGE']);
          if (what === 'empty file' || what === 'svg' || what === 'html')
            expect(r.body?.data?.uploadImage ?? null).toBeNull();
          if (what.startsWith('declared dimensions') && r.body?.data?.uploadImage) {
            const img = r.body.data.uploadImage as { width: number; height: number };
            expect(img.width * img.height).toBeLessThanOrEqual(MAX_PIXELS);
          }
          return true;
        },
      ),
      { numRuns: 700 },
    );
  });

  it('multipart envelopes: missing or wrong map, several files, huge or broken fields', async () => {
    await fc.assert(
      fc.asyncProperty(envelope, async ({ what, parts }) => {
        const r = await sendAndCheck(multipart(parts), what);
        tally.add(`multipart: ${what}`);
        if (what === 'several files' || what === 'huge operations field')
          expect(r.body?.data?.uploadImage ?? null).toBeNull();
        return true;
      }),
      { numRuns: 400 },
    );
  });

  it('truncated and corrupted bodies: cut anywhere, wrong boundary, garbage', async () => {
    const whole = multipart([
      { name: 'operations', body: ops() },
      { name: 'map', body: map({ 0: ['variables.file'] }) },
      file(),
    ]);
    const body = fc.oneof(
      fc
        .nat(whole.length - 1)
        .map((n) => ({ what: 'cut short', bytes: whole.subarray(0, n), boundary: BOUNDARY })),
      fc.constant({ what: 'wrong boundary', bytes: whole, boundary: 'another-boundary' }),
      fc
        .uint8Array({ maxLength: 2000 })
        .map((b) => ({ what: 'garbage', bytes: Buffer.from(b), boundary: BOUNDARY })),
      fc
        .tuple(fc.nat(whole.length - 1), fc.uint8Array({ minLength: 1, maxLength: 20 }))
        .map(([at, junk]) => ({
          what: 'junk spliced in',
          bytes: Buffer.concat([whole.subarray(0, at), Buffer.from(junk), whole.subarray(at)]),
          boundary: BOUNDARY,
        })),
    );
    await fc.assert(
      fc.asyncProperty(body, async ({ what, bytes, boundary }) => {
        await sendAndCheck(bytes, `${what} (${bytes.length} bytes)`, boundary);
        tally.add(`body: ${what}`);
        return true;
      }),
      { numRuns: 400 },
    );
  });

  it('a declared Content-Length that lies is refused or waited out, never a 5xx', async () => {
    const whole = multipart([
      { name: 'operations', body: ops() },
      { name: 'map', body: map({ 0: ['variables.file'] }) },
      file(),
    ]);
    const objects = h.fixture!.objects.size;
    const headers = {
      'content-type': `multipart/form-data; boundary=${BOUNDARY}`,
      'apollo-require-preflight': 'true',
      authorization: `Bearer ${await h.token('alice')}`,
    };
    const huge = await rawRequest(h.url, {
      method: 'POST',
      path: '/graphql',
      headers: { ...headers, 'content-length': String(10 ** 12) },
      body: whole,
    });
    expect(huge.status).toBe(413);
    const bad = await rawRequest(h.url, {
      method: 'POST',
      path: '/graphql',
      headers: { ...headers, 'content-length': '12, 12' },
      body: whole.subarray(0, 12),
    });
    expect(bad.status).toBeLessThan(500);
    tally.add('declared Content-Length', 2);
    expect(h.fixture!.objects.size).toBe(objects);
  });

  it('afterwards: healthy, no error-level log line, and every stored key is one the server chose', async () => {
    await expectHealthy(h);
    expect(errorLogsSince(h, logMark)).toEqual([]);
    for (const key of h.fixture!.objects.keys()) expect(key).toMatch(KEY);
    const rowsKeys = await h.db.kysely.selectFrom('images').select('object_key').execute();
    expect(rowsKeys.length).toBe(h.fixture!.objects.size);
    for (const r of rowsKeys) expect(h.fixture!.objects.has(r.object_key)).toBe(true);
  });
});
