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
 * asked once (cold after a FLUSHDB); of the gateway, or of another server of the same page (the
 * hand-written reference).
 */
export function pageRuns(b: Bench, server: { url: string } = b.gateway) {
  const large = b.rows.large;
  // Every page after the first: cursors at rows 99, 199, …
  const coldBodies: string[] = [];
  for (let i = 99; i + 100 < large.ids.length; i += 100) coldBodies.push(pageBody(100, large.cursors[i]));
  const warmRun = (connections: number, seconds: number) =>
    http(b, {
      url: `${server.url}/graphql`,
      method: 'POST',
      headers: authHeaders(b.tokens.main),
      bodies: [pageBody(100)],
      connections,
      durationS: seconds,
    });
  const coldRun = (connections: number, amount: number) =>
    http(b, {
      url: `${server.url}/graphql`,
      method: 'POST',
      headers: authHeaders(b.tokens.large),
      bodies: coldBodies.slice(0, amount),
      connections,
      amount,
    });
  return { coldBodies, warmRun, coldRun };
}

/** URL keys in the cache (`…url:<id>`): what the reference's write-backs left, as it keeps no metrics. */
async function cachedUrls(b: Bench): Promise<number> {
  let n = 0;
  let cursor = '0';
  do {
    const [next, keys] = await b.redisClient.scan(cursor, 'MATCH', '*url:*', 'COUNT', 5000);
    n += keys.length;
    cursor = next;
  } while (cursor !== '0');
  return n;
}

type Side = 'gateway' | 'reference';

/** The gateway's access flush interval (server/src/urls/access-tracker.ts, `start`). */
const ACCESS_FLUSH_MS = 1000;

/**
 * Scenario 4: every request a page never seen. FLUSHDB empties the cache before each cold round,
 * which then walks distinct pages of the 100k set, each requested exactly once; the warm rounds
 * (the first page of the 10k set, cached) alternate with them. Measured at scenario 1's
 * concurrency (32) and, for the latency of a single client, at concurrency 1. The hand-written
 * reference (bench/children/reference-server.ts) answers the same pages in the same rounds, its
 * turn alternating with the gateway's: its cold/warm ratio is what a miss at its plainest (the
 * signing and a write-back of SETs; no refresh schedule, access counts or event) costs on this
 * host, beside the gateway's.
 */
