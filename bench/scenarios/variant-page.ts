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
 * The hand-written reference answers both pages too (bench/children/reference-server.ts,
 * `/variants`), in the same rounds: its own ratio is what the two answers' sizes let a server
 * without GraphQL reach.
 */
export async function variantPage(b: Bench): Promise<Section> {
  const token = b.tokens.main;
  const plain = pageBody(100);
  const withThumb = JSON.stringify({ query: VARIANT_QUERY, variables: { first: 100 } });
  const job = (body: string, seconds: number, url = `${b.gateway.url}/graphql`) =>
    http(b, {
      url,
      method: 'POST',
      headers: authHeaders(token),
      bodies: [body],
      connections: CONCURRENCY,
      durationS: seconds,
    });
  const refPlain = `${b.reference.url}/graphql`;
  const refVariants = `${b.reference.url}/variants`;
  await fetchPage(b.gateway.url, token, 100);
  // The two answers' sizes, from the gateway (the reference's are the same shape).
  const bytes = await Promise.all(
    [plain, withThumb].map(async (body) => {
      const res = await fetch(`${b.gateway.url}/graphql`, {
        method: 'POST',
        headers: authHeaders(token),
        body,
      });
      return (await res.arrayBuffer()).byteLength;
    }),
  );
  // Warm the cache and the JIT: the thumb page is a query the gateway has not compiled yet, and
  // V8 reaches steady state only after seconds of load (scenario 1's warm-up).
  for (const body of [plain, withThumb]) await job(body, b.quick ? 0.5 : 8);
  await job(plain, b.quick ? 0.5 : 3, refPlain);
  await job(withThumb, b.quick ? 0.5 : 3, refVariants);
  const [p, v, rp, rv] = (await interleave(b.rounds, [
    () => job(plain, b.seconds),
    () => job(withThumb, b.seconds),
    () => job(plain, b.seconds, refPlain),
    () => job(withThumb, b.seconds, refVariants),
  ])) as [HttpResult[], HttpResult[], HttpResult[], HttpResult[]];
  checkStatus(p, 200, 'plain page');
  checkStatus(v, 200, 'page with thumbs');
  checkStatus(rp, 200, "reference's plain page");
  checkStatus(rv, 200, "reference's page with thumbs");
  const ratio = median(v.map((r, i) => r.rps / p[i]!.rps));
  const refRatio = median(rv.map((r, i) => r.rps / rp[i]!.rps));
  const a = summarize(p);
  const c = summarize(v);
  const ra = summarize(rp);
  const rc = summarize(rv);
  b.log(
    `  gateway ${ratio.toFixed(2)}× (${fmt.rps(c.rps)} vs ${fmt.rps(a.rps)}); reference ${refRatio.toFixed(2)}× (${fmt.rps(rc.rps)} vs ${fmt.rps(ra.rps)}); answers ${fmt.int(bytes[1]!)} vs ${fmt.int(bytes[0]!)} bytes`,
  );
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
      {
        id: '14',
        what: 'the same two pages from the hand-written reference (no GraphQL), req/s, same rounds',
        figure: `${refRatio.toFixed(2)}× (${fmt.rps(rc.rps)} vs ${fmt.rps(ra.rps)}); the answers are ${fmt.int(bytes[1]!)} vs ${fmt.int(bytes[0]!)} bytes (${(bytes[1]! / bytes[0]!).toFixed(1)}×)`,
        target: 'reported',
        pass: null,
      },
    ],
    details: {
      plain: a,
      withThumb: c,
      ratio,
      reference: { plain: ra, withThumb: rc, ratio: refRatio },
      bytes,
    },
  };
}
