import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import sharp, { type Sharp } from 'sharp';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { NewImage } from '../../src/db/images-repo.js';
import { bytesInWords } from '../../src/lib/byte-size.js';
import { urlKeys } from '../../src/urls/redis-store.js';
import {
  gifApplication,
  gifExtension,
  gifWithBlocks,
  gifWithLateFrame,
  JPEG_5x3,
  makeAvif,
  makeGif,
  makePng,
  makeWebpExtended,
  phonePhoto,
  pngDeclaring,
  SVG,
  WEBP_LOSSLESS_5x3,
  WEBP_LOSSY_5x3,
} from '../fixtures/images.js';
import { testRedisUrl } from '../support/env.js';
import { type Harness, startHarness } from '../support/harness.js';
import { postGraphql, type RawGql } from '../support/raw-graphql.js';
import { type MultipartResult, UPLOAD_MUTATION, uploadFile } from '../support/upload.js';

const MAX_BYTES = 4096;
const PNG = makePng(6, 4, [255, 94, 58], [0, 122, 255]);

/**
 * A 16×12 image encoded by `encode` with what a phone's photo carries: EXIF with the camera and
 * GPS (orientation 6: shown 12×16), and XMP with GPS again. Small enough for MAX_BYTES.
 */
async function gpsImage(encode: (img: Sharp) => Sharp): Promise<Buffer> {
  const raw = Buffer.alloc(16 * 12 * 3);
  for (let i = 0; i < raw.length; i++) raw[i] = (i * 37) % 251;
  const img = sharp(raw, { raw: { width: 16, height: 12, channels: 3 } })
    .withMetadata({ orientation: 6 })
    .withExif({
      IFD0: { Make: 'SignetCam', Model: 'X1' },
      IFD3: { GPSLatitudeRef: 'N', GPSLatitude: '48/1 51/1 2400/100' },
    })
    .withXmp(
      '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">' +
        '<rdf:Description xmlns:exif="http://ns.adobe.com/exif/1.0/" exif:GPSLatitude="48,51.4N"/></rdf:RDF></x:xmpmeta>',
    );
  const bytes = await encode(img).toBuffer();
  const meta = await sharp(bytes).metadata();
  expect(meta.orientation).toBe(6);
  // The camera in the EXIF as text; the XMP's GPS (a PNG's is a compressed zTXt) read back.
  expect(bytes.includes('SignetCam')).toBe(true);
  expect(meta.xmp?.toString()).toContain('GPSLatitude');
  expect(bytes.length).toBeLessThan(MAX_BYTES);
  return bytes;
}

const GPS_FORMATS = [
  ['PNG', 'png', (img: Sharp) => img.png()],
  ['WebP', 'webp', (img: Sharp) => img.webp()],
] as const;

