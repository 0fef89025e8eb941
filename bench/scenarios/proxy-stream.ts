import { type Bench, graphql, http, interleave, type Section } from '../lib/bench.js';
import { OWNERS, STREAM_OBJECT_BYTES } from '../lib/config.js';
import { median } from '../lib/stats.js';
import { checkStatus } from './warm-page.js';

const CONCURRENCY = 8;
const QUERY = `query { images(first: ${OWNERS.stream.count}) { edges { node { proxyUrl(mode: STREAM) signedUrl { url } } } } }`;

const mibps = (bytesPerSec: number) => bytesPerSec / 1024 / 1024;

/**
 * Scenario 7: 1 MiB objects through `/proxy/:id?mode=stream` against the same objects fetched
 * with their presigned URLs straight from the fixture. Same load, alternating.
 */
export async function proxyStream(b: Bench): Promise<Section> {
  const data = await graphql<{
    images: { edges: { node: { proxyUrl: string; signedUrl: { url: string } } }[] };
  }>(b.gateway.url, b.tokens.stream, QUERY);
  const pathOf = (s: string) => {
    const u = new URL(s);
    return `${u.pathname}${u.search}`;
  };
  const proxied = data.images.edges.map((e) => pathOf(e.node.proxyUrl));
  const direct = data.images.edges.map((e) => pathOf(e.node.signedUrl.url));
  const fixtureOrigin = new URL(data.images.edges[0]!.node.signedUrl.url).origin;
  for (const [origin, path] of [
    [b.gateway.url, proxied[0]!],
    [fixtureOrigin, direct[0]!],
  ] as const) {
    const res = await fetch(`${origin}${path}`);
    const bytes = (await res.arrayBuffer()).byteLength;
    if (res.status !== 200 || bytes !== STREAM_OBJECT_BYTES)
      throw new Error(`${origin}${path.split('?')[0]} answered ${res.status} with ${bytes} bytes`);
  }
  const relayed = direct.map((p) => `/relay${p}`);
  const job = (url: string, paths: string[], seconds: number) =>
    http(b, { url, method: 'GET', paths, connections: CONCURRENCY, durationS: seconds });
  const contenders: [string, string, string[]][] = [
    ['gateway mode=stream', b.gateway.url, proxied],
    ['presigned URL from the fixture', fixtureOrigin, direct],
    ['bare node:http relay (http.get piped to the response)', b.bare.url, relayed],
  ];
  for (const [, url, paths] of contenders) await job(url, paths, b.quick ? 0.5 : 1);
  const runs = await interleave(
    b.rounds,
    contenders.map(
      ([, url, paths]) =>
        () =>
          job(url, paths, b.seconds),
    ),
  );
  for (const [i, [name]] of contenders.entries()) checkStatus(runs[i]!, 200, name);
  const [gw, fx, relay] = [runs[0]!, runs[1]!, runs[2]!];
  const g = median(gw.map((r) => mibps(r.bytesPerSec)));
  const d = median(fx.map((r) => mibps(r.bytesPerSec)));
  const rl = median(relay.map((r) => mibps(r.bytesPerSec)));
  const ratio = median(gw.map((r, i) => r.bytesPerSec / fx[i]!.bytesPerSec));
  const relayRatio = median(relay.map((r, i) => r.bytesPerSec / fx[i]!.bytesPerSec));
  b.log(
    `  stream ${g.toFixed(0)} MiB/s vs direct ${d.toFixed(0)} MiB/s: ${(ratio * 100).toFixed(0)}%; bare relay ${rl.toFixed(0)} MiB/s (${(relayRatio * 100).toFixed(0)}%)`,
  );
  return {
    id: '7',
    title: 'Proxy stream',
    rows: [
      {
        id: '7',
        what: '1 MiB objects via /proxy/:id?mode=stream vs presigned URL from the fixture',
        figure: `${g.toFixed(0)} MiB/s vs ${d.toFixed(0)} MiB/s = ${(ratio * 100).toFixed(0)}%. Reference, same run: a bare node:http relay ${rl.toFixed(0)} MiB/s (${(relayRatio * 100).toFixed(0)}%)`,
        target: '≥ 80%',
        pass: ratio >= 0.8,
      },
    ],
    details: {
      concurrency: CONCURRENCY,
      proxyMiBps: g,
      directMiBps: d,
      ratio,
      relayMiBps: rl,
      relayRatio,
      relay: relay.map((r) => ({ rps: r.rps, p50: r.p50, MiBps: mibps(r.bytesPerSec) })),
      proxy: gw.map((r) => ({ rps: r.rps, p50: r.p50, MiBps: mibps(r.bytesPerSec) })),
      direct: fx.map((r) => ({ rps: r.rps, p50: r.p50, MiBps: mibps(r.bytesPerSec) })),
    },
  };
}
