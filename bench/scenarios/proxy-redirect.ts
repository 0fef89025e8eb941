import type { HttpResult } from '../children/loadgen.js';
import { type Bench, fmt, graphql, http, interleave, type Section } from '../lib/bench.js';
import { median } from '../lib/stats.js';
import { CONCURRENCY, checkStatus, summarize } from './warm-page.js';

const PROXY_URLS = 'query { images(first: 100) { edges { node { id proxyUrl } } } }';

/**
 * Scenario 6: `/proxy/:id?t=…` in redirect mode over the 100 images of a warm page, against a
 * bare node:http server answering a constant 302 — and, for scale, bare servers that do what the
 * proxy did per hit before it remembered recent hits: one Redis GET, or one SQL lookup plus one
 * Redis GET. Same load, interleaved. Each image is hit every few milliseconds, so the gateway
 * answers from its 5 s memory of recent rows and URLs: this is the hot-link case.
 *
 * The bare 302 is sent the very requests the gateway is (its 100 proxy paths, in turn): the
 * load generator must then do the same work for both. With a single path autocannon sends one
 * prebuilt request; with a list it builds each request anew, which on this two-core machine cost
 * the contender with the list 30–40% of its rate (the bare 302 measured 25–32k req/s on one path,
 * 15–20k on the proxy's paths, same minute). The one-path figure is still reported.
 */
/** The warm page's 100 images and their proxy links as request paths (`/proxy/<id>?t=…`). */
export async function proxyPaths(b: Bench): Promise<{ ids: string[]; paths: string[] }> {
  const data = await graphql<{ images: { edges: { node: { id: string; proxyUrl: string } }[] } }>(
    b.gateway.url,
    b.tokens.main,
    PROXY_URLS,
  );
  const ids = data.images.edges.map((e) => e.node.id);
  const paths = data.images.edges.map((e) => {
    const u = new URL(e.node.proxyUrl);
    return `${u.pathname}${u.search}`;
  });
  return { ids, paths };
}

/** Scenario 6's load: GETs over `paths` at `url`, 32 connections, for `seconds` (302s expected). */
export function proxyLoad(b: Bench): (url: string, paths: string[], seconds: number) => Promise<HttpResult> {
  return (url, paths, seconds) =>
    http(b, { url, method: 'GET', paths, connections: CONCURRENCY, durationS: seconds });
}

export async function proxyRedirect(b: Bench): Promise<Section> {
  const { ids, paths } = await proxyPaths(b);
  const check = await fetch(`${b.gateway.url}${paths[0]}`, { redirect: 'manual' });
  if (check.status !== 302) throw new Error(`proxy answered ${check.status}, expected 302`);
  // The references for scale only in full runs: a quick run measures the target's pair (it has
  // three minutes for every scenario).
  const contenders: [string, string, string[]][] = [
    ['gateway /proxy/:id', b.gateway.url, paths],
    ['bare 302', b.bare.url, paths],
    ...(b.quick
      ? []
      : ([
          ['bare 302, one path', b.bare.url, ['/r']],
          ['bare: Redis GET + 302', b.bare.url, ids.map((id) => `/redis/${id}`)],
          ['bare: SQL + Redis GET + 302', b.bare.url, ids.map((id) => `/sql-redis/${id}`)],
        ] as [string, string, string[]][])),
  ];
  const job = proxyLoad(b);
  for (const [, url, list] of contenders) await job(url, list, b.quick ? 0.5 : 1);
  const runs = await interleave(
    b.rounds,
    contenders.map(
      ([, url, list]) =>
        () =>
          job(url, list, b.seconds),
    ),
  );
  for (const [i, [name]] of contenders.entries()) checkStatus(runs[i]!, 302, name);
  const [gw, bare] = runs as [(typeof runs)[0], (typeof runs)[0]];
  const g = summarize(gw!);
  const ratio = median(gw!.map((x, i) => x.rps / bare![i]!.rps));
  const refs = contenders.map(([name], i) => ({
    name,
    ...summarize(runs[i]!),
    ofBare: median(runs[i]!.map((x, j) => x.rps / bare![j]!.rps)),
  }));
  const refFigure =
    refs.length > 2
      ? ` References, same run: ${refs
          .slice(2)
          .map((r) => `${r.name}: ${fmt.rps(r.rps)} (${fmt.pct(r.ofBare)})`)
          .join('; ')}`
      : '';
  b.log(`  proxy ${fmt.rps(g.rps)} = ${fmt.pct(ratio)} of bare ${fmt.rps(refs[1]!.rps)}.${refFigure}`);
  return {
    id: '6',
    title: 'Proxy redirect',
    rows: [
      {
        id: '6',
        what: '/proxy/:id redirect (warm) vs bare node:http 302 (same requests)',
        figure: `${fmt.rps(g.rps)} (p50 ${fmt.ms(g.p50)}) = ${fmt.pct(ratio)} of ${fmt.rps(refs[1]!.rps)}.${refFigure}`,
        target: '≥ 60%',
        pass: ratio >= 0.6,
      },
    ],
    details: { concurrency: CONCURRENCY, ratio, contenders: refs },
  };
}
