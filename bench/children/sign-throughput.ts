// Scenario 5: signatures per second of a built driver's signMany (cos, or s3's SigV4 presigner)
// on one core (the parent pins this process to one CPU with taskset), in batches the hot path uses.
import type * as CosModule from '../../server/src/storage/cos.js';
import type * as S3Module from '../../server/src/storage/s3.js';
import type { Storage } from '../../server/src/storage/storage.js';
import { loadBuilt } from '../lib/product.js';
import { serve } from '../lib/rpc.js';

const { createCosStorage } = await loadBuilt<typeof CosModule>('storage/cos');
const { createS3Storage } = await loadBuilt<typeof S3Module>('storage/s3');

type Params =
  | { driver: 'cos'; secretId: string; secretKey: string; bucket: string; region: string }
  | {
      driver: 's3';
      accessKeyId: string;
      secretAccessKey: string;
      bucket: string;
      region: string;
      endpoint: string;
    };

function storageFor(p: Params): Storage {
  if (p.driver === 's3') {
    return createS3Storage({
      accessKeyId: p.accessKeyId,
      secretAccessKey: p.secretAccessKey,
      bucket: p.bucket,
      region: p.region,
      endpoint: p.endpoint,
      forcePathStyle: false,
    });
  }
  return createCosStorage({
    secretId: p.secretId,
    secretKey: p.secretKey,
    bucket: p.bucket,
    region: p.region,
    domain: '127.0.0.1:9',
    protocol: 'http:',
  });
}

serve({
  run(p: Params & { batch: number; ms: number; rounds: number }) {
    const storage = storageFor(p);
    const keys = Array.from({ length: p.batch }, (_, i) => `b/bench/${i + 1}.png`);
    const nowS = Math.floor(Date.now() / 1000);
    const window = { start: nowS - 60, end: nowS + 3600 };
    // Warm up the JIT before measuring.
    for (let i = 0; i < 200; i++) storage.signMany(keys, window);
    const rates: number[] = [];
    const urlRates: number[] = [];
    // Each batch gets a window of its own (an end within a day: SigV4 URLs live at most 7 days).
    for (let r = 0; r < p.rounds; r++) {
      let n = 0;
      const t = performance.now();
      while (performance.now() - t < p.ms) {
        storage.signMany(keys, { start: window.start, end: window.end + (n % 86_400) });
        n += keys.length;
      }
      rates.push(n / ((performance.now() - t) / 1000));
      // Signing plus building each URL string, as a cache miss does.
      let m = 0;
      const t2 = performance.now();
      while (performance.now() - t2 < p.ms / 2) {
        const w = { start: window.start, end: window.end + (m % 86_400) };
        const sigs = storage.signMany(keys, w);
        for (let i = 0; i < keys.length; i++) storage.urlFor(keys[i]!, { ...w, sig: sigs[i]! });
        m += keys.length;
      }
      urlRates.push(m / ((performance.now() - t2) / 1000));
    }
    return { rates, urlRates };
  },
});
