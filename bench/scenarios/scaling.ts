import type { HttpResult } from '../children/loadgen.js';
import {
  authHeaders,
  type Bench,
  fetchPage,
  fmt,
  http,
  type OwnerKey,
  pageBody,
  type Section,
} from '../lib/bench.js';
import { OWNERS } from '../lib/config.js';
import { median } from '../lib/stats.js';
import { CONCURRENCY, checkStatus } from './warm-page.js';

const PAGE_SIZES = [10, 25, 50, 100];
const DATA_SETS: OwnerKey[] = ['small', 'main', 'large'];
/** Pages per data set, spread evenly from the newest to the oldest image (deep keyset pages too). */
const SPREAD = 10;

/** Microseconds of the whole machine per URL delivered: all of it serves this one load. */
const usPerUrl = (r: HttpResult, pageSize: number) => 1e6 / (r.rps * pageSize);

/**
 * Scenario 11: the warm page at every page size (against the ceiling at that size) and over
 * data sets of 1k, 10k and 100k images. Cost per URL = machine time per URL delivered.
 */
export async function scaling(b: Bench): Promise<Section> {
  const seconds = b.quick ? 0.6 : Math.max(3, Math.round(b.seconds / 2));
  const rounds = b.quick ? 1 : b.rounds;
  const run = (url: string, bodies: string[], token: string) =>
    http(b, {
      url: `${url}/graphql`,
      method: 'POST',
      headers: authHeaders(token),
      bodies,
      connections: CONCURRENCY,
      durationS: seconds,
    });

  // Page sizes: gateway and ceiling alternate at each size.
  const bySize: Record<number, { gateway: HttpResult[]; ceiling: HttpResult[] }> = {};
  for (const size of PAGE_SIZES) {
    await fetchPage(b.gateway.url, b.tokens.main, size);
    bySize[size] = { gateway: [], ceiling: [] };
  }
  for (let round = 0; round < rounds; round++) {
    for (const size of PAGE_SIZES) {
      bySize[size]!.gateway.push(await run(b.gateway.url, [pageBody(size)], b.tokens.main));
      bySize[size]!.ceiling.push(await run(b.ceiling.url, [pageBody(size)], b.tokens.main));
    }
  }

  // Data sets: the same page size over pages spread across each owner's images, all warm.
  const bodies = {} as Record<OwnerKey, string[]>;
  for (const key of DATA_SETS) {
    const rows = b.rows[key];
    const step = Math.floor(rows.ids.length / SPREAD);
    bodies[key] = Array.from({ length: SPREAD }, (_, i) =>
      i === 0 ? pageBody(100) : pageBody(100, rows.cursors[i * step - 1]),
    );
    for (let i = 0; i < SPREAD; i++) {
      const after = i === 0 ? undefined : rows.cursors[i * step - 1];
      await fetchPage(b.gateway.url, b.tokens[key], 100, after);
    }
  }
  const byData = {} as Record<OwnerKey, HttpResult[]>;
  for (const key of DATA_SETS) byData[key] = [];
  for (let round = 0; round < rounds; round++) {
    for (const key of DATA_SETS) byData[key].push(await run(b.gateway.url, bodies[key], b.tokens[key]));
  }
  for (const runs of [
    ...Object.values(bySize).flatMap((s) => [s.gateway, s.ceiling]),
    ...Object.values(byData),
  ])
    checkStatus(runs, 200, 'scaling');

  const sizes = PAGE_SIZES.map((size) => {
    const s = bySize[size]!;
    const rps = median(s.gateway.map((r) => r.rps));
    return {
      size,
      rps,
      p50: median(s.gateway.map((r) => r.p50)),
      usPerUrl: median(s.gateway.map((r) => usPerUrl(r, size))),
      ceilingRps: median(s.ceiling.map((r) => r.rps)),
      ofCeiling: median(s.gateway.map((r, i) => r.rps / s.ceiling[i]!.rps)),
    };
  });
  const data = DATA_SETS.map((key) => ({
    images: OWNERS[key].count,
    rps: median(byData[key].map((r) => r.rps)),
    p50: median(byData[key].map((r) => r.p50)),
    usPerUrl: median(byData[key].map((r) => usPerUrl(r, 100))),
  }));
  // Paired per round: the largest data set against the smallest, measured back to back.
  const growth = median(byData.large.map((r, i) => byData.small[i]!.rps / r.rps));
  const sizeFigure = sizes
    .map((s) => `${s.size}: ${s.usPerUrl.toFixed(1)} µs/URL (${fmt.pct(s.ofCeiling)} of ceiling)`)
    .join(', ');
  const dataFigure = data.map((d) => `${fmt.int(d.images)}: ${d.usPerUrl.toFixed(1)} µs/URL`).join(', ');
  b.log(`  page sizes ${sizeFigure}`);
  b.log(`  data sets ${dataFigure}; 100k/1k cost ${growth.toFixed(2)}×`);
  return {
    id: '11',
    title: 'Scaling curve',
    rows: [
      {
        id: '11a',
        what: 'Cost per URL by page size (warm)',
        figure: sizeFigure,
        target: 'reported',
        pass: null,
      },
      {
        id: '11b',
        what: 'Cost per URL by data set (page 100, 10 pages spread over the set)',
        figure: `${dataFigure}; 100k vs 1k: ${growth.toFixed(2)}×`,
        target: 'does not grow with the data set (100k/1k ≤ 1.15×, noise allowance)',
        pass: growth <= 1.15,
      },
    ],
    details: { concurrency: CONCURRENCY, seconds, sizes, data, growth },
  };
}
