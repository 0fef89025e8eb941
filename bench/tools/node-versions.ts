// `npx tsx bench/tools/node-versions.ts <other node executable> [rounds]`: the gateway, the ceiling
// and the hand-written reference of scenario 1, and scenario 6's redirect beside the bare 302, each
// on this process's Node.js and on the other one, turns interleaved on the same services, so both
// versions see the same minutes of the machine. Prints, per Node.js version, the warm page's ratios
// to the ceiling and to the reference (per-round ratios within one version), CPU per page, the
// proxy's ratio to that version's bare 302, and the other version's gateway over this one's.
// docs/benchmarks.md, finding 40.
import { execFileSync } from 'node:child_process';
import type { GatewayProcess } from '../../server/test/support/gateway-process.js';
import type { HttpResult } from '../children/loadgen.js';
import { type Bench, fetchPage, interleave, metricSum } from '../lib/bench.js';
import { gatewayEnv, PRODUCT_NODE_FLAGS } from '../lib/config.js';
import { cpuMedian, cpuPerRequest, cpuSnapshot } from '../lib/cpu.js';
import { startNode } from '../lib/processes.js';
import { bareServersEnv, ensureBuild, startCeiling, startServices } from '../lib/setup.js';
import { median } from '../lib/stats.js';
import { ratios, requireProductFlags, toolLog } from '../lib/tool.js';
import { proxyLoad, proxyPaths } from '../scenarios/proxy-redirect.js';
import { checkStatus, warmPageLoad } from '../scenarios/warm-page.js';

const [other, roundsArg = '3'] = process.argv.slice(2);
if (!other) throw new Error('usage: node-versions.ts <other node executable> [rounds]');
const rounds = Number(roundsArg);
if (!Number.isInteger(rounds) || rounds < 1) throw new Error('rounds must be a positive integer');
const versionOf = (node: string) =>
  execFileSync(node, ['-p', 'process.version'], { encoding: 'utf8' }).trim();
const here = process.version;
const there = versionOf(other);
requireProductFlags('node-versions.ts');

const log = toolLog;
await ensureBuild(log);
log(`this Node.js ${here}, the other ${there} (${other})`);
const { bench: b, teardown } = await startServices({ quick: true, rounds, seconds: 8, log, profile: false });
/** The other version's servers, stopped with the bench's services however the tool ends. */
const others: GatewayProcess[] = [];
const stopAll = async () => {
  await Promise.all(others.splice(0).map((p) => p.stop()));
  await teardown();
};
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => void stopAll().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143)));
}

interface Version {
  label: string;
  gateway: GatewayProcess;
  ceiling: GatewayProcess;
  reference: GatewayProcess;
  bare: GatewayProcess;
}

try {
  // Side by side, as the bench starts its own: whichever started is stopped if one fails.
  const settled = await Promise.allSettled([
    startNode('gateway-other', [...PRODUCT_NODE_FLAGS, 'server/dist/main.js'], gatewayEnv(b.endpoints), {
      node: other,
    }),
    startCeiling(b.endpoints, 'static', [], other),
    startNode(
      'reference-other',
      ['--import', 'tsx', 'bench/children/reference-server.ts'],
      gatewayEnv(b.endpoints),
      {
        node: other,
      },
    ),
    // Its bare 302 (the bench's settings): the proxy's yardstick on that version.
    startNode(
      'bare-other',
      ['--import', 'tsx', 'bench/children/bare-servers.ts'],
      bareServersEnv(b.endpoints),
      {
        node: other,
      },
    ),
  ]);
  for (const s of settled) if (s.status === 'fulfilled') others.push(s.value);
  const failed = settled.find((s) => s.status === 'rejected');
  if (failed) throw failed.reason;
  const [gatewayOther, ceilingOther, referenceOther, bareOther] = others as [
    GatewayProcess,
    GatewayProcess,
    GatewayProcess,
    GatewayProcess,
  ];
  const versions: Version[] = [
    { label: here, gateway: b.gateway, ceiling: b.ceiling, reference: b.reference, bare: b.bare },
    {
      label: there,
      gateway: gatewayOther,
      ceiling: ceilingOther,
      reference: referenceOther,
      bare: bareOther,
    },
  ];
  await warmPages(b, versions);
  await proxies(b, versions);
} finally {
  await stopAll();
}

