import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makePhoto } from '../fixtures/photos.js';
import { type Harness, startHarness } from '../support/harness.js';
import { uploadFile } from '../support/upload.js';

const LINKS = /* GraphQL */ `
  query($id: ID!) {
    image(id: $id) {
      key
      original: signedUrl { url }
      thumb: signedUrl(preset: "thumb") { url }
      stream: proxyUrl(mode: STREAM, preset: "thumb")
    }
  }
`;

interface Links {
  image: { key: string; original: { url: string }; thumb: { url: string }; stream: string };
}

async function links(h: Harness, id: string): Promise<Links['image']> {
  const res = await h.gql<Links>(LINKS, { id });
  expect(res.errors).toBeUndefined();
  return res.data!.image;
}

async function answer(url: string) {
  const res = await fetch(url);
  const text = await res.text();
  return {
    status: res.status,
    retryAfter: res.headers.get('retry-after'),
    code: res.headers.get('content-type')?.startsWith('application/json')
      ? (JSON.parse(text) as { error: { code: string } }).error.code
      : undefined,
  };
}

// Stream mode fetches a variant through its own signed URL. A variant that cannot be made is the
// variant's failure, not the store's: the stream must answer what the bucket URL answers (it used
// to turn both into 502 BAD_GATEWAY, so a corrupt original looked like an outage and a busy node
// lost its Retry-After).
describe('/proxy stream of a variant that fails (local driver)', () => {
  let h: Harness;

  beforeAll(async () => {
    h = await startHarness({
      driver: 'local',
      redis: 'memory',
      env: { VARIANT_CONCURRENCY: '1', VARIANT_QUEUE_MAX: '0' },
    });
  });
  afterAll(async () => {
    await h?.close();
  });

  it('a corrupt original: 422 VARIANT_FAILED on the stream as on the bucket URL', async () => {
    const up = await uploadFile(h, await makePhoto(1200, 900), { type: 'image/jpeg', name: 'p.jpg' });
    expect(up.errors).toBeUndefined();
    const l = await links(h, up.data!.uploadImage.id);
    const file = path.join(h.config.dataDir, 'bucket', l.key);
    const bytes = await readFile(file);
    await writeFile(file, bytes.subarray(0, Math.floor(bytes.length * 0.6)));

    expect(await answer(l.thumb.url)).toMatchObject({ status: 422, code: 'VARIANT_FAILED' });
    expect(await answer(l.stream)).toMatchObject({ status: 422, code: 'VARIANT_FAILED', retryAfter: null });
    expect((await answer(l.original.url)).status).toBe(200);
  });

  it('a full render queue: 503 SERVICE_UNAVAILABLE with Retry-After on the stream as on the bucket URL', async () => {
    // An interlaced PNG cannot shrink while it decodes: its render holds the one slot a while.
    const big = await sharp({ create: { width: 6000, height: 6000, channels: 3, background: '#336699' } })
      .png({ progressive: true })
      .toBuffer();
    const [a, b] = await Promise.all(
      ['a.png', 'b.png'].map(async (name) => {
        const up = await uploadFile(h, big, { type: 'image/png', name });
        expect(up.errors).toBeUndefined();
        return links(h, up.data!.uploadImage.id);
      }),
    );
    await h.container.placeholders.idle();
    const holder = fetch(a!.thumb.url).then(async (r) => {
      await r.arrayBuffer();
      return r.status;
    });
    const deadline = Date.now() + 10_000;
    while (h.container.localVariants!.inFlight === 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 5));
    }
    expect(h.container.localVariants!.inFlight).toBe(1);

    const direct = await answer(b!.thumb.url);
    const streamed = await answer(b!.stream);
    expect(direct).toEqual({ status: 503, code: 'SERVICE_UNAVAILABLE', retryAfter: '5' });
    expect(streamed).toEqual(direct);
    expect(await holder).toBe(200);
  }, 60_000);
});

// A store's own failure stays the store's: 502, whatever status it answered with.
describe('/proxy stream of a variant when the store fails (cos driver)', () => {
  let h: Harness;

  beforeAll(async () => {
    h = await startHarness({ driver: 'cos', redis: 'memory' });
  });
  afterAll(async () => {
    await h?.close();
  });

  it.each([500, 503])('the store answering %i is 502 BAD_GATEWAY', async (status) => {
    const up = await uploadFile(h, await makePhoto(600, 400), { type: 'image/jpeg', name: 'p.jpg' });
    expect(up.errors).toBeUndefined();
    const l = await links(h, up.data!.uploadImage.id);
    h.fixture!.failNext(1, status);
    try {
      expect(await answer(l.stream)).toMatchObject({ status: 502, code: 'BAD_GATEWAY' });
    } finally {
      h.fixture!.failNext(0);
    }
    expect((await answer(l.stream)).status).toBe(200);
  });
});
