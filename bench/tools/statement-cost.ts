// `npx tsx bench/tools/statement-cost.ts [rounds] [seconds]`: where the warm page's SQL cost goes.
// Scenario 1's page at its concurrency, alternating, on the bench's services: the ceiling (no
// I/O); the ceiling after one `select $1` round trip to PostgreSQL (ping); after the page's
// statement on a bare pg pool, its rows decoded and dropped (rows); with the real images
// repository (sql); and the gateway. Each round runs them in turn, starting one further along
// than the round before (no contender always follows the same one). Printed per contender: the
// median req/s, the median CPU per page of its process (and each round's) and of PostgreSQL.
// docs/benchmarks.md, finding 36.
import type { GatewayProcess } from '../../server/test/support/gateway-process.js';
import { authHeaders, fetchPage, http, pageBody } from '../lib/bench.js';
import { type CpuSnapshot, cpuMedian, cpuPerRequest, cpuSnapshot } from '../lib/cpu.js';
import { type CeilingMode, ensureBuild, startCeiling, startServices } from '../lib/setup.js';
import { median } from '../lib/stats.js';
import { CONCURRENCY, checkStatus } from '../scenarios/warm-page.js';

const [roundsArg = '4', secondsArg = '6'] = process.argv.slice(2);
const rounds = Number(roundsArg);
const seconds = Number(secondsArg);
if (!(rounds >= 1 && seconds >= 1)) throw new Error('usage: statement-cost.ts [rounds] [seconds]');

const log = (m: string) => process.stdout.write(`${m}\n`);
await ensureBuild(log);
const { bench: b, teardown } = await startServices({ quick: true, rounds, seconds, log, profile: false });
const started: GatewayProcess[] = [];
try {
  const ceilingIn = async (mode: CeilingMode) => {
    const p = await startCeiling(b.endpoints, mode);
    started.push(p);
    return p;
  };
  const contenders: [string, GatewayProcess][] = [
    ['ceiling', b.ceiling],
    ['ping', await ceilingIn('ping')],
    ['rows', await ceilingIn('rows')],
    ['sql', await ceilingIn('sql')],
    ['gateway', b.gateway],
  ];
  const load = (p: GatewayProcess, s: number) =>
    http(b, {
      url: `${p.url}/graphql`,
      method: 'POST',
      headers: authHeaders(b.tokens.main),
      bodies: [pageBody(100)],
      connections: CONCURRENCY,
      durationS: s,
    });
  // Each answers the page in full (a failing statement would answer errors with status 200).
  for (const [, p] of contenders) await fetchPage(p.url, b.tokens.main, 100);
  for (const [, p] of contenders) await load(p, 2); // warm-up: JIT, pools, caches
  const seen = new Map<string, { rps: number; cpu: CpuSnapshot }[]>();
  for (let round = 0; round < rounds; round++) {
    const order = contenders.map((_, i) => contenders[(i + round) % contenders.length]!);
    for (const [name, p] of order) {
      const before = await cpuSnapshot(b, p.pid);
      const r = await load(p, seconds);
      checkStatus([r], 200, name);
      const cpu = cpuPerRequest(before, await cpuSnapshot(b, p.pid), r.requests);
      const runs = seen.get(name) ?? [];
      runs.push({ rps: r.rps, cpu });
      seen.set(name, runs);
    }
  }
  const ms = (x: number) => x.toFixed(2);
  for (const [name, runs] of seen) {
    const m = cpuMedian(runs.map((r) => r.cpu));
    log(
      `${name.padEnd(8)} ${median(runs.map((r) => r.rps)).toFixed(0)} req/s; CPU per page (ms): ` +
        `its process ${ms(m.server)} (${runs.map((r) => ms(r.cpu.server)).join(', ')}), ` +
        `PostgreSQL ${ms(m.postgres)}`,
    );
  }
} finally {
  await Promise.allSettled(started.map((p) => p.stop()));
  await teardown();
}
