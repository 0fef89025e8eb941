import {
  alternate,
  authHeaders,
  type Bench,
  fetchPage,
  fmt,
  http,
  metricSum,
  pageBody,
  type Section,
} from '../lib/bench.js';
import { GATEWAY_REDIS_PREFIX, GATEWAY_KEYS as k } from '../lib/config.js';
import { type CpuSnapshot, cpuMedian, cpuPerRequest, cpuSnapshot } from '../lib/cpu.js';
import { sleep } from '../lib/processes.js';
import { forEachKeyBatch } from '../lib/redis.js';
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

/** URL keys in the cache: what the reference's write-backs left, as it keeps no metrics. */
async function cachedUrls(b: Bench): Promise<number> {
  let n = 0;
  // `urlKeys`' url key, of any shard.
  await forEachKeyBatch(b.redisClient, `${GATEWAY_REDIS_PREFIX}{u*}url:*`, (keys) => {
    n += keys.length;
  });
  return n;
}

/**
 * Waits for the gateway's access flush (once a second, after the answers) of a cold round's
 * `pages`: its images in the hot set and the set no longer growing. Then the flush's Redis work
 * is in the round's CPU, and out of whatever runs next.
 */
async function accessFlushed(b: Bench, pages: number): Promise<void> {
  const deadline = Date.now() + 15_000;
  let last = -1;
  for (;;) {
    const n = await b.redisClient.zcard(k.hot);
    if (n >= pages * 100 && n === last) return;
    if (Date.now() > deadline)
      throw new Error(`the gateway's access flush left ${n} of ${pages * 100} images counted`);
    last = n;
    await sleep(300);
  }
}

type Side = 'gateway' | 'reference';

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
  const flushdb = async () => {
    await b.redisClient.flushdb();
    await sleep(200);
  };
  // The reference pages with the gateway's cursors: both must answer the same rows for a cursor.
  const after = b.rows.large.cursors[99];
  const [gatewayIds, referenceIds] = await Promise.all(
    (['gateway', 'reference'] as const).map((side) => fetchPage(b[side].url, b.tokens.large, 100, after)),
  );
  if (gatewayIds!.join() !== referenceIds!.join())
    throw new Error('the reference answered another page than the gateway for the same cursor');

  /** One side's warm run then its cold run; every URL of the cold pages signed for them. */
  const round = async (side: Side, connections: number, amount: number, seconds: number) => {
    const { warmRun, coldRun } = runs[side];
    const pid = b[side].pid;
    await flushdb();
    // The warm page is cached first (after a flush that request is a cold page: not measured).
    await fetchPage(b[side].url, b.tokens.main, 100);
    let before = await cpuSnapshot(b, pid);
    const warm = await warmRun(connections, seconds);
    await settle(side);
    const warmCpu = cpuPerRequest(before, await cpuSnapshot(b, pid), warm.requests);
    await flushdb();
    const signedCount = () => metricSum(b.gateway.url, 'signet_signatures_total', 'reason="miss"');
    const signedBefore = side === 'gateway' ? await signedCount() : 0;
    before = await cpuSnapshot(b, pid);
    const cold = await coldRun(connections, amount);
    // Settled: the write-backs, events and access counts sent after the answers are in the cold
    // page's CPU.
    await settle(side);
    if (side === 'gateway') await accessFlushed(b, amount);
    const coldCpu = cpuPerRequest(before, await cpuSnapshot(b, pid), cold.requests);
    // Every URL of every cold page was signed for that request: nothing came from the cache.
    const signed = side === 'gateway' ? (await signedCount()) - signedBefore : await cachedUrls(b);
    if (signed !== amount * 100)
      throw new Error(`${side}'s cold round signed ${signed} URLs, expected ${amount * 100}`);
    return { warm, cold, warmCpu, coldCpu };
  };
  type Round = Awaited<ReturnType<typeof round>>;
  const summary = (side: Side, rounds: Round[], amount: number) => {
    const warm = rounds.map((r) => r.warm);
    const cold = rounds.map((r) => r.cold);
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
      cpuMsPerPage: {
        warm: cpuMedian(rounds.map((r) => r.warmCpu)),
        cold: cpuMedian(rounds.map((r) => r.coldCpu)),
      },
    };
  };
  const measure = async (connections: number, amount: number, seconds: number) => {
    const [gateway, reference] = await alternate(
      b.rounds,
      () => round('gateway', connections, amount, seconds),
      () => round('reference', connections, amount, seconds),
    );
    return {
      gateway: summary('gateway', gateway, amount),
      reference: summary('reference', reference, amount),
    };
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
