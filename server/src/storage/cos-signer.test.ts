import COS from 'cos-nodejs-sdk-v5';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { camSafeUrlEncode, createCosSigner } from './cos-signer.js';
import { OBJECT_CACHE_CONTROL } from './storage.js';

const secretId = 'AKIDsignetTestSecretId0000000000';
const secretKey = 'signetTestSecretKey0000000000000';
const window = { start: 1_767_225_600, end: 1_767_229_200 };

function sdkAuthorization(key: string, host: string, w = window): string {
  return COS.getAuthorization({
    SecretId: secretId,
    SecretKey: secretKey,
    Method: 'get',
    Key: key,
    KeyTime: `${w.start};${w.end}`,
    Query: { 'response-cache-control': OBJECT_CACHE_CONTROL },
    Headers: { host },
  });
}

/**
 * The query string of the SDK's own presigned URL, cos.getObjectUrl({ Query, Sign: true }), for the
 * window `w`. getObjectUrl takes no KeyTime: it signs from now − 1 s for `Expires` seconds, so the
 * clock is set to `w.start + 1`. Both of its answers (returned, and passed to the callback, which
 * re-encodes q-url-param-list) must agree.
 */
async function sdkObjectUrlQuery(key: string, host: string, w = window): Promise<string> {
  vi.useFakeTimers({ toFake: ['Date'], now: (w.start + 1) * 1000 });
  const cos = new COS({ SecretId: secretId, SecretKey: secretKey, Domain: host, Protocol: 'https:' });
  const params = {
    Bucket: 'examplebucket-1250000000',
    Region: 'ap-guangzhou',
    Key: key,
    Query: { 'response-cache-control': OBJECT_CACHE_CONTROL },
    Sign: true,
    Expires: w.end - w.start,
  };
  let returned = '';
  const called = await new Promise<string>((resolve, reject) => {
    returned = cos.getObjectUrl(params, (err, data) => (err ? reject(err) : resolve(data.Url)));
  });
  vi.useRealTimers();
  expect(called).toBe(returned);
  const prefix = `https://${host}/`;
  expect(returned.startsWith(prefix)).toBe(true);
  return returned.slice(returned.indexOf('?') + 1);
}

afterEach(() => {
  vi.useRealTimers();
});

const keys = [
  'a.jpg',
  'users/u1/2026/01/photo.png',
  'with space/and+plus.jpg',
  'unicode/相册/фото €.webp',
  "odd!'()*~chars.gif",
  'deep/a/b/c/d/e/f/g.bin',
];

describe('createCosSigner', () => {
  for (const host of ['examplebucket-1250000000.cos.ap-guangzhou.myqcloud.com', '127.0.0.1:9000']) {
    it(`matches COS.getAuthorization byte for byte (host ${host})`, () => {
      const signer = createCosSigner({ secretId, secretKey, host });
      const sigs = signer.signMany(keys, window);
      expect(sigs).toHaveLength(keys.length);
      keys.forEach((key, i) => {
        const sig = sigs[i]!;
        expect(sig).toMatch(/^[0-9a-f]{40}$/);
        const query = signer.query(key, { ...window, sig });
        // The SDK's Authorization string, with the signed param appended as a URL carries it.
        expect(query).toBe(
          `${sdkAuthorization(key, host)}&response-cache-control=${camSafeUrlEncode(OBJECT_CACHE_CONTROL)}`,
        );
      });
    });

    it(`matches the query of the SDK's getObjectUrl with the same Query, byte for byte (host ${host})`, async () => {
      const signer = createCosSigner({ secretId, secretKey, host });
      const sigs = signer.signMany(keys, window);
      for (const [i, key] of keys.entries()) {
        const ours = signer.query(key, { ...window, sig: sigs[i]! });
        expect(ours).toBe(await sdkObjectUrlQuery(key, host));
      }
      // Another window: the SDK's clock really moved, and so did both answers.
      const later = { start: window.start + 86_400, end: window.end + 86_400 };
      const [sig] = signer.signMany(['a.jpg'], later);
      expect(signer.query('a.jpg', { ...later, sig: sig! })).toBe(
        await sdkObjectUrlQuery('a.jpg', host, later),
      );
    });
  }

  it('signs response-cache-control: one a year long, private and immutable, in the URL and the signature', () => {
    expect(OBJECT_CACHE_CONTROL).toBe('private, max-age=31536000, immutable');
    const signer = createCosSigner({ secretId, secretKey, host: 'h.example' });
    const [sig] = signer.signMany(['k.jpg'], window);
    const params = new URLSearchParams(signer.query('k.jpg', { ...window, sig: sig! }));
    expect(params.get('q-url-param-list')).toBe('response-cache-control');
    expect(params.get('response-cache-control')).toBe(OBJECT_CACHE_CONTROL);
    // The signature is the one over the param: without it, or with another value, it differs.
    const over = (query: Record<string, string>) =>
      COS.getAuthorization({
        SecretId: secretId,
        SecretKey: secretKey,
        Method: 'get',
        Key: 'k.jpg',
        KeyTime: `${window.start};${window.end}`,
        Query: query,
        Headers: { host: 'h.example' },
      }).replace(/^.*q-signature=/, '');
    expect(sig).toBe(over({ 'response-cache-control': OBJECT_CACHE_CONTROL }));
    expect(sig).not.toBe(over({}));
    expect(sig).not.toBe(over({ 'response-cache-control': 'private, max-age=0' }));
  });

  it('changes with the window, the key and the host', () => {
    const signer = createCosSigner({ secretId, secretKey, host: 'h.example' });
    const [a] = signer.signMany(['k'], window);
    const [b] = signer.signMany(['k'], { start: window.start, end: window.end + 1 });
    const [c] = signer.signMany(['k2'], window);
    const [d] = createCosSigner({ secretId, secretKey, host: 'other.example' }).signMany(['k'], window);
    expect(new Set([a, b, c, d]).size).toBe(4);
  });

  it('signs 10,000 keys in one batch', async () => {
    const signer = createCosSigner({ secretId, secretKey, host: 'h.example' });
    const many = Array.from({ length: 10_000 }, (_, i) => `images/${i}.jpg`);
    const started = performance.now();
    const sigs = signer.signMany(many, window);
    const ms = performance.now() - started;
    expect(sigs).toHaveLength(10_000);
    expect(new Set(sigs).size).toBe(10_000);
    // Spot-check against the SDK and keep a generous ceiling (typically ~20 ms).
    expect(signer.query(many[4321]!, { ...window, sig: sigs[4321]! })).toBe(
      await sdkObjectUrlQuery(many[4321]!, 'h.example'),
    );
    expect(ms).toBeLessThan(2_000);
  });

  it('encodes like the SDK', () => {
    expect(camSafeUrlEncode("a b!'()*~/:")).toBe('a%20b%21%27%28%29%2A~%2F%3A');
  });
});
