import { type Bench, fetchPage, fmt, pageBody, pattern, type Section } from '../lib/bench.js';
import { median } from '../lib/stats.js';

/**
 * Scenario 3: a browser-like client gets the 100 URLs of a page either with one page query or with
 * 100 `image(id) { signedUrl { url } }` queries, 6 in flight on keep-alive connections (a
 * browser's per-host limit). Both warm; they alternate, one page then one per-image pass.
 */
export async function perImageVsBatch(b: Bench): Promise<Section> {
  const ids = await fetchPage(b.gateway.url, b.tokens.main, 100);
  const r = await pattern(b, {
    url: `${b.gateway.url}/graphql`,
    token: b.tokens.main,
    ids,
    pageBody: pageBody(100),
    iterations: b.quick ? 15 : 40,
    inFlight: 6,
  });
  const batch = median(r.batchMs);
  const perImage = median(r.perImageMs);
  const ratio = median(r.perImageMs.map((p, i) => p / r.batchMs[i]!));
  b.log(`  batch ${fmt.ms(batch)}, per-image ${fmt.ms(perImage)}: ${fmt.x(ratio)}`);
  return {
    id: '3',
    title: 'Per-image pattern vs batch',
    rows: [
      {
        id: '3',
        what: '100 URLs: one page query vs 100 image(id) queries, 6 in flight',
        figure: `page query ${fmt.ms(batch)} vs per-image ${fmt.ms(perImage)}: batch ${fmt.x(ratio)} faster`,
        target: 'batch ≥ 20× faster',
        pass: ratio >= 20,
      },
    ],
    details: { iterations: r.batchMs.length, batchMs: r.batchMs, perImageMs: r.perImageMs, ratio },
  };
}