// Uploads against the real things: PostgreSQL, Redis, and the COS SDK talking to the fixture.
describe('uploadImage and deleteImage (PostgreSQL + Redis + cos driver)', () => {
  let h: Harness;

  beforeAll(async () => {
    h = await startHarness({
      driver: 'cos',
      redis: testRedisUrl(),
      env: { UPLOAD_MAX_BYTES: String(MAX_BYTES), UPLOAD_MAX_PIXELS: '1000000' },
    });
  });
  afterAll(async () => {
    await h?.close();
  });
  afterEach(() => {
    h.fixture!.failNext(0);
  });

  /** The row says the stored size and the bucket's ETag, and the image's URL serves those bytes. */
  async function expectStoredAs(
    img: { id: string; key: string; signedUrl: { url: string } },
    stored: Buffer,
  ) {
    const row = await h.db.kysely
      .selectFrom('images')
      .select(['byte_size', 'etag'])
      .where('id', '=', img.id)
      .executeTakeFirstOrThrow();
    expect(Number(row.byte_size)).toBe(stored.length);
    expect(row.etag).toBe(h.fixture!.objects.get(img.key)!.etag);
    const got = Buffer.from(await (await fetch(img.signedUrl.url)).arrayBuffer());
    expect(got.equals(stored)).toBe(true);
  }

  async function allRows() {
    return h.db.kysely.selectFrom('images').selectAll().orderBy('created_at').execute();
  }

  /** Runs `act` and checks it left no object in the bucket and no row behind. */
  async function leavesNothing(act: () => Promise<MultipartResult>): Promise<MultipartResult> {
    const objects = [...h.fixture!.objects.keys()].sort();
    const rows = (await allRows()).length;
    const res = await act();
    expect(res.data?.uploadImage ?? null).toBeNull();
    expect([...h.fixture!.objects.keys()].sort()).toEqual(objects);
    expect((await allRows()).length).toBe(rows);
    return res;
  }

  const codeOf = (res: MultipartResult) => res.errors?.[0]?.extensions?.code;

  describe('each accepted format', () => {
    it.each([
      ['PNG', PNG, 'image/png', 'png', 6, 4],
      ['JPEG', JPEG_5x3, 'image/jpeg', 'jpg', 5, 3],
      ['GIF', makeGif(7, 5), 'image/gif', 'gif', 7, 5],
      ['WebP (lossy)', WEBP_LOSSY_5x3, 'image/webp', 'webp', 5, 3],
      ['WebP (lossless)', WEBP_LOSSLESS_5x3, 'image/webp', 'webp', 5, 3],
      ['WebP (extended)', makeWebpExtended(), 'image/webp', 'webp', 5, 3],
      ['AVIF', makeAvif(), 'image/avif', 'avif', 8, 6],
    ] as const)('%s: object, row and a working signed URL', async (_name, bytes, type, ext, w, hgt) => {
      const res = await uploadFile(h, bytes, { name: `picture.${ext}` });
      expect(res.errors).toBeUndefined();
      const img = res.data!.uploadImage;
      expect(img).toMatchObject({ contentType: type, byteSize: bytes.length, width: w, height: hgt });
      expect(img.key).toBe(`u/alice/${img.id}.${ext}`);

      const obj = h.fixture!.objects.get(img.key);
      expect(obj?.body.equals(bytes)).toBe(true);
      expect(obj?.contentType).toBe(type);

      const row = await h.db.kysely
        .selectFrom('images')
        .selectAll()
        .where('id', '=', img.id)
        .executeTakeFirstOrThrow();
      expect(row).toMatchObject({
        owner_id: 'alice',
        object_key: img.key,
        content_type: type,
        width: w,
        height: hgt,
        etag: obj!.etag,
        deleted_at: null,
      });
      expect(Number(row.byte_size)).toBe(bytes.length);

      const got = await fetch(img.signedUrl.url);
      expect(got.status).toBe(200);
      expect(got.headers.get('content-type')).toBe(type);
      expect(Buffer.from(await got.arrayBuffer()).equals(bytes)).toBe(true);
      expect(Date.parse(img.signedUrl.expiresAt)).toBeGreaterThan(Date.now() + 60_000);

      // It is in the viewer's gallery straight away.
      const page = await h.gql<{ images: { edges: { node: { id: string } }[] } }>(
        '{ images(first: 1) { edges { node { id } } } }',
      );
      expect(page.data!.images.edges[0]!.node.id).toBe(img.id);
    });
  });

  it("a phone's JPEG is stored without its GPS, camera and XMP (UPLOAD_STRIP_METADATA, the default), upright and lossless", async () => {
    const photo = await phonePhoto({ orientation: 6 });
    const res = await uploadFile(h, photo, { name: 'IMG_0001.jpg' });
    expect(res.errors).toBeUndefined();
    const img = res.data!.uploadImage;
    const stored = h.fixture!.objects.get(img.key)!.body;
    for (const text of ['SignetCam', 'GPS']) expect(stored.includes(text), text).toBe(false);
    // As displayed: orientation 6 turns the 64×48 photo a quarter, and the stored file still says so.
    expect(img).toMatchObject({ byteSize: stored.length, width: 48, height: 64 });
    const meta = await sharp(stored).metadata();
    expect(meta.orientation).toBe(6);
    expect(meta.xmp).toBeUndefined();
    expect((await sharp(stored).raw().toBuffer()).equals(await sharp(photo).raw().toBuffer())).toBe(true);
    await expectStoredAs(img, stored);
  });

  it.each(GPS_FORMATS)(
    'a %s with GPS, camera and XMP is stored without them (UPLOAD_STRIP_METADATA, the default), upright and lossless',
    async (_name, ext, encode) => {
      const bytes = await gpsImage(encode);
      const res = await uploadFile(h, bytes, { name: `IMG_0001.${ext}` });
      expect(res.errors).toBeUndefined();
      const img = res.data!.uploadImage;
      const stored = h.fixture!.objects.get(img.key)!.body;
      for (const text of ['SignetCam', 'GPS', 'xmpmeta']) expect(stored.includes(text), text).toBe(false);
      expect(stored.length).toBeLessThan(bytes.length);
      // As displayed: orientation 6 turns the 16×12 image a quarter, and the stored file still says so.
      expect(img).toMatchObject({ byteSize: stored.length, width: 12, height: 16 });
      const meta = await sharp(stored).metadata();
      expect(meta.orientation).toBe(6);
      expect(meta.xmp).toBeUndefined();
      // The EXIF left is the orientation alone (a TIFF header and one entry): no camera, no GPS IFD.
      expect(meta.exif!.length).toBeLessThanOrEqual(32);
      expect((await sharp(stored).raw().toBuffer()).equals(await sharp(bytes).raw().toBuffer())).toBe(true);
      await expectStoredAs(img, stored);
    },
  );

  it('a GIF is stored without its comments and XMP (UPLOAD_STRIP_METADATA, the default), its frames byte for byte', async () => {
    const plain = makeGif(7, 5);
    const bytes = gifWithBlocks(
      plain,
      gifExtension(0xfe, Buffer.from('made at home by Signet Smith', 'latin1')),
      gifApplication('XMP DataXMP', Buffer.from('<x:xmpmeta exif:GPSLatitude="48,51.4N"/>', 'latin1')),
    );
    const res = await uploadFile(h, bytes, { name: 'loop.gif' });
    expect(res.errors).toBeUndefined();
    const img = res.data!.uploadImage;
    const stored = h.fixture!.objects.get(img.key)!.body;
    expect(stored.equals(plain)).toBe(true);
    expect(img).toMatchObject({ byteSize: plain.length, width: 7, height: 5 });
    await expectStoredAs(img, stored);
  });

  it('an AVIF with GPS, camera and XMP is stored with those items blanked in place (UPLOAD_STRIP_METADATA), its image data byte for byte', async () => {
    const raw = Buffer.alloc(16 * 12 * 3);
    for (let i = 0; i < raw.length; i++) raw[i] = (i * 37) % 251;
    const bytes = await sharp(raw, { raw: { width: 16, height: 12, channels: 3 } })
      .withExif({
        IFD0: { Make: 'SignetCam', Model: 'X1' },
        IFD3: { GPSLatitudeRef: 'N', GPSLatitude: '48/1 51/1 2400/100' },
      })
      .withXmp(
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:Description exif:GPSLatitude="48,51.4N"/></x:xmpmeta>',
      )
      .avif()
      .toBuffer();
    for (const text of ['SignetCam', 'GPSLatitude']) expect(bytes.includes(text), text).toBe(true);
    const res = await uploadFile(h, bytes, { name: 'IMG_0001.avif' });
    expect(res.errors).toBeUndefined();
    const img = res.data!.uploadImage;
    const stored = h.fixture!.objects.get(img.key)!.body;
    for (const text of ['SignetCam', 'GPS']) expect(stored.includes(text), text).toBe(false);
    // Blanked in place: the same length (no offset in the file moved).
    expect(stored.length).toBe(bytes.length);
    expect(img).toMatchObject({ byteSize: stored.length, width: 16, height: 12 });
    const meta = await sharp(stored).metadata();
    expect(meta.xmp?.toString() ?? '').not.toContain('GPS');
    expect((await sharp(stored).raw().toBuffer()).equals(await sharp(bytes).raw().toBuffer())).toBe(true);
    await expectStoredAs(img, stored);
  });

  it('a PNG cut before its IEND is refused (it could not be stripped), with nothing stored', async () => {
    const bytes = await gpsImage((img) => img.png());
    const res = await leavesNothing(() =>
      uploadFile(h, bytes.subarray(0, bytes.length - 12), { name: 'cut.png' }),
    );
    expect(codeOf(res)).toBe('BAD_USER_INPUT');
    expect(res.errors![0]!.message).toMatch(/The PNG header is truncated/);
  });

  const LIMITS = `{ viewer { uploadLimits {
    maxFileBytes maxPixels contentTypes formatNames maxConcurrent quota { maxBytes maxFiles usedBytes usedFiles }
  } } }`;

  it('viewer.uploadLimits tells a client what an upload must fit before it sends one; no quota is null', async () => {
    const res = await h.gql<{ viewer: { uploadLimits: Record<string, unknown> } }>(LIMITS);
    expect(res.errors).toBeUndefined();
    expect(res.data!.viewer.uploadLimits).toEqual({
      maxFileBytes: MAX_BYTES,
      maxPixels: 1_000_000,
      contentTypes: ['image/jpeg', 'image/png', 'image/gif', 'image/webp', 'image/avif'],
      formatNames: ['JPEG', 'PNG', 'GIF', 'WebP', 'AVIF'],
      maxConcurrent: 4,
      quota: null,
    });
    // Like viewer itself: a signed-in question.
    const anonymous = await h.gql(LIMITS, {}, { token: null });
    expect(anonymous.errors![0]!.extensions!['code']).toBe('UNAUTHENTICATED');
  });

  it('the type comes from the bytes: a PNG named .jpg and sent as image/jpeg is a PNG', async () => {
    const res = await uploadFile(h, PNG, { name: 'holiday.jpg', type: 'image/jpeg' });
    const img = res.data!.uploadImage;
    expect(img.contentType).toBe('image/png');
    expect(img.key.endsWith('.png')).toBe(true);
    expect(h.fixture!.objects.get(img.key)!.contentType).toBe('image/png');
  });

  describe('bad inputs leave no object and no row', () => {
    it('one byte over UPLOAD_MAX_BYTES is PAYLOAD_TOO_LARGE (413)', async () => {
      const bytes = Buffer.concat([PNG, Buffer.alloc(MAX_BYTES + 1 - PNG.length)]);
      const res = await leavesNothing(() => uploadFile(h, bytes, { name: 'big.png' }));
      expect(res.status).toBe(413);
      expect(res.errors![0]!.extensions).toEqual({ code: 'PAYLOAD_TOO_LARGE', maxBytes: MAX_BYTES });
      expect(res.errors![0]!.message).toBe('The file is larger than the upload limit of 4 KiB (4,096 bytes)');
      // Exactly at the limit is fine: trailing bytes after IEND are tolerated, and not stored
      // (UPLOAD_STRIP_METADATA, the default: what follows IEND is not the image's).
      const ok = await uploadFile(h, Buffer.concat([PNG, Buffer.alloc(MAX_BYTES - PNG.length)]));
      expect(ok.errors).toBeUndefined();
      expect(ok.data!.uploadImage.byteSize).toBe(PNG.length);
      expect(h.fixture!.objects.get(ok.data!.uploadImage.key)!.body.equals(PNG)).toBe(true);
    });

    it('a declared Content-Length far over the limit is refused before the body is read', async () => {
      const res = await leavesNothing(() => uploadFile(h, Buffer.alloc(512 * 1024, 1)));
      expect(res.status).toBe(413);
      expect(codeOf(res)).toBe('PAYLOAD_TOO_LARGE');
    });

    /** The operations, map and file part headers of a one-file multipart upload. */
    const BOUNDARY = 'signet-test-boundary';
    const multipartHead = () => {
      const ops = JSON.stringify({ query: UPLOAD_MUTATION, variables: { file: null } });
      return Buffer.from(
        `--${BOUNDARY}\r\nContent-Disposition: form-data; name="operations"\r\n\r\n${ops}\r\n` +
          `--${BOUNDARY}\r\nContent-Disposition: form-data; name="map"\r\n\r\n{"0":["variables.file"]}\r\n` +
          `--${BOUNDARY}\r\nContent-Disposition: form-data; name="0"; filename="x.png"\r\n` +
          'Content-Type: image/png\r\n\r\n',
      );
    };
    const multipartTail = () => Buffer.from(`\r\n--${BOUNDARY}--\r\n`);

    /** Sends the body chunked (no Content-Length): refused 413 PAYLOAD_TOO_LARGE, nothing stored. */
    async function expectChunkedRefused(parts: Buffer[]) {
      const body = Buffer.concat(parts);
      const objects = h.fixture!.objects.size;
      const rows = (await allRows()).length;
      const res = await fetch(`${h.url}/graphql`, {
        method: 'POST',
        headers: {
          'content-type': `multipart/form-data; boundary=${BOUNDARY}`,
          'x-graphql-yoga-csrf': '1',
          authorization: `Bearer ${await h.token('alice')}`,
        },
        body: new ReadableStream({
          start(controller) {
            for (let i = 0; i < body.length; i += 64 * 1024)
              controller.enqueue(new Uint8Array(body.subarray(i, i + 64 * 1024)));
            controller.close();
          },
        }),
        duplex: 'half',
      } as RequestInit);
      const answer = (await res.json()) as { errors?: { extensions?: { code?: string } }[] };
      expect(res.status).toBe(413);
      expect(answer.errors?.[0]?.extensions?.code).toBe('PAYLOAD_TOO_LARGE');
      expect(h.fixture!.objects.size).toBe(objects);
      expect((await allRows()).length).toBe(rows);
    }

    it('without a Content-Length (chunked), the parser still stops at the limit', async () => {
      await expectChunkedRefused([multipartHead(), PNG, Buffer.alloc(MAX_BYTES * 4), multipartTail()]);
    });

    it('without a Content-Length, a body past the upload bound is refused even when no part is too large', async () => {
      // Junk before the first boundary: busboy skips it, so only the body's own bound stops it.
      await expectChunkedRefused([
        Buffer.alloc(MAX_BYTES + 128 * 1024, 0x61),
        Buffer.from('\r\n'),
        multipartHead(),
        PNG,
        multipartTail(),
      ]);
    });

    it('bytes that are no image are UNSUPPORTED_MEDIA_TYPE, whatever name and type they claim', async () => {
      const bytes = Buffer.from('%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\n');
      const res = await leavesNothing(() => uploadFile(h, bytes, { name: 'photo.png', type: 'image/png' }));
      expect(codeOf(res)).toBe('UNSUPPORTED_MEDIA_TYPE');
      expect(res.errors![0]!.message).toMatch(/not a JPEG, PNG, GIF, WebP or AVIF image/);
    });

    it('SVG is refused by default (UNSUPPORTED_MEDIA_TYPE)', async () => {
      const res = await leavesNothing(() => uploadFile(h, SVG, { name: 'logo.svg', type: 'image/svg+xml' }));
      expect(codeOf(res)).toBe('UNSUPPORTED_MEDIA_TYPE');
      // SVG detection does not run unless SVG is allowed: the answer is the generic one.
      expect(res.errors![0]!.message).toMatch(/not a JPEG, PNG, GIF, WebP or AVIF image/);
    });

    it('a truncated header is BAD_USER_INPUT', async () => {
      for (const bytes of [PNG.subarray(0, 24), JPEG_5x3.subarray(0, 160), makeAvif().subarray(0, 60)]) {
        const res = await leavesNothing(() => uploadFile(h, bytes));
        expect(codeOf(res)).toBe('BAD_USER_INPUT');
        expect(res.errors![0]!.message).toMatch(/header is (truncated|malformed)/);
      }
    });

    it('enormous declared dimensions are BAD_USER_INPUT (UPLOAD_MAX_PIXELS)', async () => {
      for (const bytes of [pngDeclaring(100_000, 100_000), makeAvif({ width: 50_000, height: 50_000 })]) {
        const res = await leavesNothing(() => uploadFile(h, bytes));
        expect(codeOf(res)).toBe('BAD_USER_INPUT');
        expect(res.errors![0]!.message).toMatch(/50000×50000|100000×100000/);
      }
      // Just inside the bound is accepted.
      const ok = await uploadFile(h, pngDeclaring(1000, 1000));
      expect(ok.data!.uploadImage).toMatchObject({ width: 1000, height: 1000 });
    });

    it('an empty file is BAD_USER_INPUT', async () => {
      const res = await leavesNothing(() => uploadFile(h, Buffer.alloc(0)));
      expect(codeOf(res)).toBe('BAD_USER_INPUT');
    });

    it('more than one file in a request is BAD_USER_INPUT', async () => {
      const res = await leavesNothing(() => uploadFile(h, PNG, { extraFiles: 1 }));
      expect(res.status).toBe(400);
      expect(codeOf(res)).toBe('BAD_USER_INPUT');
    });

    it('a File written into JSON variables is BAD_USER_INPUT', async () => {
      const res = await h.gql(UPLOAD_MUTATION, { file: 'iVBORw0KGgo=' });
      expect(res.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    });

    it('an anonymous upload is UNAUTHENTICATED', async () => {
      const res = await leavesNothing(() => uploadFile(h, PNG, { token: null }));
      expect(codeOf(res)).toBe('UNAUTHENTICATED');
    });

    it('a GIF whose frame outgrows its 1×1 screen is sized by the frame and refused (UPLOAD_MAX_PIXELS)', async () => {
      const res = await leavesNothing(() => uploadFile(h, gifWithLateFrame(1, 100, 2000, 2000)));
      expect(codeOf(res)).toBe('BAD_USER_INPUT');
      expect(res.errors![0]!.message).toContain('2000×2000');
    });

    /** A multipart request with these fields (strings) and one PNG file part named "0". */
    async function multipart(
      fields: Record<string, string>,
      token: string | null | undefined,
    ): Promise<RawGql> {
      const form = new FormData();
      for (const [name, value] of Object.entries(fields)) form.append(name, value);
      form.append('0', new Blob([new Uint8Array(PNG)], { type: 'image/png' }), 'a.png');
      const bearer = token === undefined ? await h.token('alice') : token;
      return postGraphql(h, form, {
        'x-graphql-yoga-csrf': '1',
        ...(bearer !== null ? { authorization: `Bearer ${bearer}` } : {}),
      });
    }
    const operations = (query: string, variables: Record<string, null> = { file: null }) =>
      JSON.stringify({ query, variables });
    /** Runs a raw request and checks it stored nothing. */
    async function storesNothing(act: () => Promise<RawGql>): Promise<RawGql> {
      const objects = h.fixture!.objects.size;
      const rows = (await allRows()).length;
      const res = await act();
      expect(h.fixture!.objects.size).toBe(objects);
      expect((await allRows()).length).toBe(rows);
      return res;
    }

    it('one file is one image: two uploadImage fields, or the map naming it twice, are 400', async () => {
      const aliases = await storesNothing(() =>
        multipart(
          {
            operations: operations(
              'mutation($file: File!) { a: uploadImage(file: $file) { id } b: uploadImage(file: $file) { id } }',
            ),
            map: '{"0":["variables.file"]}',
          },
          undefined,
        ),
      );
      expect(aliases.status).toBe(400);
      expect(aliases.codes).toEqual(['BAD_USER_INPUT']);
      expect(aliases.body!.errors![0]!.message).toContain('2 uploadImage fields');
      // Through a fragment too.
      const fragment = await storesNothing(() =>
        multipart(
          {
            operations: operations(
              'mutation($file: File!) { a: uploadImage(file: $file) { id } ...F } fragment F on Mutation { b: uploadImage(file: $file) { id } }',
            ),
            map: '{"0":["variables.file"]}',
          },
          undefined,
        ),
      );
      expect([fragment.status, ...fragment.codes]).toEqual([400, 'BAD_USER_INPUT']);
      const twoPaths = await storesNothing(() =>
        multipart(
          {
            operations: operations(
              'mutation($f: File!, $g: File!) { a: uploadImage(file: $f) { id } b: uploadImage(file: $g) { id } }',
              { f: null, g: null },
            ),
            map: '{"0":["variables.f","variables.g"]}',
          },
          undefined,
        ),
      );
      expect(twoPaths.status).toBe(400);
      expect(twoPaths.codes).toEqual(['BAD_USER_INPUT']);
      expect(twoPaths.body!.errors![0]!.message).toContain('at 2 paths');
    });

    it('an anonymous upload, or one with a refused token, is 401 with www-authenticate: Bearer', async () => {
      const fields = { operations: operations(UPLOAD_MUTATION), map: '{"0":["variables.file"]}' };
      for (const token of [null, 'not-a-jwt']) {
        const res = await storesNothing(() => multipart(fields, token));
        expect(res.status, String(token)).toBe(401);
        expect(res.headers.get('www-authenticate')).toBe('Bearer');
        expect(res.codes).toEqual(['UNAUTHENTICATED']);
      }
    });

    it('operations or map that are not JSON are 400 BAD_USER_INPUT', async () => {
      const good = { operations: operations(UPLOAD_MUTATION), map: '{"0":["variables.file"]}' };
      for (const fields of [
        { ...good, operations: '{x' },
        { ...good, map: '{x' },
      ]) {
        const res = await storesNothing(() => multipart(fields, undefined));
        expect(res.status, JSON.stringify(fields).slice(0, 80)).toBe(400);
        expect(res.codes).toEqual(['BAD_USER_INPUT']);
        expect(res.body!.errors![0]!.message).toContain('not valid JSON');
      }
    });

    it('a multipart request without a CSRF header is refused', async () => {
      const res = await leavesNothing(() => uploadFile(h, PNG, { noCsrf: true }));
      expect(res.status).toBe(403);
    });
  });

  describe('faults mid-upload leave nothing behind', () => {
    // 429 (throttled) and 400 (S3's and COS's RequestTimeout, a wrong region) are the store's
    // refusals of a request Signet built, never the caller's input: retryable, not BAD_USER_INPUT.
    it.each([503, 429, 400, 409])(
      'storage refusing the put with %i: SERVICE_UNAVAILABLE with retryAfter, no row, no object',
      async (status) => {
        const before = h.fixture!.requests.byMethod['PUT'] ?? 0;
        h.fixture!.failNext(1000, status);
        const res = await leavesNothing(() => uploadFile(h, PNG));
        h.fixture!.failNext(0);
        expect(codeOf(res)).toBe('SERVICE_UNAVAILABLE');
        expect(res.errors![0]!.extensions!['retryAfter']).toBe(5);
        expect(res.errors![0]!.message).toMatch(/not stored/);
        expect(h.fixture!.requests.byMethod['PUT'] ?? 0).toBeGreaterThan(before);
      },
    );

    it('the database refusing the insert (a real trigger): the object written is deleted again', async () => {
      await sql`create or replace function signet_test_fail() returns trigger language plpgsql as $$
        begin raise exception 'injected insert failure'; end $$`.execute(h.db.kysely);
      await sql`create trigger signet_test_fail before insert on images
        for each row execute function signet_test_fail()`.execute(h.db.kysely);
      const deletesBefore = h.fixture!.requests.byMethod['DELETE'] ?? 0;
      try {
        const res = await leavesNothing(() => uploadFile(h, PNG));
        // An unexpected database error is masked, with a request id to find it in the log.
        expect(codeOf(res)).toBe('INTERNAL_SERVER_ERROR');
        expect(res.errors![0]!.extensions!['requestId']).toBeTruthy();
        expect(res.errors![0]!.message).not.toMatch(/injected/);
      } finally {
        await sql`drop trigger signet_test_fail on images`.execute(h.db.kysely);
      }
      expect(h.fixture!.requests.byMethod['DELETE']).toBe(deletesBefore + 1);
    });

    it('the database going away at the insert: SERVICE_UNAVAILABLE and the object is deleted', async () => {
      const images = h.container.imagesRepo;
      const insert = images.insert;
      images.insert = async () => {
        throw Object.assign(new Error('terminating connection due to administrator command'), {
          code: '57P01',
        });
      };
      try {
        const res = await leavesNothing(() => uploadFile(h, PNG));
        expect(codeOf(res)).toBe('SERVICE_UNAVAILABLE');
      } finally {
        images.insert = insert;
      }
    });

    it('when deleting the orphan fails too, the key is logged loudly for an operator', async () => {
      const images = h.container.imagesRepo;
      const insert = images.insert;
      let key = '';
      images.insert = async (img: NewImage) => {
        key = img.objectKey;
        h.fixture!.failNext(1000, 503); // the clean-up delete will fail
        throw new Error('insert failed');
      };
      try {
        const res = await uploadFile(h, PNG);
        expect(codeOf(res)).toBe('INTERNAL_SERVER_ERROR');
      } finally {
        images.insert = insert;
        h.fixture!.failNext(0);
      }
      expect(h.fixture!.objects.has(key)).toBe(true);
      const line = h.logs.find((l) => l.includes('ORPHANED OBJECT'));
      expect(line).toBeDefined();
      expect(JSON.parse(line!)).toMatchObject({ level: 50, key });
      h.fixture!.objects.delete(key);
    });
  });

  describe('deleteImage', () => {
    const DELETE = 'mutation($id: ID!) { deleteImage(id: $id) }';

    async function uploaded() {
      const res = await uploadFile(h, PNG);
      expect(res.errors).toBeUndefined();
      return res.data!.uploadImage;
    }

    it('soft-deletes the row, removes the object, purges the cached URL and revokes the proxy link', async () => {
      const img = await uploaded();
      // The upload's signedUrl was signed and cached.
      const keys = urlKeys(h.config.redisPrefix);
      expect(await h.redis!.exists(keys.url(img.id))).toBe(1);
      expect((await fetch(img.proxyUrl, { redirect: 'manual' })).status).toBe(302);

      const res = await h.gql<{ deleteImage: boolean }>(DELETE, { id: img.id });
      expect(res.errors).toBeUndefined();
      expect(res.data!.deleteImage).toBe(true);

      const row = await h.db.kysely
        .selectFrom('images')
        .selectAll()
        .where('id', '=', img.id)
        .executeTakeFirstOrThrow();
      expect(row.deleted_at).toBeInstanceOf(Date);
      expect(h.fixture!.objects.has(img.key)).toBe(false);
      expect(await h.redis!.exists(keys.url(img.id), keys.meta(img.id))).toBe(0);
      expect(await h.redis!.zscore(keys.schedule, img.id)).toBeNull();

      // The URL handed out before no longer fetches anything, and the proxy link is dead.
      expect((await fetch(img.signedUrl.url)).status).toBe(404);
      expect((await fetch(img.proxyUrl, { redirect: 'manual' })).status).toBe(404);
      const gone = await h.gql<{ image: unknown }>('query($id: ID!) { image(id: $id) { id } }', {
        id: img.id,
      });
      expect(gone.data!.image).toBeNull();

      // Deleting again answers exactly like a missing image.
      const again = await h.gql<{ deleteImage: boolean }>(DELETE, { id: img.id });
      const missing = await h.gql<{ deleteImage: boolean }>(DELETE, { id: randomUUID() });
      expect(again).toMatchObject({ data: { deleteImage: false }, errors: undefined });
      expect(missing).toMatchObject({ data: { deleteImage: false }, errors: undefined });
    });

    it("another owner's image behaves exactly like a missing one and stays intact", async () => {
      const img = await uploaded();
      const bob = await h.token('bob');
      const res = await h.gql<{ deleteImage: boolean }>(DELETE, { id: img.id }, { token: bob });
      const missing = await h.gql<{ deleteImage: boolean }>(DELETE, { id: randomUUID() }, { token: bob });
      expect(res.data).toEqual(missing.data);
      expect(res.errors).toEqual(missing.errors);
      expect(h.fixture!.objects.has(img.key)).toBe(true);
      const still = await h.gql<{ image: { id: string } | null }>(
        'query($id: ID!) { image(id: $id) { id } }',
        {
          id: img.id,
        },
      );
      expect(still.data!.image?.id).toBe(img.id);
    });

    it('a simple cross-site form post cannot delete (CSRF prevention)', async () => {
      const img = await uploaded();
      for (const type of ['text/plain', 'application/x-www-form-urlencoded']) {
        const body =
          type === 'text/plain'
            ? JSON.stringify({ query: DELETE, variables: { id: img.id } })
            : new URLSearchParams({ query: DELETE, variables: JSON.stringify({ id: img.id }) }).toString();
        const res = await fetch(`${h.url}/graphql`, {
          method: 'POST',
          headers: { 'content-type': type, authorization: `Bearer ${await h.token('alice')}` },
          body,
        });
        expect(res.status).toBe(403);
        await res.arrayBuffer();
      }
      expect(h.fixture!.objects.has(img.key)).toBe(true);
    });

    it('a malformed id is BAD_USER_INPUT', async () => {
      const res = await h.gql(DELETE, { id: 'not-a-uuid' });
      expect(res.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    });

    it.each([503, 429, 400])(
      'storage failing the delete with %i changes nothing (SERVICE_UNAVAILABLE) and a retry succeeds',
      async (status) => {
        const img = await uploaded();
        h.fixture!.failNext(1000, status);
        const res = await h.gql<{ deleteImage: boolean }>(DELETE, { id: img.id });
        h.fixture!.failNext(0);
        expect(res.errors?.[0]?.extensions?.code).toBe('SERVICE_UNAVAILABLE');
        expect((res.errors?.[0]?.extensions as Record<string, unknown> | undefined)?.['retryAfter']).toBe(5);
        expect(h.fixture!.objects.has(img.key)).toBe(true);
        const row = await h.db.kysely
          .selectFrom('images')
          .select('deleted_at')
          .where('id', '=', img.id)
          .executeTakeFirstOrThrow();
        expect(row.deleted_at).toBeNull();

        const retry = await h.gql<{ deleteImage: boolean }>(DELETE, { id: img.id });
        expect(retry.data!.deleteImage).toBe(true);
        expect(h.fixture!.objects.has(img.key)).toBe(false);
      },
    );
  });
});

async function until(check: () => boolean | Promise<boolean>, what: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

// Finding: parallel uploads were unbounded, each holding its whole file in memory.
describe('upload concurrency: per viewer and per node, taken before the body is read', () => {
  let h: Harness;

  beforeAll(async () => {
    h = await startHarness({
      driver: 'cos',
      redis: 'memory',
      env: { UPLOAD_CONCURRENCY_PER_VIEWER: '2', UPLOAD_CONCURRENCY: '3' },
    });
  });
  afterAll(async () => {
    h?.fixture?.holdPutResponses(false);
    await h?.close();
  });

  const codeOf = (res: MultipartResult) => res.errors?.[0]?.extensions?.code;
  const stored = () => h.fixture!.objects.size;

  it('a third upload of one viewer and a fourth on the node are RATE_LIMITED (429, retryAfter)', async () => {
    const bob = await h.token('bob');
    h.fixture!.holdPutResponses(true);
    const first = [uploadFile(h, PNG), uploadFile(h, PNG)];
    await until(() => stored() === 2, 'two puts to reach the store');
    expect(h.container.uploadSlots.inFlight).toBe(2);

    const third = await uploadFile(h, PNG);
    expect(third.status).toBe(429);
    expect(codeOf(third)).toBe('RATE_LIMITED');
    expect(third.errors![0]!.extensions!['retryAfter']).toBe(2);
    expect(third.errors![0]!.message).toMatch(/at most 2 at a time/);

    // Another viewer still gets a slot, until the node's three are taken.
    const bobs = uploadFile(h, PNG, { token: bob });
    await until(() => stored() === 3, "bob's put to reach the store");
    const fourth = await uploadFile(h, PNG, { token: await h.token('carol') });
    expect(fourth.status).toBe(429);
    expect(fourth.errors![0]!.message).toMatch(/busy with other uploads/);
    expect(stored()).toBe(3);

    h.fixture!.holdPutResponses(false);
    for (const res of await Promise.all([...first, bobs])) expect(res.errors).toBeUndefined();
    await until(() => h.container.uploadSlots.inFlight === 0, 'every slot to be released');
    expect((await uploadFile(h, PNG)).errors).toBeUndefined();
  });

  it('a client that hangs up does not free its slot while its put is still running', async () => {
    h.fixture!.holdPutResponses(true);
    const before = stored();
    const kept = uploadFile(h, PNG);
    const controller = new AbortController();
    const form = new FormData();
    form.append('operations', JSON.stringify({ query: UPLOAD_MUTATION, variables: { file: null } }));
    form.append('map', JSON.stringify({ 0: ['variables.file'] }));
    form.append('0', new Blob([new Uint8Array(PNG)]), 'gone.png');
    const gone = fetch(`${h.url}/graphql`, {
      method: 'POST',
      headers: { 'x-graphql-yoga-csrf': '1', authorization: `Bearer ${await h.token('alice')}` },
      body: form,
      signal: controller.signal,
    }).catch((err: Error) => err);
    await until(() => stored() === before + 2, 'both puts to reach the store');
    controller.abort();
    expect(await gone).toBeInstanceOf(Error);
    // The gateway saw the client go (its access line says so)...
    await until(
      () => h.logs.some((l) => l.includes('"status":"aborted"') && l.includes('/graphql')),
      'the aborted exchange to be logged',
    );
    // ...yet the upload still holds its bytes and its slot: alice's two are taken.
    expect(h.container.uploadSlots.inFlight).toBe(2);
    expect(codeOf(await uploadFile(h, PNG))).toBe('RATE_LIMITED');

    h.fixture!.holdPutResponses(false);
    expect((await kept).errors).toBeUndefined();
    await until(() => h.container.uploadSlots.inFlight === 0, 'the hung-up upload to finish');
  });
});

// Finding: a put past its deadline was not stopped and its clean-up delete raced it, so the
// object could land after the delete, with no row.
describe('an upload whose put passes its deadline', () => {
  let h: Harness;

  beforeAll(async () => {
    h = await startHarness({ driver: 'cos', redis: 'memory', env: { COS_TIMEOUT_MS: '300' } });
  });
  afterAll(async () => {
    h?.fixture?.holdPutResponses(false);
    await h?.close();
  });

  it('is answered SERVICE_UNAVAILABLE, and what the store kept is removed once the put settled', async () => {
    h.fixture!.holdPutResponses(true); // the store keeps the object and never answers
    const res = await uploadFile(h, PNG);
    expect(res.errors?.[0]?.extensions?.code).toBe('SERVICE_UNAVAILABLE');
    const key = h.fixture!.requests.log.find((r) => r.method === 'PUT')!.key;
    await until(() => !h.fixture!.objects.has(key), 'the object to be removed');
    const log = h.fixture!.requests.log.filter((r) => r.key === key).map((r) => r.method);
    expect(log).toEqual(['PUT', 'DELETE']);
    const rows = await h.db.kysely.selectFrom('images').select('id').execute();
    expect(rows).toEqual([]);
    expect(h.logs.some((l) => l.includes('removed what a failed put may have stored'))).toBe(true);
  });
});

// Finding: no per-viewer quota. Optional; live images only.
describe('upload quota: UPLOAD_QUOTA_FILES and UPLOAD_QUOTA_BYTES', () => {
  let h: Harness;
  const QUOTA_BYTES = PNG.length * 2 + 10;

  beforeAll(async () => {
    h = await startHarness({
      driver: 'cos',
      redis: 'memory',
      // Files are padded to a size with bytes after IEND, which a PNG is stored without when
      // metadata is stripped: here every file is stored as it came, so its size is the padded one.
      env: {
        UPLOAD_QUOTA_FILES: '2',
        UPLOAD_QUOTA_BYTES: String(QUOTA_BYTES),
        UPLOAD_STRIP_METADATA: 'false',
      },
    });
  });
  afterAll(async () => {
    await h?.close();
  });

  const codeOf = (res: MultipartResult) => res.errors?.[0]?.extensions?.code;

  it('the files quota is FORBIDDEN, the bytes quota PAYLOAD_TOO_LARGE with what is left; deleting frees', async () => {
    const a = await uploadFile(h, PNG);
    const b = await uploadFile(h, PNG);
    expect(a.errors ?? b.errors).toBeUndefined();
    const objects = h.fixture!.objects.size;

    const third = await uploadFile(h, PNG);
    expect(codeOf(third)).toBe('FORBIDDEN');
    expect(third.errors![0]!.extensions!['quotaFiles']).toBe(2);
    expect(third.errors![0]!.message).toMatch(/quota of 2 images/);
    expect(h.fixture!.objects.size).toBe(objects);

    // Another viewer has a quota of its own.
    expect((await uploadFile(h, PNG, { token: await h.token('bob') })).errors).toBeUndefined();

    // A deleted image frees its share: one file and PNG.length bytes are in use again.
    const del = await h.gql<{ deleteImage: boolean }>('mutation($id: ID!) { deleteImage(id: $id) }', {
      id: a.data!.uploadImage.id,
    });
    expect(del.data!.deleteImage).toBe(true);
    const left = QUOTA_BYTES - PNG.length;
    const tooBig = Buffer.concat([PNG, Buffer.alloc(left + 1 - PNG.length)]);
    const over = await uploadFile(h, tooBig);
    expect(codeOf(over)).toBe('PAYLOAD_TOO_LARGE');
    expect(over.errors![0]!.extensions!['maxBytes']).toBe(left);
    expect(over.errors![0]!.message).toBe(
      `The file is ${bytesInWords(left + 1)}, more than what is left of the upload quota: ${bytesInWords(left)} of ${bytesInWords(QUOTA_BYTES)}`,
    );
    expect(h.fixture!.objects.size).toBe(objects); // bob's in, a's out

    const fits = await uploadFile(h, Buffer.concat([PNG, Buffer.alloc(left - PNG.length)]));
    expect(fits.errors).toBeUndefined();
    expect(fits.data!.uploadImage.byteSize).toBe(left);
  });

  it("viewer.uploadLimits.quota is the viewer's own use, as the next upload is checked against it", async () => {
    const quota = async (token?: string) => {
      const res = await h.gql<{ viewer: { uploadLimits: { quota: unknown } } }>(
        '{ viewer { uploadLimits { quota { maxBytes maxFiles usedBytes usedFiles } } } }',
        {},
        token ? { token } : {},
      );
      expect(res.errors).toBeUndefined();
      return res.data!.viewer.uploadLimits.quota;
    };
    const carol = await h.token('carol');
    expect(await quota(carol)).toEqual({ maxBytes: QUOTA_BYTES, maxFiles: 2, usedBytes: 0, usedFiles: 0 });
    const up = await uploadFile(h, PNG, { token: carol });
    expect(up.errors).toBeUndefined();
    expect(await quota(carol)).toEqual({
      maxBytes: QUOTA_BYTES,
      maxFiles: 2,
      usedBytes: PNG.length,
      usedFiles: 1,
    });
    // The figure is the one an upload is refused by: what the quota leaves is what fits.
    const left = QUOTA_BYTES - PNG.length;
    const over = await uploadFile(h, Buffer.concat([PNG, Buffer.alloc(left + 1 - PNG.length)]), {
      token: carol,
    });
    expect(over.errors![0]!.extensions!['maxBytes']).toBe(left);
    await h.gql(
      'mutation($id: ID!) { deleteImage(id: $id) }',
      { id: up.data!.uploadImage.id },
      { token: carol },
    );
    expect(await quota(carol)).toMatchObject({ usedBytes: 0, usedFiles: 0 });
    // alice's images (the test above) are hers alone.
    expect(await quota()).toMatchObject({ usedFiles: 2 });
  });
});

// The embedded mode: local driver, PGlite, in-process cache; SVG explicitly enabled.
describe('uploadImage with the local driver and UPLOAD_ALLOW_SVG=true', () => {
  let h: Harness;

  beforeAll(async () => {
    h = await startHarness({
      driver: 'local',
      redis: 'memory',
      database: 'pglite',
      env: { UPLOAD_ALLOW_SVG: 'true' },
    });
  });
  afterAll(async () => {
    await h?.close();
  });

  it('names SVG among the accepted formats, in uploadLimits and in a refusal', async () => {
    const res = await h.gql<{ viewer: { uploadLimits: { contentTypes: string[]; formatNames: string[] } } }>(
      '{ viewer { uploadLimits { contentTypes formatNames } } }',
    );
    expect(res.data!.viewer.uploadLimits.contentTypes.at(-1)).toBe('image/svg+xml');
    expect(res.data!.viewer.uploadLimits.formatNames).toEqual(['JPEG', 'PNG', 'GIF', 'WebP', 'AVIF', 'SVG']);
    const refused = await uploadFile(h, Buffer.from('just some notes'), { name: 'notes.svg' });
    expect(refused.errors![0]!.message).toMatch(/not a JPEG, PNG, GIF, WebP, AVIF or SVG image/);
  });

  it('stores an SVG with the size from its root element', async () => {
    const res = await uploadFile(h, SVG, { name: 'logo.svg' });
    expect(res.errors).toBeUndefined();
    const img = res.data!.uploadImage;
    expect(img).toMatchObject({ contentType: 'image/svg+xml', width: 40, height: 30 });
    expect(img.key).toBe(`u/alice/${img.id}.svg`);
    const got = await fetch(img.signedUrl.url);
    expect(got.status).toBe(200);
    expect(Buffer.from(await got.arrayBuffer()).equals(SVG)).toBe(true);
  });

  it('stores a PNG in DATA_DIR/bucket and deletes it again', async () => {
    const res = await uploadFile(h, PNG);
    const img = res.data!.uploadImage;
    expect(await h.storage.head(img.key)).toMatchObject({ size: PNG.length, contentType: 'image/png' });
    expect((await fetch(img.signedUrl.url)).status).toBe(200);

    const del = await h.gql<{ deleteImage: boolean }>('mutation($id: ID!) { deleteImage(id: $id) }', {
      id: img.id,
    });
    expect(del.data!.deleteImage).toBe(true);
    expect(await h.storage.head(img.key)).toBeNull();
    expect((await h.store.status([img.id]))[0]!.sig).toBeNull();
    expect((await fetch(img.signedUrl.url)).status).toBe(404);
  });
});

describe('uploadImage with UPLOAD_STRIP_METADATA=false (local driver, PGlite)', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({
      driver: 'local',
      redis: 'memory',
      database: 'pglite',
      env: { UPLOAD_STRIP_METADATA: 'false' },
    });
  });
  afterAll(async () => {
    await h?.close();
  });

  it('stores a JPEG byte for byte, metadata and all', async () => {
    const photo = await phonePhoto();
    const res = await uploadFile(h, photo, { name: 'IMG_0002.jpg' });
    expect(res.errors).toBeUndefined();
    expect(res.data!.uploadImage.byteSize).toBe(photo.length);
    const got = Buffer.from(await (await fetch(res.data!.uploadImage.signedUrl.url)).arrayBuffer());
    expect(got.equals(photo)).toBe(true);
  });

  it.each(GPS_FORMATS)('stores a %s byte for byte, metadata and all', async (_name, ext, encode) => {
    const bytes = await gpsImage(encode);
    const res = await uploadFile(h, bytes, { name: `IMG_0002.${ext}` });
    expect(res.errors).toBeUndefined();
    expect(res.data!.uploadImage.byteSize).toBe(bytes.length);
    const got = Buffer.from(await (await fetch(res.data!.uploadImage.signedUrl.url)).arrayBuffer());
    expect(got.equals(bytes)).toBe(true);
  });
});

