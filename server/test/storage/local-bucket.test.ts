import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { localSignature } from '../../src/storage/local.js';
import { makePng } from '../fixtures/images.js';
import { type Harness, startHarness } from '../support/harness.js';
import { uploadFile } from '../support/upload.js';

const PNG = makePng(6, 5, [10, 20, 30], [200, 100, 50]);
const YEAR_LONG = 'private, max-age=31536000, immutable';

/** The local driver's bucket route over real HTTP: what a browser caching an image sees. */
describe('/local-bucket/* cache headers and conditional requests', () => {
  let h: Harness;
  let url: string;
  /** The object's validators, as the route answers a plain HEAD. */
  let etag: string;
  let lastModified: string;

  beforeAll(async () => {
    h = await startHarness({ driver: 'local', redis: 'memory' });
    const up = await uploadFile(h, PNG, { name: 'c.png', type: 'image/png' });
    expect(up.errors).toBeUndefined();
    url = up.data!.uploadImage.signedUrl.url;
    expect(url.startsWith(`${h.url}/local-bucket/`)).toBe(true);
    const head = await fetch(url, { method: 'HEAD' });
    expect(head.status).toBe(200);
    etag = head.headers.get('etag')!;
    lastModified = head.headers.get('last-modified')!;
  });

  afterAll(async () => {
    await h?.close();
  });

  const secondsFrom = (date: string, s: number) => new Date(Date.parse(date) + s * 1000).toUTCString();

  it('answers GET, HEAD and ranges with a year-long private immutable Cache-Control and Last-Modified', async () => {
    const res = await fetch(url);
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe(YEAR_LONG);
    expect([res.headers.get('etag'), res.headers.get('last-modified')]).toEqual([etag, lastModified]);
    expect(etag).toMatch(/^"[0-9a-f]{32}"$/);
    // An HTTP date, within a minute of the upload.
    expect(lastModified).toMatch(/^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT$/);
    expect(Math.abs(Date.parse(lastModified) - Date.now())).toBeLessThan(60_000);
    expect(Buffer.from(await res.arrayBuffer()).equals(PNG)).toBe(true);

    const head = await fetch(url, { method: 'HEAD' });
    expect([head.status, head.headers.get('cache-control')]).toEqual([200, YEAR_LONG]);

    const part = await fetch(url, { headers: { range: 'bytes=0-7' } });
    expect(part.status).toBe(206);
    expect(part.headers.get('cache-control')).toBe(YEAR_LONG);
    expect(Buffer.from(await part.arrayBuffer()).equals(PNG.subarray(0, 8))).toBe(true);
  });

  it('answers If-None-Match and If-Modified-Since with 304, If-None-Match deciding when both are sent', async () => {
    const cases: [string, Record<string, string>, number][] = [
      ['matching tag', { 'if-none-match': etag }, 304],
      ['matching tag in a list, weak', { 'if-none-match': `"other", W/${etag}` }, 304],
      ['other tag', { 'if-none-match': '"other"' }, 200],
      ['the Last-Modified date', { 'if-modified-since': lastModified }, 304],
      ['a later date', { 'if-modified-since': secondsFrom(lastModified, 3600) }, 304],
      ['a second earlier', { 'if-modified-since': secondsFrom(lastModified, -1) }, 200],
      ['not a date', { 'if-modified-since': 'not a date' }, 200],
      // RFC 9110 §13.2.2: If-Modified-Since is not even looked at next to If-None-Match.
      ['other tag, matching date', { 'if-none-match': '"other"', 'if-modified-since': lastModified }, 200],
      [
        'matching tag, earlier date',
        { 'if-none-match': etag, 'if-modified-since': secondsFrom(lastModified, -60) },
        304,
      ],
    ];
    for (const method of ['GET', 'HEAD']) {
      for (const [label, headers, status] of cases) {
        const res = await fetch(url, { method, headers });
        const body = Buffer.from(await res.arrayBuffer());
        expect(res.status, `${method} ${label}`).toBe(status);
        // A 304 carries the same caching headers as the 200 it stands for, and no body.
        expect(res.headers.get('cache-control'), `${method} ${label}`).toBe(YEAR_LONG);
        expect(res.headers.get('etag'), `${method} ${label}`).toBe(etag);
        expect(res.headers.get('last-modified'), `${method} ${label}`).toBe(lastModified);
        const bytes = status === 200 && method === 'GET' ? PNG.length : 0;
        expect(body.length, `${method} ${label}`).toBe(bytes);
      }
    }
  });

  it('still refuses a tampered URL with 403, whatever validators it sends', async () => {
    const u = new URL(url);
    const sig = u.searchParams.get('sig')!;
    const withParam = (name: string, value: string) => {
      const t = new URL(url);
      t.searchParams.set(name, value);
      return t.toString();
    };
    const tampered = [
      withParam('sig', `${sig[0] === 'A' ? 'B' : 'A'}${sig.slice(1)}`),
      withParam('e', String(Number(u.searchParams.get('e')) + 1)),
      withParam('s', String(Number(u.searchParams.get('s')) - 1)),
      url.replace(/\.png\?/, '.jpg?'),
    ];
    const validators: Record<string, string>[] = [
      {},
      { 'if-none-match': etag },
      { 'if-modified-since': lastModified },
      { 'if-none-match': '*' },
    ];
    for (const bad of tampered) {
      expect(bad).not.toBe(url);
      for (const headers of validators) {
        const res = await fetch(bad, { headers });
        expect(res.status, `${bad} ${JSON.stringify(headers)}`).toBe(403);
        // An error is never cached, and nothing of the object leaks.
        expect(res.headers.get('cache-control')).toBe('no-store');
        expect(res.headers.get('etag')).toBeNull();
        expect(res.headers.get('last-modified')).toBeNull();
        await res.arrayBuffer();
      }
    }
    // The untouched URL still works.
    expect((await fetch(url, { headers: { 'if-none-match': etag } })).status).toBe(304);
  });
});

