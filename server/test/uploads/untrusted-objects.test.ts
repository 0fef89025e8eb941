import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makePng, SVG } from '../fixtures/images.js';

const PNG = makePng(4, 3, [0, 0, 0], [255, 255, 255]);

import { type Harness, startHarness } from '../support/harness.js';
import { proxyLinks } from '../support/proxy.js';
import { uploadFile } from '../support/upload.js';

// User-supplied bytes served from the gateway's own origin (the local bucket, stream mode) must
// never run as a page of that origin: the web app keeps its token there.
describe('objects served from the gateway origin cannot run script', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ driver: 'local', redis: 'memory', env: { UPLOAD_ALLOW_SVG: 'true' } });
  });
  afterAll(async () => {
    await h?.close();
  });

  const sandboxed = (res: Response) => {
    const csp = res.headers.get('content-security-policy') ?? '';
    expect(csp).toMatch(/(^|;\s*)sandbox(;|$)/);
    expect(csp).toContain("default-src 'none'");
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
  };

  it('an SVG from /local-bucket is sandboxed and a download, not a document', async () => {
    const up = await uploadFile(h, SVG, { name: 'x.svg', type: 'image/svg+xml' });
    expect(up.errors).toBeUndefined();
    const res = await fetch(up.data!.uploadImage.signedUrl.url);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('image/svg+xml');
    sandboxed(res);
    expect(res.headers.get('content-disposition')).toBe('attachment');
    await res.arrayBuffer();

    // The same object through the proxy's stream mode and its redirect.
    const { redirect, stream } = await proxyLinks(h, up.data!.uploadImage.id);
    const streamed = await fetch(stream);
    sandboxed(streamed);
    expect(streamed.headers.get('content-disposition')).toBe('attachment');
    await streamed.arrayBuffer();
    const followed = await fetch(redirect);
    expect(followed.url).toContain('/local-bucket/');
    sandboxed(followed);
    expect(followed.headers.get('content-disposition')).toBe('attachment');
    await followed.arrayBuffer();
  });

  it('a raster image is sandboxed too but shown inline', async () => {
    const up = await uploadFile(h, PNG, { name: 'x.png', type: 'image/png' });
    const res = await fetch(up.data!.uploadImage.signedUrl.url);
    expect(res.status).toBe(200);
    sandboxed(res);
    expect(res.headers.get('content-disposition')).toBeNull();
    await res.arrayBuffer();
  });
});