// Past the first read of 64 KB, the GIF walk reads the upload on in windows of up to 1 MB,
// through the real multipart parser, whose File has no working slice: every GIF whose frames lay
// past the head was a 500 (found by the responsiveness guard).
describe('uploadImage: a GIF whose frames lie past the head', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({
      driver: 'local',
      redis: 'memory',
      env: { UPLOAD_MAX_BYTES: String(4 * 1024 * 1024), UPLOAD_MAX_PIXELS: '1000000' },
    });
  });
  afterAll(async () => {
    await h?.close();
  });

  it('a bomb 2.5 MB in is refused with nothing stored; a fine one is stored at its frames’ size', async () => {
    const objects = async () => (await h.storage.list('u/', {})).objects.length;
    const before = await objects();
    const bomb = await uploadFile(h, gifWithLateFrame(1, 2_500_000, 2000, 2000), { type: 'image/gif' });
    expect(bomb.errors?.[0]?.extensions?.['code']).toBe('BAD_USER_INPUT');
    expect(bomb.errors![0]!.message).toContain('2000×2000');
    expect(await objects()).toBe(before);
    const fine = await uploadFile(h, gifWithLateFrame(8, 200_000, 40, 30), { type: 'image/gif' });
    expect(fine.errors).toBeUndefined();
    expect(fine.data!.uploadImage).toMatchObject({ width: 40, height: 30, contentType: 'image/gif' });
    expect(await objects()).toBe(before + 1);
  });
});
