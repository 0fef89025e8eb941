import type { HttpResult } from '../children/loadgen.js';
import {
  authHeaders,
  type Bench,
  fetchPage,
  fmt,
  http,
  interleave,
  metricSum,
  pageBody,
  type Section,
} from '../lib/bench.js';
import { type CpuSnapshot, cpuPerRequest, cpuSnapshot } from '../lib/cpu.js';
import { memoryOf } from '../lib/processes.js';
import { median } from '../lib/stats.js';

export const CONCURRENCY = 32;

/** The V8 heap of a process, from its /metrics (MiB). */
export async function heapOf(base: string): Promise<{ totalMiB: number; usedMiB: number }> {
  return {
    totalMiB: (await metricSum(base, 'nodejs_heap_size_total_bytes')) / 1024 ** 2,
    usedMiB: (await metricSum(base, 'nodejs_heap_size_used_bytes')) / 1024 ** 2,
  };
}

/** Samples a process's RSS every 250 ms until stopped. */
export function sampleRss(pid: number, into: number[]): () => void {
  const timer = setInterval(() => {
    memoryOf(pid)
      .then((m) => into.push(m.rssMiB))
      .catch(() => {});
  }, 250);
  return () => clearInterval(timer);
}

export function summarize(runs: HttpResult[]) {
  return {
    rps: median(runs.map((r) => r.rps)),
    p50: median(runs.map((r) => r.p50)),
    p99: median(runs.map((r) => r.p99)),
    runs: runs.map((r) => ({ rps: r.rps, p50: r.p50, p99: r.p99, requests: r.requests, status: r.status })),
  };
}

export function checkStatus(runs: HttpResult[], expected: number, what: string): void {
  for (const r of runs) {
    const bad = Object.entries(r.status).filter(([code]) => Number(code) !== expected);
    if (bad.length > 0 || r.errors > 0)
      throw new Error(`${what}: unexpected answers ${JSON.stringify(r.status)}, ${r.errors} errors`);
  }
}

type Contender = 'gateway' | 'ceiling' | 'sql' | 'urls';

/**
 * Scenario 1: the warm page query against the ceiling (same build, static data), alternating.
 * Two more contenders in the same rounds show where the difference goes: the ceiling with the
 * real images repository (PostgreSQL) and the ceiling with the real URL service (Redis).
 */
