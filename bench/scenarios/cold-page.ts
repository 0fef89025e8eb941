import type { HttpResult } from '../children/loadgen.js';
import {
  authHeaders,
  type Bench,
  fetchPage,
  fmt,
  http,
  metricSum,
  pageBody,
  type Section,
} from '../lib/bench.js';
import { type CpuSnapshot, cpuMedian, cpuPerRequest, cpuSnapshot } from '../lib/cpu.js';
import { sleep } from '../lib/processes.js';
import { median } from '../lib/stats.js';
import { CONCURRENCY, checkStatus } from './warm-page.js';

/**
 * The two loads of scenario 4 (also run alone by bench/tools/cold-rounds.ts): the warm page (the
 * first page of the 10k set) for `seconds`, and `amount` distinct pages of the 100k set, each
 * asked once (cold after a FLUSHDB).
 */
export function pageRuns(b: Bench) {
  const large = b.rows.large;
  // Every page after the first: cursors at rows 99, 199, …
  const coldBodies: string[] = [];
  for (let i = 99; i + 100 < large.ids.length; i += 100) coldBodies.push(pageBody(100, large.cursors[i]));
  const warmRun = (connections: number, seconds: number) =>
    http(b, {
      url: `${b.gateway.url}/graphql`,
      method: 'POST',
      headers: authHeaders(b.tokens.main),
      bodies: [pageBody(100)],
      connections,
      durationS: seconds,
    });
  const coldRun = (connections: number, amount: number) =>
    http(b, {
      url: `${b.gateway.url}/graphql`,
      method: 'POST',
      headers: authHeaders(b.tokens.large),
      bodies: coldBodies.slice(0, amount),
      connections,
      amount,
    });
  return { coldBodies, warmRun, coldRun };
}

/**
 * Scenario 4: every request a page never seen. FLUSHDB empties the cache before each cold round,
 * which then walks distinct pages of the 100k set, each requested exactly once; the warm rounds
 * (the first page of the 10k set, cached) alternate with them. Measured at scenario 1's
 * concurrency (32) and, for the latency of a single client, at concurrency 1.
 */
export async function coldPage(b: Bench): Promise<Section> {
  const { coldBodies, warmRun, coldRun } = pageRuns(b);
  // Requests of the previous run still in flight finish first (a load run stops sending, it does
  // not wait for its last answers; one the load generator gave up on may still be signing).
  // Closed requests alone cannot tell: a request the load generator dropped is counted (aborted)
  // when its connection closes, while the gateway may still be working on it. Resolves finished
  // can: settled when neither count moved for 100 ms (a page's write-back takes milliseconds).
  const settle = async () => {
    let seen = '';
    for (;;) {
      await sleep(100);
      const closed = await metricSum(b.gateway.url, 'signet_http_requests_total', 'route="graphql"');
      const resolved = await metricSum(b.gateway.url, 'signet_url_resolve_seconds_count');
      const now = `${closed}/${resolved}`;
      if (now === seen) break;
      seen = now;
    }
  };
  const flush = async () => {
    await settle();
    await b.redisClient.flushdb();
    await sleep(200);
  };
  // The warm page is cached first (after a flush that request is a cold page: not measured).
  const warmUp = () => fetchPage(b.gateway.url, b.tokens.main, 100);

  const measure = async (connections: number, amount: number, seconds: number) => {
    const warm: HttpResult[] = [];
    const cold: HttpResult[] = [];
    const warmCpu: CpuSnapshot[] = [];
    const coldCpu: CpuSnapshot[] = [];
    for (let round = 0; round < b.rounds; round++) {
      await flush();
      await warmUp();
      let before = await cpuSnapshot(b, b.gateway.pid);
      const w = await warmRun(connections, seconds);
      await settle();
      warm.push(w);
      warmCpu.push(cpuPerRequest(before, await cpuSnapshot(b, b.gateway.pid), w.requests));
      await flush();
      const signedBefore = await metricSum(b.gateway.url, 'signet_signatures_total', 'reason="miss"');
      before = await cpuSnapshot(b, b.gateway.pid);
      const c = await coldRun(connections, amount);
      // Settled: the write-backs and events sent after the answers are in the cold page's CPU.
      await settle();
      cold.push(c);
      coldCpu.push(cpuPerRequest(before, await cpuSnapshot(b, b.gateway.pid), c.requests));
      const signed =
        (await metricSum(b.gateway.url, 'signet_signatures_total', 'reason="miss"')) - signedBefore;
      // Every URL of every cold page was signed for that request: nothing came from the cache.
      if (signed !== amount * 100)
        throw new Error(`cold round signed ${signed} URLs, expected ${amount * 100}`);
    }
    checkStatus([...warm, ...cold], 200, 'cold page');
    return {
      warmP50: median(warm.map((r) => r.p50)),
      coldP50: median(cold.map((r) => r.p50)),
      warmRps: median(warm.map((r) => r.rps)),
      coldRps: median(cold.map((r) => r.rps)),
      warmP99: median(warm.map((r) => r.p99)),
      coldP99: median(cold.map((r) => r.p99)),
      ratio: median(cold.map((r, i) => r.p50 / warm[i]!.p50)),
      pagesPerRound: amount,
      cpuMsPerPage: { warm: cpuMedian(warmCpu), cold: cpuMedian(coldCpu) },
    };
  };

  const loaded = await measure(
    CONCURRENCY,
    Math.min(coldBodies.length, b.quick ? 150 : 990),
    b.quick ? 1 : 4,
  );
  const single = await measure(1, b.quick ? 60 : 300, b.quick ? 1 : 2);
  const figure = (m: typeof loaded) =>
    `cold p50 ${fmt.ms(m.coldP50)} vs warm p50 ${fmt.ms(m.warmP50)} = ${m.ratio.toFixed(2)}× (cold ${fmt.rps(m.coldRps)}, warm ${fmt.rps(m.warmRps)})`;
  const cpuNote = (m: typeof loaded) => {
    const f = (c: CpuSnapshot) =>
      `gateway ${c.server.toFixed(2)}, Redis ${c.redis.toFixed(2)}, PostgreSQL ${c.postgres.toFixed(2)}, load generator ${c.loadgen.toFixed(2)}`;
    return `CPU per page (ms): warm ${f(m.cpuMsPerPage.warm)}; cold ${f(m.cpuMsPerPage.cold)}`;
  };
  b.log(`  c=32: ${figure(loaded)}; ${cpuNote(loaded)}`);
  b.log(`  c=1: ${figure(single)}; ${cpuNote(single)}`);
  return {
    id: '4',
    title: 'Cold page',
    rows: [
      {
        id: '4',
        what: 'Cold page p50 vs warm p50, concurrency 32',
        figure: figure(loaded),
        target: '≤ 2× warm p50',
        pass: loaded.ratio <= 2,
      },
      {
        id: '4',
        what: 'Cold page p50 vs warm p50, one client (concurrency 1)',
        figure: figure(single),
        target: '≤ 2× warm p50',
        pass: single.ratio <= 2,
      },
    ],
    notes: [`c=32: ${cpuNote(loaded)}.`, `c=1: ${cpuNote(single)}.`],
    details: { concurrency32: loaded, concurrency1: single },
  };
}