export async function coldPage(b: Bench): Promise<Section> {
  const runs = { gateway: pageRuns(b), reference: pageRuns(b, b.reference) };
  const { coldBodies } = runs.gateway;
  const pids = { gateway: b.gateway.pid, reference: b.reference.pid };
  // Requests of the previous run still in flight finish first (a load run stops sending, it does
  // not wait for its last answers; one the load generator gave up on may still be signing).
  // Closed requests alone cannot tell: a request the load generator dropped is counted (aborted)
  // when its connection closes, while the gateway may still be working on it. Resolves finished
  // can: settled when neither count moved for 100 ms (a page's write-back takes milliseconds).
  // The reference keeps no counts: its write-backs, sent after its answers, are given 300 ms.
  const settle = async (side: Side) => {
    if (side === 'reference') return sleep(300);
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
  const flush = async (side: Side) => {
    await settle(side);
    await b.redisClient.flushdb();
    await sleep(200);
  };
  // The warm page is cached first (after a flush that request is a cold page: not measured).
  const warmUp = (side: Side) => fetchPage(b[side].url, b.tokens.main, 100);
  // The reference pages with the gateway's cursors: both must answer the same rows for a cursor.
  const after = b.rows.large.cursors[99];
  const [gatewayIds, referenceIds] = await Promise.all(
    (['gateway', 'reference'] as const).map((side) => fetchPage(b[side].url, b.tokens.large, 100, after)),
  );
  if (gatewayIds!.join() !== referenceIds!.join())
    throw new Error('the reference answered another page than the gateway for the same cursor');

  /** One side's warm run then its cold run, in one round; every URL of the cold pages signed for it. */
  const round = async (side: Side, connections: number, amount: number, seconds: number) => {
    const { warmRun, coldRun } = runs[side];
    // The gateway writes the access counts of the pages it answered once a second, after they
    // settled: that write lands before the reference's turn, not in it.
    if (side === 'reference') await sleep(ACCESS_FLUSH_MS + 200);
    await flush(side);
    await warmUp(side);
    let before = await cpuSnapshot(b, pids[side]);
    const warm = await warmRun(connections, seconds);
    await settle(side);
    const warmCpu = cpuPerRequest(before, await cpuSnapshot(b, pids[side]), warm.requests);
    await flush(side);
    const signedCount = () => metricSum(b.gateway.url, 'signet_signatures_total', 'reason="miss"');
    const signedBefore = side === 'gateway' ? await signedCount() : 0;
    before = await cpuSnapshot(b, pids[side]);
    const cold = await coldRun(connections, amount);
    // Settled: the write-backs and events sent after the answers are in the cold page's CPU.
    await settle(side);
    const coldCpu = cpuPerRequest(before, await cpuSnapshot(b, pids[side]), cold.requests);
    // Every URL of every cold page was signed for that request: nothing came from the cache.
    const signed = side === 'gateway' ? (await signedCount()) - signedBefore : await cachedUrls(b);
    if (signed !== amount * 100)
      throw new Error(`${side}'s cold round signed ${signed} URLs, expected ${amount * 100}`);
    return { warm, cold, warmCpu, coldCpu };
  };

  const measure = async (connections: number, amount: number, seconds: number) => {
    const out = {
      gateway: {
        warm: [] as HttpResult[],
        cold: [] as HttpResult[],
        warmCpu: [] as CpuSnapshot[],
        coldCpu: [] as CpuSnapshot[],
      },
      reference: {
        warm: [] as HttpResult[],
        cold: [] as HttpResult[],
        warmCpu: [] as CpuSnapshot[],
        coldCpu: [] as CpuSnapshot[],
      },
    };
    for (let r = 0; r < b.rounds; r++) {
      // Who goes first alternates round by round (the host's speed drifts within a run).
      const order: Side[] = r % 2 === 0 ? ['gateway', 'reference'] : ['reference', 'gateway'];
      for (const side of order) {
        const got = await round(side, connections, amount, seconds);
        out[side].warm.push(got.warm);
        out[side].cold.push(got.cold);
        out[side].warmCpu.push(got.warmCpu);
        out[side].coldCpu.push(got.coldCpu);
      }
    }
    const summary = (side: Side) => {
      const { warm, cold, warmCpu, coldCpu } = out[side];
      checkStatus([...warm, ...cold], 200, `${side}'s cold page`);
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
    return { gateway: summary('gateway'), reference: summary('reference') };
  };

  const loaded = await measure(
    CONCURRENCY,
    Math.min(coldBodies.length, b.quick ? 150 : 990),
    b.quick ? 1 : 4,
  );
  const single = await measure(1, b.quick ? 60 : 300, b.quick ? 1 : 2);
  type Measured = typeof loaded.gateway;
  const figure = (m: Measured) =>
    `cold p50 ${fmt.ms(m.coldP50)} vs warm p50 ${fmt.ms(m.warmP50)} = ${m.ratio.toFixed(2)}× (cold ${fmt.rps(m.coldRps)}, warm ${fmt.rps(m.warmRps)})`;
  const cpuParts = (m: Measured, who: string) => {
    const f = (c: CpuSnapshot) =>
      `${who} ${c.server.toFixed(2)}, Redis ${c.redis.toFixed(2)}, PostgreSQL ${c.postgres.toFixed(2)}, load generator ${c.loadgen.toFixed(2)}`;
    return `warm ${f(m.cpuMsPerPage.warm)}; cold ${f(m.cpuMsPerPage.cold)}`;
  };
  const cpuNote = (m: typeof loaded) =>
    `CPU per page (ms): ${cpuParts(m.gateway, 'gateway')}; the reference's: ${cpuParts(m.reference, 'reference')}`;
  for (const [c, m] of [
    ['32', loaded],
    ['1', single],
  ] as const) {
    b.log(`  c=${c}: ${figure(m.gateway)}; reference ${figure(m.reference)}; ${cpuNote(m)}`);
  }
  return {
    id: '4',
    title: 'Cold page',
    rows: [
      {
        id: '4',
        what: 'Cold page p50 vs warm p50, concurrency 32',
        figure: figure(loaded.gateway),
        target: '≤ 2× warm p50',
        pass: loaded.gateway.ratio <= 2,
      },
      {
        id: '4',
        what: 'Cold page p50 vs warm p50, one client (concurrency 1)',
        figure: figure(single.gateway),
        target: '≤ 2× warm p50',
        pass: single.gateway.ratio <= 2,
      },
      {
        id: '4',
        what: 'the same pages from the hand-written reference (signing and a write-back of SETs only), concurrency 32 and 1, same rounds',
        figure: `c=32: ${figure(loaded.reference)}; c=1: ${figure(single.reference)}`,
        target: 'reported',
        pass: null,
      },
    ],
    notes: [`c=32: ${cpuNote(loaded)}.`, `c=1: ${cpuNote(single)}.`],
    details: {
      concurrency32: loaded.gateway,
      concurrency1: single.gateway,
      reference: { concurrency32: loaded.reference, concurrency1: single.reference },
    },
  };
}
