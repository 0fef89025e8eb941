import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { crc32 } from '../../src/crc32.js';
import { type CosFixture, startCosFixture } from '../fixtures/cos-fixture.js';
import { makePng } from '../fixtures/images.js';
import { createTestDatabase } from '../support/database.js';
import { apiNodeEnv, COS_CREDENTIALS, TEST_JWT_SECRET } from '../support/env.js';
import { GatewayProcess } from '../support/gateway-process.js';
import { UPLOAD_MUTATION } from '../support/upload.js';

const MB = 1024 * 1024;
/** Just under the default UPLOAD_MAX_BYTES (20 MiB), room left for nothing else. */
const BIG = 20 * MB - 4096;

/**
 * A PNG of `size` bytes: a small image whose bulk is one more IDAT chunk of filler before IEND.
 * Image data is what the upload's metadata stripping keeps (UPLOAD_STRIP_METADATA, on by
 * default), so the whole file is stored and the path measured is the default one; nothing on an
 * API node decodes it.
 */
function pngOf(size: number, seed: number): Buffer {
  const png = makePng(64, 48, [seed % 256, 90, 30], [10, 20, seed % 256]);
  const iend = png.length - 12;
  const data = Buffer.alloc(size - png.length - 12, seed % 251);
  const chunk = Buffer.alloc(12 + data.length);
  chunk.writeUInt32BE(data.length, 0);
  chunk.write('IDAT', 4, 'latin1');
  data.copy(chunk, 8);
  chunk.writeUInt32BE(crc32(chunk.subarray(4, 8 + data.length)), 8 + data.length);
  return Buffer.concat([png.subarray(0, iend), chunk, png.subarray(iend)]);
}

// The gateway runs as a child process, so its RSS measures the upload path alone: the client
// building the request and the fixture keeping the object live in this process.
describe('upload memory: one 20 MB upload through a child gateway', () => {
  let fixture: CosFixture;
  let pgdb: { url: string; drop: () => Promise<void> };
  let gw: GatewayProcess;
  let token: string;

  beforeAll(async () => {
    fixture = await startCosFixture({ ...COS_CREDENTIALS });
    pgdb = await createTestDatabase();
    gw = await GatewayProcess.start(apiNodeEnv(fixture, pgdb.url));
    token = await new SignJWT({})
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('alice')
      .setIssuedAt()
      .setExpirationTime('1h')
      .sign(new TextEncoder().encode(TEST_JWT_SECRET));
  });
  afterAll(async () => {
    await gw?.kill();
    await pgdb?.drop();
    await fixture?.close();
  });

  async function upload(bytes: Buffer): Promise<{ id: string; key: string; byteSize: number }> {
    const form = new FormData();
    form.append('operations', JSON.stringify({ query: UPLOAD_MUTATION, variables: { file: null } }));
    form.append('map', JSON.stringify({ 0: ['variables.file'] }));
    form.append('0', new Blob([new Uint8Array(bytes)], { type: 'image/png' }), 'big.png');
    const res = await fetch(`${gw.url}/graphql`, {
      method: 'POST',
      headers: { 'x-graphql-yoga-csrf': '1', authorization: `Bearer ${token}` },
      body: form,
    });
    const body = (await res.json()) as {
      data?: { uploadImage: { id: string; key: string; byteSize: number } };
      errors?: unknown;
    };
    expect(body.errors).toBeUndefined();
    return body.data!.uploadImage;
  }

  it('stores the exact bytes with the gateway growing by less than 1.8 times the file', async () => {
    // Warm up: load the code paths, the SDK's sockets and the parser before measuring.
    for (let i = 0; i < 3; i++) await upload(pngOf(4 * MB, i));
    const bytes = pngOf(BIG, 7);
    const before = await gw.memory();
    await gw.resetPeak();

    const img = await upload(bytes);
    const after = await gw.memory();

    expect(img.byteSize).toBe(BIG);
    expect(fixture.objects.get(img.key)?.body.equals(bytes)).toBe(true);
    const growth = after.peak - before.rss;
    console.log(
      `upload ${(BIG / MB).toFixed(1)} MB: child RSS before ${(before.rss / MB).toFixed(1)} MB, peak during ${(after.peak / MB).toFixed(1)} MB, growth ${(growth / MB).toFixed(1)} MB`,
    );
    // The multipart parser holds the file once (20 MB, measured ~27 MB of growth in all).
    // Reading it into one more buffer for sniffing and the put grew the process by 64-69 MB.
    expect(growth).toBeLessThan(36 * MB);
  });
});
