import type { HttpResult } from '../children/loadgen.js';
import {
  authHeaders,
  type Bench,
  fetchPage,
  fmt,
  http,
  interleave,
  pageBody,
  type Section,
} from '../lib/bench.js';
import { median } from '../lib/stats.js';
import { CONCURRENCY, checkStatus, summarize } from './warm-page.js';

/** The page of scenario 1 plus each image's thumb and its srcset: three URLs per image. */
const VARIANT_QUERY =
  'query Page($first: Int!) { images(first: $first) { edges { node { id signedUrl { url expiresAt } thumb: signedUrl(preset: "thumb") { url expiresAt } srcset(preset: "thumb") } } } }';

/**
 * Scenario 14: the warm page of 100 asking for the original only, against the same page asking
 * also for the `thumb` preset and its srcset, alternating. Variants ride in the same batch (one
 * MGET) and their URLs are memoised like the originals', so the page should cost little more.
 */
export async function variantPage(b: Bench): Promise<Section> {
  const token = b.tokens.main;
  const plain = pageBody(100);
  const withThumb = JSON.stringify({ query: VARIANT_QUERY, variables: { first: 100 } });
  const job = (body: string, seconds: number) =>
    http(b, {
      url: `${b.gateway.url}/graphql`,
      method: 'POST',
      headers: authHeaders(token),
      bodies: [body],
      connections: CONCURRENCY,
      durationS: seconds,
    });
  await fetchPage(b.gateway.url, token, 100);
  // Warm the cache and the JIT: the thumb page is a query the gateway has not compiled yet, and
  // V8 reaches steady state only after seconds of load (scenario 1's warm-up).
  for (const body of [plain, withThumb]) await job(body, b.quick ? 0.5 : 8);
  const [p, v] = (await interleave(b.rounds, [
    () => job(plain, b.seconds),
    () => job(withThumb, b.seconds),
  ])) as [HttpResult[], HttpResult[]];
  checkStatus(p, 200, 'plain page');
  checkStatus(v, 200, 'page with thumbs');
  const ratio = median(v.map((r, i) => r.rps / p[i]!.rps));
  const a = summarize(p);
  const c = summarize(v);
  return {
    id: '14',
    title: 'Variants in the warm page',
    rows: [
      {
        id: '14',
        what: 'warm page of 100 with thumb + srcset (300 URLs) vs originals only (100 URLs), req/s',
        figure: `${ratio.toFixed(2)}× (${fmt.rps(c.rps)} vs ${fmt.rps(a.rps)}; p50 ${fmt.ms(c.p50)} vs ${fmt.ms(a.p50)})`,
        target: '≥ 0.9×',
        pass: ratio >= 0.9,
      },
    ],
    details: { plain: a, withThumb: c, ratio },
  };
}
