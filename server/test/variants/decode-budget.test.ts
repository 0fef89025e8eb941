import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Harness, startHarness } from '../support/harness.js';
import { uploadFile } from '../support/upload.js';

/**
 * sharp runs on libuv's thread pool, which every file read needs too. Renders and placeholder
 * decodes each have a bound, and together they once filled the pool (reads waited ~0.9 s behind
 * decodes); one budget of the pool less one now holds both (Config.decodeBudget). Here the test
 * takes the whole budget, as decodes already running would: a first render and an upload's
 * placeholder both wait for it, and a file read does not.
 */
describe("one budget of sharp work for a node's renders and placeholders (local driver)", () => {
  let h: Harness;

  beforeAll(async () => {
    h = await startHarness({ driver: 'local', redis: 'memory' });
  });
  afterAll(async () => {
    await h?.close();
  });

  it('a render and a placeholder wait while the budget is taken; the bucket still serves files', async () => {
    const { decodes } = h.container;
    expect(h.config.decodeBudget).toBeLessThan(Number(process.env.UV_THREADPOOL_SIZE) || 4);
    const photo = await sharp({ create: { width: 1200, height: 800, channels: 3, background: '#3a7' } })
      .jpeg()
      .toBuffer();
    const first = await uploadFile(h, photo, { type: 'image/jpeg', name: 'a.jpg' });
    expect(first.errors).toBeUndefined();
    await h.container.placeholders.idle();

    for (let i = 0; i < h.config.decodeBudget; i++) await decodes.acquire();
    const up = await uploadFile(h, photo, { type: 'image/jpeg', name: 'b.jpg' });
    expect(up.errors).toBeUndefined();
    const token = await h.token('alice');
    const res = await h.gql<{ image: { original: { url: string }; thumb: { url: string } } }>(
      `query($id: ID!) { image(id: $id) { original: signedUrl { url } thumb: signedUrl(preset: "thumb") { url } } }`,
      { id: first.data!.uploadImage.id },
      { token },
    );
    expect(res.errors).toBeUndefined();
    let rendered = false;
    const thumb = fetch(res.data!.image.thumb.url).then(async (r) => {
      rendered = true;
      return { status: r.status, body: Buffer.from(await r.arrayBuffer()) };
    });
    // The upload's placeholder and the first render: both read their bytes, then wait.
    await expect.poll(() => decodes.queued, { timeout: 10_000 }).toBe(2);
    expect(rendered).toBe(false);
    // A file read is not one of them: the original is served meanwhile.
    const original = await fetch(res.data!.image.original.url);
    expect(original.status).toBe(200);
    expect(Buffer.from(await original.arrayBuffer()).equals(photo)).toBe(true);

    for (let i = 0; i < h.config.decodeBudget; i++) decodes.release();
    const got = await thumb;
    expect(got.status).toBe(200);
    expect(await sharp(got.body).metadata()).toMatchObject({ format: 'webp', width: 320, height: 320 });
    await h.container.placeholders.idle();
    expect(decodes.held).toBe(0);
    const row = await h.gql<{ image: { placeholder: string | null } }>(
      `query($id: ID!) { image(id: $id) { placeholder } }`,
      { id: up.data!.uploadImage.id },
      { token },
    );
    expect(row.data!.image.placeholder).toMatch(/^[A-Za-z0-9+/=]+$/);
  });
});