/** Scenario 1's page on the six servers, interleaved; CPU per page of each server. */
async function warmPages(b: Bench, versions: Version[]) {
  const token = b.tokens.main;
  const job = warmPageLoad(b);
  const contenders = versions.flatMap((v) => [v.gateway, v.ceiling, v.reference]);
  // Unmeasured warm-up, as scenario 1 does (V8 reaches its pace after ~10 s of this load).
  for (const c of contenders) {
    await fetchPage(c.url, token, 100);
    await job(c.url, 12);
  }
  const cpu = new Map<number, ReturnType<typeof cpuPerRequest>[]>(contenders.map((c) => [c.pid, []]));
  const measured = (c: GatewayProcess) => async () => {
    await job(c.url, 2);
    const before = await cpuSnapshot(b, c.pid);
    const r = await job(c.url, b.seconds);
    cpu.get(c.pid)!.push(cpuPerRequest(before, await cpuSnapshot(b, c.pid), r.requests));
    return r;
  };
  // A page answered 200 with errors in its body is not a page served: counted on both gateways.
  const errors = () =>
    Promise.all(versions.map((v) => metricSum(v.gateway.url, 'signet_graphql_errors_total')));
  const errorsBefore = await errors();
  const runs = await interleave(rounds, contenders.map(measured));
  for (const [i, r] of runs.entries()) checkStatus(r, 200, contenders[i]!.url);
  for (const [i, n] of (await errors()).entries()) {
    if (n > errorsBefore[i]!)
      throw new Error(
        `the gateway on ${versions[i]!.label} answered ${n - errorsBefore[i]!} GraphQL errors under load`,
      );
  }
  const rps = (list: HttpResult[]) => list.map((r) => r.rps);
  const per = versions.map((v, i) => {
    const [gw, ceil, ref] = [runs[3 * i]!, runs[3 * i + 1]!, runs[3 * i + 2]!];
    return { v, gw, ceil, ref };
  });
  for (const { v, gw, ceil, ref } of per) {
    const ms = (pid: number) => cpuMedian(cpu.get(pid)!).server.toFixed(2);
    log(
      `warm page on ${v.label}: gateway ${median(rps(gw)).toFixed(0)} req/s, ceiling ${median(rps(ceil)).toFixed(0)}, ` +
        `reference ${median(rps(ref)).toFixed(0)}; of the ceiling ${ratios(gw.map((r, k) => r.rps / ceil[k]!.rps))}, ` +
        `of the reference ${ratios(gw.map((r, k) => r.rps / ref[k]!.rps))}; CPU per page (ms): gateway ${ms(v.gateway.pid)}, ` +
        `ceiling ${ms(v.ceiling.pid)}, reference ${ms(v.reference.pid)}`,
    );
  }
  const [a, z] = per as [(typeof per)[0], (typeof per)[0]];
  log(
    `${z.v.label} over ${a.v.label}, req/s of the same round: gateway ${ratios(z.gw.map((r, k) => r.rps / a.gw[k]!.rps))}, ` +
      `ceiling ${ratios(z.ceil.map((r, k) => r.rps / a.ceil[k]!.rps))}, reference ${ratios(z.ref.map((r, k) => r.rps / a.ref[k]!.rps))}`,
  );
}

/** Scenario 6's hot redirect on both gateways, each beside its own version's bare 302. */
async function proxies(b: Bench, versions: Version[]) {
  const { paths } = await proxyPaths(b);
  const load = proxyLoad(b);
  const job = (url: string, seconds: number) => () => load(url, paths, seconds);
  const contenders = versions.flatMap((v) => [v.gateway.url, v.bare.url]);
  for (const url of contenders) await job(url, 2)();
  const runs = await interleave(
    rounds,
    contenders.map((url) => job(url, 6)),
  );
  for (const [i, r] of runs.entries()) checkStatus(r, 302, contenders[i]!);
  for (const [i, v] of versions.entries()) {
    const [proxy, bare] = [runs[2 * i]!, runs[2 * i + 1]!];
    log(
      `proxy on ${v.label}: ${median(proxy.map((r) => r.rps)).toFixed(0)} req/s = ${ratios(proxy.map((r, k) => r.rps / bare[k]!.rps))} ` +
        `of its bare 302 (${median(bare.map((r) => r.rps)).toFixed(0)} req/s)`,
    );
  }
}
