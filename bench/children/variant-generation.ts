// Scenario 13: local variant generation on one core (the parent pins this process and all its
// threads, libvips' included, to one CPU with taskset). The built LocalVariants over the built
// local driver, in a fresh DATA_DIR: each request is the first for its variant, so each one reads
// the original, renders it and writes the variant, as /local-bucket does on a first request.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type * as MetricsModule from '../../server/src/metrics.js';
import type * as LocalModule from '../../server/src/storage/local.js';
import type * as VariantsModule from '../../server/src/storage/local-variants.js';
import type * as RenderModule from '../../server/src/storage/render-variant.js';
import type * as VariantModule from '../../server/src/storage/variant.js';
import { makePhoto } from '../../server/test/fixtures/photos.js';
import { loadBuilt } from '../lib/product.js';
import { serve } from '../lib/rpc.js';

const { createLocalStorage, ensureLocalBucket } = await loadBuilt<typeof LocalModule>('storage/local');
const { LocalVariants } = await loadBuilt<typeof VariantsModule>('storage/local-variants');
const { createVariantRenderer } = await loadBuilt<typeof RenderModule>('storage/render-variant');
const { createMetrics } = await loadBuilt<typeof MetricsModule>('metrics');
const { variantOf } = await loadBuilt<typeof VariantModule>('storage/variant');

serve({
  async run(p: { images: number; width: number; height: number }) {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'signet-bench-variants-'));
    try {
      // As a node's start does: the driver never makes its bucket folder itself.
      await ensureLocalBucket(path.join(dir, 'bucket'));
      const storage = createLocalStorage({
        root: path.join(dir, 'bucket'),
        publicUrl: 'http://127.0.0.1:9',
        secret: 'bench',
        variantsRoot: path.join(dir, 'variants'),
      });
      const metrics = createMetrics();
      const variants = new LocalVariants(
        {
          storage,
          // One render at a time: one core. The config's defaults otherwise.
          renderer: createVariantRenderer({
            maxInputPixels: 100_000_000,
            maxInputBytes: 20 * 1024 * 1024,
            maxOutputDimension: 4096,
            timeoutSeconds: 20,
            concurrency: 1,
            maxQueue: 64,
          }),
          metrics,
          logger: { warn: () => {} },
        },
        path.join(dir, 'variants'),
      );
      // Distinct originals (different noise), so no cache anywhere helps.
      const originalBytes: number[] = [];
      for (let i = 0; i < p.images; i++) {
        const photo = await makePhoto(p.width, p.height);
        originalBytes.push(photo.length);
        await storage.put(`u/bench/${i}.jpg`, photo, 'image/jpeg');
      }
      const thumb = variantOf({ width: 320, height: 320, fit: 'cover', format: 'webp', quality: 75 });
      const warm = variantOf({ width: 300, height: 300, fit: 'cover', format: 'webp', quality: 75 });
      // Warm-up (libvips' and the JIT's first call), not measured.
      await variants.get('u/bench/0.jpg', warm);

      const firstMs: number[] = [];
      const variantBytes: number[] = [];
      const t = performance.now();
      // CPU time of the whole process (libvips' threads included): what a render costs the core,
      // whatever else the machine runs meanwhile.
      const cpu = process.cpuUsage();
      for (let i = 0; i < p.images; i++) {
        const s = performance.now();
        const v = await variants.get(`u/bench/${i}.jpg`, thumb);
        firstMs.push(performance.now() - s);
        variantBytes.push(v.size);
      }
      const seconds = (performance.now() - t) / 1000;
      const used = process.cpuUsage(cpu);
      const cpuMsPerImage = (used.user + used.system) / 1000 / p.images;
      // A second request of each: from disk.
      const againMs: number[] = [];
      for (let i = 0; i < p.images; i++) {
        const s = performance.now();
        await variants.get(`u/bench/${i}.jpg`, thumb);
        againMs.push(performance.now() - s);
      }
      const made = (await metrics.localVariantsMade.get()).values.find((x) => x.labels.result === 'ok');
      return {
        imagesPerSecond: p.images / seconds,
        cpuMsPerImage,
        firstMs,
        againMs,
        originalBytes,
        variantBytes,
        made: made?.value ?? 0,
      };
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  },
});
