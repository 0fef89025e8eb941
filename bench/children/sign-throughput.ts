// Scenario 5: signatures per second of the built cos driver's signMany on one core (the parent
// pins this process to one CPU with taskset), in batches the hot path uses.
import { generateKeyPairSync } from 'node:crypto';
import type * as CloudFrontModule from '../../server/src/storage/cdn/cloudfront.js';
import type * as TencentModule from '../../server/src/storage/cdn/tencent-cdn.js';
import type * as WithCdnModule from '../../server/src/storage/cdn/with-cdn.js';
import type * as CosModule from '../../server/src/storage/cos.js';
import type * as S3Module from '../../server/src/storage/s3.js';
import type { Storage } from '../../server/src/storage/storage.js';
import type * as VariantModule from '../../server/src/storage/variant.js';
import { loadBuilt } from '../lib/product.js';
import { serve } from '../lib/rpc.js';

const { createCosStorage } = await loadBuilt<typeof CosModule>('storage/cos');
const { createS3Storage } = await loadBuilt<typeof S3Module>('storage/s3');
const { createTencentCdnSigner } = await loadBuilt<typeof TencentModule>('storage/cdn/tencent-cdn');
const { createCloudFrontSigner } = await loadBuilt<typeof CloudFrontModule>('storage/cdn/cloudfront');
const { withCdn } = await loadBuilt<typeof WithCdnModule>('storage/cdn/with-cdn');

/** Signatures per second of `signMany` over `keys`, a fresh window per call (as each step has). */
function rate(storage: Storage, keys: string[], ms: number): number {
  const nowS = Math.floor(Date.now() / 1000);
  let n = 0;
  const t = performance.now();
  while (performance.now() - t < ms) {
    storage.signMany(keys, { start: nowS - 60 + n, end: nowS + 3600 + n });
    n += keys.length;
  }
  return n / ((performance.now() - t) / 1000);
}
const { variantOf } = await loadBuilt<typeof VariantModule>('storage/variant');

// The default presets (IMAGE_PRESETS, docs/architecture.md "Variants"): every variant adds the processing parameter to the signature.
const thumb = variantOf({ width: 320, height: 320, fit: 'cover', format: 'webp', quality: 75 });
const medium = variantOf({ width: 1280, height: 1280, fit: 'inside', format: 'webp', quality: 80 });