export async function warmPage(b: Bench): Promise<Section> {
  const token = b.tokens.main;
  const body = pageBody(100);
  const urlOf: Record<Contender, string> = {
    gateway: b.gateway.url,
    ceiling: b.ceiling.url,
    sql: b.ceilingParts.sql.url,
    urls: b.ceilingParts.urls.url,
  };
  const pidOf: Record<Contender, number> = {
    gateway: b.gateway.pid,
    ceiling: b.ceiling.pid,
    sql: b.ceilingParts.sql.pid,
    urls: b.ceilingParts.urls.pid,
  };
  // The decomposition (ceiling + one real part) only in full runs: a quick run has no time for it.
  const order: Contender[] = b.quick ? ['gateway', 'ceiling'] : ['gateway', 'ceiling', 'sql', 'urls'];
  const job = (url: string, seconds: number) =>
    http(b, {
      url: `${url}/graphql`,
      method: 'POST',
      headers: authHeaders(token),
      bodies: [body],
      connections: CONCURRENCY,
      durationS: seconds,
    });
  for (const c of order) {
    await fetchPage(urlOf[c], token, 100);
    await job(urlOf[c], b.quick ? 0.5 : 2); // JIT warm-up, not measured
  }

  const errorsBefore = await metricSum(b.gateway.url, 'signet_graphql_errors_total');
  const cpu: Record<Contender, CpuSnapshot[]> = { gateway: [], ceiling: [], sql: [], urls: [] };
  const measured = async (which: Contender) => {
    const stop = which === 'gateway' ? sampleRss(b.gateway.pid, b.rssSamples) : () => {};
    try {
      const before = await cpuSnapshot(b, pidOf[which]);
      const r = await job(urlOf[which], b.seconds);
      cpu[which].push(cpuPerRequest(before, await cpuSnapshot(b, pidOf[which]), r.requests));
      if (which === 'gateway') b.heapSamples.push(await heapOf(b.gateway.url));
      return r;
    } finally {
      stop();
    }
  };
  const runs = await interleave(
    b.rounds,
    order.map((c) => () => measured(c)),
  );
  const errors = (await metricSum(b.gateway.url, 'signet_graphql_errors_total')) - errorsBefore;
  if (errors > 0) throw new Error(`scenario 1: the gateway answered ${errors} GraphQL errors under load`);
  for (const [i, c] of order.entries()) checkStatus(runs[i]!, 200, c);
  const [gw, ceil, sql, urls] = runs as [HttpResult[], HttpResult[], HttpResult[]?, HttpResult[]?];
  const g = summarize(gw);
  const c = summarize(ceil);
  const ofCeiling = (list: HttpResult[]) => median(list.map((r, i) => r.rps / ceil[i]!.rps));
  const ratio = ofCeiling(gw);
  const cpuMedian = (list: CpuSnapshot[]) =>
    Object.fromEntries(
      (Object.keys(list[0]!) as (keyof CpuSnapshot)[]).map((k) => [k, median(list.map((x) => x[k]))]),
    ) as CpuSnapshot;
  const gwCpu = cpuMedian(cpu.gateway);
  const ceilCpu = cpuMedian(cpu.ceiling);
  const sqlCpu = sql ? cpuMedian(cpu.sql) : undefined;
  const urlsCpu = urls ? cpuMedian(cpu.urls) : undefined;
  const parts =
    sql && urls
      ? `ceiling + real SQL (images repository on PostgreSQL): ${fmt.rps(summarize(sql).rps)} = ${fmt.pct(ofCeiling(sql))}; ` +
        `ceiling + real URL service (one Redis MGET per page): ${fmt.rps(summarize(urls).rps)} = ${fmt.pct(ofCeiling(urls))}`
      : undefined;
  const cpuNote =
    `CPU per request (ms): gateway ${gwCpu.server.toFixed(2)} + PostgreSQL ${gwCpu.postgres.toFixed(2)} + ` +
    `Redis ${gwCpu.redis.toFixed(2)} (load generator ${gwCpu.loadgen.toFixed(2)}); ceiling ${ceilCpu.server.toFixed(2)}` +
    (sqlCpu && urlsCpu
      ? `; ceiling + SQL ${sqlCpu.server.toFixed(2)} + PostgreSQL ${sqlCpu.postgres.toFixed(2)}; ` +
        `ceiling + URL service ${urlsCpu.server.toFixed(2)} + Redis ${urlsCpu.redis.toFixed(2)}.`
      : '.');
  b.log(`  gateway ${fmt.rps(g.rps)} p50 ${fmt.ms(g.p50)} p99 ${fmt.ms(g.p99)}; ceiling ${fmt.rps(c.rps)}`);
  if (parts) b.log(`  ${parts}`);
  b.log(`  ${cpuNote}`);
  return {
    id: '1',
    title: 'Warm page: images(first: 100) with signedUrl { url expiresAt }, concurrency 32',
    rows: [
      {
        id: '1',
        what: 'Warm page vs ceiling (req/s)',
        figure: `${fmt.rps(g.rps)} (p50 ${fmt.ms(g.p50)}, p99 ${fmt.ms(g.p99)}) = ${fmt.pct(ratio)} of ceiling ${fmt.rps(c.rps)} (p50 ${fmt.ms(c.p50)}, p99 ${fmt.ms(c.p99)})`,
        target: '≥ 60% of ceiling',
        pass: ratio >= 0.6,
      },
    ],
    details: {
      concurrency: CONCURRENCY,
      gateway: g,
      ceiling: c,
      ...(sql && urls
        ? {
            ceilingWithSql: { ...summarize(sql), ofCeiling: ofCeiling(sql) },
            ceilingWithUrls: { ...summarize(urls), ofCeiling: ofCeiling(urls) },
          }
        : {}),
      ratio,
      urlsPerSecond: g.rps * 100,
      cpuMsPerRequest: { gateway: gwCpu, ceiling: ceilCpu, ceilingWithSql: sqlCpu, ceilingWithUrls: urlsCpu },
    },
    notes: [...(parts ? [`Where the difference goes (same rounds): ${parts}.`] : []), cpuNote],
  };
}
