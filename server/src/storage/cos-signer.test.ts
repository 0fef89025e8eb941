import COS from 'cos-nodejs-sdk-v5';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { cosProcessing } from './cos-processing.js';
import { camSafeUrlEncode, createCosSigner } from './cos-signer.js';
import { OBJECT_CACHE_CONTROL } from './storage.js';
import { type Variant, variantOf } from './variant.js';

const secretId = 'AKIDsignetTestSecretId0000000000';
const secretKey = 'signetTestSecretKey0000000000000';
const window = { start: 1_767_225_600, end: 1_767_229_200 };

/** The SDK's Query for a URL: the cache param, and a variant's processing with an empty value. */
function sdkQuery(variant?: Variant): Record<string, string> {
  return {
    ...(variant ? { [cosProcessing(variant)]: '' } : {}),
    'response-cache-control': OBJECT_CACHE_CONTROL,
  };
}

function sdkAuthorization(key: string, host: string, w = window, variant?: Variant): string {
  return COS.getAuthorization({
    SecretId: secretId,
    SecretKey: secretKey,
    Method: 'get',
    Key: key,
    KeyTime: `${w.start};${w.end}`,
    Query: sdkQuery(variant),
    Headers: { host },
  });
}

/**
 * The query string of the SDK's own presigned URL, cos.getObjectUrl({ Query, Sign: true }), for the
 * window `w`. getObjectUrl takes no KeyTime: it signs from now − 1 s for `Expires` seconds, so the
 * clock is set to `w.start + 1`. Both of its answers (returned, and passed to the callback, which
 * re-encodes q-url-param-list) must agree.
 */
async function sdkObjectUrlQuery(key: string, host: string, w = window, variant?: Variant): Promise<string> {
  vi.useFakeTimers({ toFake: ['Date'], now: (w.start + 1) * 1000 });
  const cos = new COS({ SecretId: secretId, SecretKey: secretKey, Domain: host, Protocol: 'https:' });
  const params = {
    Bucket: 'examplebucket-1250000000',
    Region: 'ap-guangzhou',
    Key: key,
    Query: sdkQuery(variant),
    Sign: true,
    Expires: w.end - w.start,
  };
  let returned = '';
  const called = await new Promise<string>((resolve, reject) => {
    returned = cos.getObjectUrl(params, (err, data) => (err ? reject(err) : resolve(data.Url)));
  });
  vi.useRealTimers();
  const prefix = `https://${host}/`;
  expect(called.startsWith(prefix)).toBe(true);
  if (!variant) {
    expect(called).toBe(returned);
  } else {
    // With the processing in the Query, the callback's URL (which the SDK notes is the form for
    // Cloud Infinite URLs) has q-url-param-list encoded once more than the returned one; both
    // name the same params.
    const list = (url: string) => new URL(url).searchParams.get('q-url-param-list')!;
    expect(decodeURIComponent(list(called))).toBe(list(returned));
    expect(called.replace(/q-url-param-list=[^&]*/, '')).toBe(returned.replace(/q-url-param-list=[^&]*/, ''));
  }
  return called.slice(called.indexOf('?') + 1);
}

const variants = [
  variantOf({ width: 320, height: 320, fit: 'cover', format: 'webp', quality: 75 }),
  variantOf({ width: 1280, height: 1280, fit: 'inside', format: 'webp', quality: 80 }),
  variantOf({ width: 640, height: undefined, fit: 'inside', format: undefined, quality: undefined }),
  variantOf({ width: 400, height: 300, fit: 'contain', format: 'avif', quality: 50 }),
  variantOf({ width: 100, height: 100, fit: 'cover', format: 'png', quality: undefined }),
];

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

  it('signs every window right when its signing key was derived by an earlier batch, and past the bound of windows kept', () => {
    const host = 'examplebucket-1250000000.cos.ap-guangzhou.myqcloud.com';
    const signer = createCosSigner({ secretId, secretKey, host });
    // 70 windows (more than the signer keeps derived), each asked twice, interleaved with others.
    const windows = Array.from({ length: 70 }, (_, i) => ({
      start: window.start + i * 60,
      end: window.end + i * 60,
    }));
    for (const w of [...windows, ...windows.slice(0, 20), windows[69]!, windows[3]!]) {
      const [sig] = signer.signMany(['users/u1/2026/01/photo.png'], w);
      expect(signer.query('users/u1/2026/01/photo.png', { ...w, sig: sig! })).toBe(
        `${sdkAuthorization('users/u1/2026/01/photo.png', host, w)}&response-cache-control=${camSafeUrlEncode(OBJECT_CACHE_CONTROL)}`,
      );
    }
  });

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

  it('signs variants like COS.getAuthorization with the processing in the Query, byte for byte', () => {
    const host = 'examplebucket-1250000000.cos.ap-guangzhou.myqcloud.com';
    const signer = createCosSigner({ secretId, secretKey, host });
    // Originals and variants mixed in one batch, in the order the hot path hands them over.
    const batchKeys = keys.flatMap((k) => [k, ...variants.map(() => k)]);
    const batchVariants = keys.flatMap(() => [undefined, ...variants]);
    const sigs = signer.signMany(batchKeys, window, batchVariants);
    batchKeys.forEach((key, i) => {
      const v = batchVariants[i];
      const auth = sdkAuthorization(key, host, window, v);
      expect(sigs[i]).toBe(auth.replace(/^.*q-signature=/, ''));
      if (v) {
        // The same params as the SDK signs: the processing (lower-cased, encoded) and the cache.
        expect(auth).toContain(
          `q-url-param-list=${camSafeUrlEncode(cosProcessing(v)).toLowerCase()};response-cache-control&`,
        );
      }
    });
    // An original in a batch with variants signs as in a batch of originals.
    expect(sigs[0]).toBe(signer.signMany([keys[0]!], window)[0]);
  });

  it("builds a variant's URL query exactly like the SDK's getObjectUrl with that Query", async () => {
    for (const host of ['examplebucket-1250000000.cos.ap-guangzhou.myqcloud.com', '127.0.0.1:9000']) {
      const signer = createCosSigner({ secretId, secretKey, host });
      for (const v of variants) {
        for (const key of ['a.jpg', 'unicode/相册/фото €.webp']) {
          const [sig] = signer.signMany([key], window, [v]);
          expect(signer.query(key, { ...window, sig: sig! }, v)).toBe(
            await sdkObjectUrlQuery(key, host, window, v),
          );
        }
      }
    }
  });

  it('signs the processing: another variant, or none, is another signature', () => {
    const signer = createCosSigner({ secretId, secretKey, host: 'h.example' });
    const all = signer.signMany(
      variants.map(() => 'k.jpg'),
      window,
      variants,
    );
    const [original] = signer.signMany(['k.jpg'], window);
    expect(new Set([...all, original]).size).toBe(variants.length + 1);
    // A quality changed by one, or the crop dropped, is a different HttpString.
    const q76 = variantOf({ width: 320, height: 320, fit: 'cover', format: 'webp', quality: 76 });
    expect(signer.signMany(['k.jpg'], window, [q76])[0]).not.toBe(all[0]);
    const params = new URLSearchParams(signer.query('k.jpg', { ...window, sig: all[0]! }, variants[0]));
    expect(params.get(cosProcessing(variants[0]!))).toBe('');
    expect(params.get('response-cache-control')).toBe(OBJECT_CACHE_CONTROL);
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
