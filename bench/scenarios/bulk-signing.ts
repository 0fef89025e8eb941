import type { Bench, Section } from '../lib/bench.js';
import { COS, S3 } from '../lib/config.js';
import { run } from '../lib/processes.js';
import { RpcChild } from '../lib/rpc.js';
import { median } from '../lib/stats.js';

type Rates = { rates: number[]; urlRates: number[] };

const DRIVERS = [
  { driver: 'cos', params: { driver: 'cos', ...COS }, what: 'cos driver signMany on one core' },
  {
    driver: 's3',
    params: { driver: 's3', ...S3 },
    what: 's3 driver signMany (SigV4 query presigning) on one core',
  },
] as const;

/**
 * Scenario 5: signatures per second of each object-store driver's signMany (cos; s3's bulk SigV4
 * presigner), in a process pinned to one CPU (taskset), nothing else of the benchmark running
 * yet. Batches of 100 (a page) and 500 (a refresh batch).
 */
export async function bulkSigning(settings: Pick<Bench, 'quick' | 'log'>): Promise<Section> {
  const child = RpcChild.start('sign-throughput.ts');
  try {
    // All threads of the helper on CPU 0: "one core" holds for GC and libuv threads too.
    await run('taskset', ['-a', '-cp', '0', String(child.pid)]);
    const fmt = (n: number) => `${Math.round(n).toLocaleString('en-US')}/s`;
    const rows: Section['rows'] = [];
    const details: Record<string, Record<number, Rates>> = {};
    for (const [i, d] of DRIVERS.entries()) {
      const results: Record<number, Rates> = {};
      for (const batch of [100, 500]) {
        results[batch] = await child.call('run', {
          ...d.params,
          batch,
          ms: settings.quick ? 500 : 2000,
          rounds: settings.quick ? 3 : 5,
        });
      }
      const page = median(results[100]!.rates);
      const refresh = median(results[500]!.rates);
      const withUrls = median(results[100]!.urlRates);
      settings.log(
        `  ${d.driver}: ${fmt(page)} (batch 100), ${fmt(refresh)} (batch 500), ${fmt(withUrls)} with URLs`,
      );
      rows.push({
        id: i === 0 ? '5' : `5${d.driver}`,
        what: d.what,
        figure: `${fmt(page)} in batches of 100, ${fmt(refresh)} in batches of 500; ${fmt(withUrls)} including building the URL strings`,
        target: '≥ 100,000/s',
        pass: Math.min(page, refresh) >= 100_000,
      });
      details[d.driver] = results;
    }
    return { id: '5', title: 'Bulk signing', rows, details };
  } finally {
    await child.stop();
  }
}
