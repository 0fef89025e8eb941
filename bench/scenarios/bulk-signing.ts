import type { Bench, Section } from '../lib/bench.js';
import { COS, S3 } from '../lib/config.js';
import { run } from '../lib/processes.js';
import { RpcChild } from '../lib/rpc.js';
import { median } from '../lib/stats.js';

/**
 * Scenario 5: signatures per second of the cos driver's signMany, in a process pinned to one CPU
 * (taskset), nothing else of the benchmark running yet. Batches of 100 (a page) and 500 (a
 * refresh batch) of originals; with variants (each signs its Cloud Infinite processing too): a
 * page of 100 `thumb`s, and a page of 100 images × (original, `thumb`, `medium`) in one call.
 */
export async function bulkSigning(settings: Pick<Bench, 'quick' | 'log'>): Promise<Section> {
  const child = RpcChild.start('sign-throughput.ts');
  try {
    // All threads of the helper on CPU 0: "one core" holds for GC and libuv threads too.
    await run('taskset', ['-a', '-cp', '0', String(child.pid)]);
    const results: Record<
      number,
      {
        rates: number[];
        urlRates: number[];
        variantRates: number[];
        mixedRates: number[];
        variantUrlRates: number[];
      }
    > = {};
    for (const batch of [100, 500]) {
      results[batch] = await child.call('run', {
        ...COS,
        batch,
        ms: settings.quick ? 120 : 2000,
        rounds: settings.quick ? 3 : 5,
      });
    }
    // The CDN signers (CDN_DOMAIN + CDN_AUTH_TYPE), each over the cos driver, batches of 100.
    const cdn: Record<string, number[]> = await child.call('cdn', {
      ...COS,
      batch: 100,
      ms: settings.quick ? 80 : 1000,
      rounds: settings.quick ? 3 : 5,
    });
    // The s3 driver's bulk SigV4 presigner, batches of 100 and 500.
    const s3: Record<number, { rates: number[]; urlRates: number[] }> = {};
    for (const batch of [100, 500]) {
      s3[batch] = await child.call('s3', {
        ...S3,
        batch,
        ms: settings.quick ? 120 : 2000,
        rounds: settings.quick ? 3 : 5,
      });
    }
    const s3Page = median(s3[100]!.rates);
    const s3Refresh = median(s3[500]!.rates);
    const s3Urls = median(s3[100]!.urlRates);
    const page = median(results[100]!.rates);
    const refresh = median(results[500]!.rates);
    const withUrls = median(results[100]!.urlRates);
    const variants = median(results[100]!.variantRates);
    const mixed = median(results[100]!.mixedRates);
    const variantUrls = median(results[100]!.variantUrlRates);
    const fmt = (n: number) => `${Math.round(n).toLocaleString('en-US')}/s`;
    settings.log(`  ${fmt(page)} (batch 100), ${fmt(refresh)} (batch 500), ${fmt(withUrls)} with URLs`);
    const cdnRates = Object.entries(cdn).map(([type, r]) => `${type} ${fmt(median(r))}`);
    settings.log(`  CDN signers: ${cdnRates.join(', ')}`);
    settings.log(
      `  variants: ${fmt(variants)} (100 thumbs), ${fmt(mixed)} (100 × original+thumb+medium), ${fmt(variantUrls)} thumbs with URLs`,
    );
    return {
      id: '5',
      title: 'Bulk signing',
      rows: [
        {
          id: '5',
          what: 'cos driver signMany on one core',
          figure: `${fmt(page)} in batches of 100, ${fmt(refresh)} in batches of 500; ${fmt(withUrls)} including building the URL strings`,
          target: '≥ 100,000/s',
          pass: Math.min(page, refresh) >= 100_000,
        },
        {
          id: '5s3',
          what: 's3 driver signMany (SigV4 query presigning) on one core',
          figure: `${fmt(s3Page)} in batches of 100, ${fmt(s3Refresh)} in batches of 500; ${fmt(s3Urls)} including building the URL strings`,
          target: '≥ 100,000/s',
          pass: Math.min(s3Page, s3Refresh) >= 100_000,
        },
        {
          id: '5-cdn',
          what: 'CDN signers (over the cos driver) signMany on one core',
          figure: cdnRates.join(', '),
          target: 'reported',
          pass: true,
        },
        {
          id: '5v',
          what: 'cos driver signMany with variants (processing signed) on one core',
          figure: `${fmt(variants)} for a page of 100 thumbs, ${fmt(mixed)} for 100 images × (original, thumb, medium); ${fmt(variantUrls)} thumbs including the URL strings`,
          target: '≥ 100,000/s',
          pass: Math.min(variants, mixed) >= 100_000,
        },
      ],
      details: { ...results, cdn, s3 },
    };
  } finally {
    await child.stop();
  }
}
