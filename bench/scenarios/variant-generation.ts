import type { Bench, Section } from '../lib/bench.js';
import { productEnvOverInherited } from '../lib/config.js';
import { run } from '../lib/processes.js';
import { RpcChild } from '../lib/rpc.js';
import { median } from '../lib/stats.js';

interface ChildResult {
  imagesPerSecond: number;
  cpuMsPerImage: number;
  firstMs: number[];
  againMs: number[];
  originalBytes: number[];
  variantBytes: number[];
  made: number;
}

/**
 * Scenario 13: the local driver making `thumb` (320×320 cover WebP q75) of 2400×1600 JPEGs on
 * their first request, in a process pinned to one CPU (taskset), before anything else of the
 * benchmark starts: images per second and the first request's p50; the second request of each
 * (served from disk) for comparison.
 */
export async function variantGeneration(settings: Pick<Bench, 'quick' | 'log'>): Promise<Section> {
  // With the server's environment (PRODUCT_ENV): the arenas its libvips threads allocate from.
  const child = RpcChild.start('variant-generation.ts', { env: productEnvOverInherited() });
  try {
    // All threads of the helper on CPU 0: libvips' worker threads and libuv's pool too.
    await run('taskset', ['-a', '-cp', '0', String(child.pid)]);
    const images = settings.quick ? 8 : 24;
    const r = await child.call<ChildResult>('run', { images, width: 2400, height: 1600 });
    if (r.made !== images + 1)
      throw new Error(`expected ${images + 1} variants made, the metric says ${r.made}`);
    const p50 = median(r.firstMs);
    const again = median(r.againMs);
    const ratio = r.variantBytes.reduce((a, b) => a + b, 0) / r.originalBytes.reduce((a, b) => a + b, 0);
    const kb = (n: number) => `${Math.round(n / 1024)} KiB`;
    settings.log(
      `  ${r.imagesPerSecond.toFixed(1)} images/s (CPU ${r.cpuMsPerImage.toFixed(0)} ms each), first request p50 ${p50.toFixed(0)} ms, from disk ${again.toFixed(2)} ms`,
    );
    return {
      id: '13',
      title: 'Local variant generation',
      rows: [
        {
          id: '13',
          what: 'local driver: thumb (320×320 cover WebP q75) of a 2400×1600 JPEG on its first request, one core',
          figure: `${r.imagesPerSecond.toFixed(1)} images/s (${r.cpuMsPerImage.toFixed(0)} ms of CPU each); first request p50 ${p50.toFixed(0)} ms (second, from disk: ${again.toFixed(2)} ms); variants ${(ratio * 100).toFixed(2)}% of the originals' bytes (${kb(median(r.originalBytes))} → ${kb(median(r.variantBytes))})`,
          target: 'reported',
          pass: null,
        },
      ],
      details: r as unknown as Record<string, unknown>,
    };
  } finally {
    await child.stop();
  }
}