/**
 * LOCAL_SIGNING_SECRET as a list (docs/operations.md, "Key rotation"): the first signs, every one
 * verifies, so nodes mid-rotation accept each other's URLs and URLs already handed out keep
 * working. With one secret, a node restarted with a new one refused every URL of the others (403).
 */
describe('/local-bucket/* during a LOCAL_SIGNING_SECRET rotation', () => {
  const NEW = 'new-local-secret-0123456789';
  const OLD = 'old-local-secret-0123456789';
  let h: Harness;
  let url: URL;
  let key: string;

  beforeAll(async () => {
    h = await startHarness({
      driver: 'local',
      redis: 'memory',
      env: { LOCAL_SIGNING_SECRET: `${NEW},${OLD}` },
    });
    const up = await uploadFile(h, PNG, { name: 'r.png', type: 'image/png' });
    expect(up.errors).toBeUndefined();
    url = new URL(up.data!.uploadImage.signedUrl.url);
    key = up.data!.uploadImage.key;
  });
  afterAll(async () => {
    await h?.close();
  });

  /** The node's URL, signed with `secret` instead (what a node on that secret hands out). */
  const signedWith = (secret: string) => {
    const u = new URL(url);
    const window = { start: Number(u.searchParams.get('s')), end: Number(u.searchParams.get('e')) };
    u.searchParams.set('sig', localSignature(secret, key, window));
    return u.toString();
  };

  it('signs with the first secret and accepts a URL signed with any of them, no other', async () => {
    expect(url.toString()).toBe(signedWith(NEW));
    expect((await fetch(signedWith(NEW))).status).toBe(200);
    expect((await fetch(signedWith(OLD))).status).toBe(200);
    const other = await fetch(signedWith('another-secret-0123456789'));
    expect(other.status).toBe(403);
    expect(((await other.json()) as { error: { code: string } }).error.code).toBe('FORBIDDEN');
  });
});