serve({
  /** The s3 driver's bulk SigV4 presigner: signatures per second, and with the URL strings built. */
  s3(p: {
    accessKeyId: string;
    secretAccessKey: string;
    bucket: string;
    region: string;
    endpoint: string;
    batch: number;
    ms: number;
    rounds: number;
  }) {
    const storage = createS3Storage({ ...p, forcePathStyle: false });
    const keys = Array.from({ length: p.batch }, (_, i) => `b/bench/${i + 1}.png`);
    const nowS = Math.floor(Date.now() / 1000);
    const window = { start: nowS - 60, end: nowS + 3600 };
    for (let i = 0; i < 200; i++) storage.signMany(keys, window); // JIT warm-up
    const rates: number[] = [];
    const urlRates: number[] = [];
    // Each batch gets a window of its own (an end within a day: SigV4 URLs live at most 7 days).
    for (let r = 0; r < p.rounds; r++) {
      rates.push(rate(storage, keys, p.ms));
      let m = 0;
      const t = performance.now();
      // The signature written out, as the signer builds it: `{ ...w, sig }` is V8's slow path and
      // measured the bench's own object more than the URL (docs/benchmarks.md, finding 33).
      while (performance.now() - t < p.ms / 2) {
        const w = { start: window.start, end: window.end + (m % 86_400) };
        const sigs = storage.signMany(keys, w);
        for (let i = 0; i < keys.length; i++)
          storage.urlFor(keys[i]!, { start: w.start, end: w.end, sig: sigs[i]! });
        m += keys.length;
      }
      urlRates.push(m / ((performance.now() - t) / 1000));
    }
    return { rates, urlRates };
  },

  /**
   * The CDN signers, each wrapping the cos driver as `CDN_DOMAIN` does: signatures per second on
   * this core for each type (CloudFront: RSA-SHA1 with a 2048-bit key, as AWS asks for).
   */
  cdn(p: {
    secretId: string;
    secretKey: string;
    bucket: string;
    region: string;
    batch: number;
    ms: number;
    rounds: number;
  }) {
    const cos = createCosStorage({ ...p, domain: '127.0.0.1:9', protocol: 'http:' });
    const domain = 'https://cdn.bench.example';
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const types = ['tencent-a', 'tencent-b', 'tencent-c', 'tencent-d'] as const;
    const stores: Record<string, Storage> = {
      cloudfront: withCdn(cos, createCloudFrontSigner({ domain, keyPairId: 'KBENCHMARK', privateKey })),
    };
    for (const type of types) {
      stores[type] = withCdn(
        cos,
        createTencentCdnSigner({
          type,
          domain,
          key: 'benchKey0123456789',
          signParam: 'sign',
          timeParam: 't',
        }),
      );
    }
    const keys = Array.from({ length: p.batch }, (_, i) => `b/bench/${i + 1}.png`);
    const rates: Record<string, number[]> = {};
    for (const [type, storage] of Object.entries(stores)) {
      // RSA is ~1,000x slower than MD5: a shorter batch keeps each round near `ms`.
      const batch = type === 'cloudfront' ? keys.slice(0, 10) : keys;
      for (let i = 0; i < 20; i++) storage.signMany(batch, { start: i, end: i + 3660 }); // JIT warm-up
      rates[type] = Array.from({ length: p.rounds }, () => rate(storage, batch, p.ms));
    }
    return rates;
  },

  run(p: {
    secretId: string;
    secretKey: string;
    bucket: string;
    region: string;
    batch: number;
    ms: number;
    rounds: number;
  }) {
    const storage = createCosStorage({
      secretId: p.secretId,
      secretKey: p.secretKey,
      bucket: p.bucket,
      region: p.region,
      domain: '127.0.0.1:9',
      protocol: 'http:',
    });
    const keys = Array.from({ length: p.batch }, (_, i) => `b/bench/${i + 1}.png`);
    const nowS = Math.floor(Date.now() / 1000);
    const window = { start: nowS - 60, end: nowS + 3600 };
    // Variants: a page of thumbnails (every key a variant), and a page asking for the original,
    // `thumb` and `medium` of each image (one third originals), as one bulk call each.
    const thumbs = keys.map(() => thumb);
    const mixedKeys = keys.flatMap((k) => [k, k, k]);
    const mixed = keys.flatMap(() => [undefined, thumb, medium]);
    // Warm up the JIT before measuring.
    for (let i = 0; i < 200; i++) {
      storage.signMany(keys, window);
      storage.signMany(keys, window, thumbs);
      storage.signMany(mixedKeys, window, mixed);
    }
    const rates: number[] = [];
    const urlRates: number[] = [];
    const variantRates: number[] = [];
    const mixedRates: number[] = [];
    const variantUrlRates: number[] = [];
    for (let r = 0; r < p.rounds; r++) {
      let n = 0;
      const t = performance.now();
      while (performance.now() - t < p.ms) {
        storage.signMany(keys, { start: window.start, end: window.end + n });
        n += keys.length;
      }
      rates.push(n / ((performance.now() - t) / 1000));
      // Signing plus building each URL string, as a cache miss does.
      let m = 0;
      const t2 = performance.now();
      while (performance.now() - t2 < p.ms / 2) {
        const w = { start: window.start, end: window.end + m };
        const sigs = storage.signMany(keys, w);
        for (let i = 0; i < keys.length; i++)
          storage.urlFor(keys[i]!, { start: w.start, end: w.end, sig: sigs[i]! });
        m += keys.length;
      }
      urlRates.push(m / ((performance.now() - t2) / 1000));

      let v = 0;
      const t3 = performance.now();
      while (performance.now() - t3 < p.ms) {
        storage.signMany(keys, { start: window.start, end: window.end + v }, thumbs);
        v += keys.length;
      }
      variantRates.push(v / ((performance.now() - t3) / 1000));

      let x = 0;
      const t4 = performance.now();
      while (performance.now() - t4 < p.ms) {
        storage.signMany(mixedKeys, { start: window.start, end: window.end + x }, mixed);
        x += mixedKeys.length;
      }
      mixedRates.push(x / ((performance.now() - t4) / 1000));

      let u = 0;
      const t5 = performance.now();
      while (performance.now() - t5 < p.ms / 2) {
        const w = { start: window.start, end: window.end + u };
        const sigs = storage.signMany(keys, w, thumbs);
        for (let i = 0; i < keys.length; i++)
          storage.urlFor(keys[i]!, { start: w.start, end: w.end, sig: sigs[i]! }, thumb);
        u += keys.length;
      }
      variantUrlRates.push(u / ((performance.now() - t5) / 1000));
    }
    return { rates, urlRates, variantRates, mixedRates, variantUrlRates };
  },
});
