// `npx tsx bench/tools/proxy-after.ts [scenario ids, e.g. 1,14,3]`: scenario 6's hot redirect on
// the bench's gateway after it has served the named scenarios (default: every scenario a full run
// gives it before scenario 6), and on a node with the same settings started just before the
// measure, which has served nothing; each against the bare 302, turns interleaved (the order of
// the two gateways swapped every repetition), so both see the same minutes of the machine.
// docs/benchmarks.md, finding 39.
import type { GatewayProcess } from '../../server/test/support/gateway-process.js';
import { interleave } from '../lib/bench.js';
import { gatewayEnv, PRODUCT_NODE_FLAGS } from '../lib/config.js';
import { startNode } from '../lib/processes.js';
import { ensureBuild, startServices } from '../lib/setup.js';
import { median } from '../lib/stats.js';
import { ratios, requireProductFlags, toolLog } from '../lib/tool.js';
import { proxyLoad, proxyPaths } from '../scenarios/proxy-redirect.js';
import { checkStatus } from '../scenarios/warm-page.js';
import { SCENARIOS_WITH_SERVICES } from '../scenarios/with-services.js';

/** What a full run gives the gateway before scenario 6, in its order. */
const BEFORE_SIX = SCENARIOS_WITH_SERVICES.slice(
  0,
  SCENARIOS_WITH_SERVICES.findIndex(([id]) => id === '6'),
);
const REPETITIONS = 3;
const ROUNDS = 3;
const SECONDS = 6;

const known = BEFORE_SIX.map(([id]) => id);
const wanted = new Set(process.argv[2]?.split(',') ?? known);
for (const id of wanted) {
  if (!known.includes(id)) throw new Error(`usage: proxy-after.ts [ids among ${known.join(',')}]`);
}
/** The scenarios run, in their order (the label of every line). */
const served = known.filter((id) => wanted.has(id)).join(',');
requireProductFlags('proxy-after.ts');
const log = toolLog;
await ensureBuild(log);
// Full: scenario 1 runs every contender of a full run.
const { bench, teardown } = await startServices({ quick: false, rounds: 3, seconds: 8, log, profile: false });
/** The node started for the measure, once it is up. */
let fresh: GatewayProcess | undefined;
// Ctrl-C or a kill still stops every process and drops the database.
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(
    signal,
    () =>
      void Promise.resolve(fresh?.stop())
        .then(teardown)
        .finally(() => process.exit(signal === 'SIGINT' ? 130 : 143)),
  );
}
try {
  for (const [id, scenario] of BEFORE_SIX) {
    if (!wanted.has(id)) continue;
    log(`scenario ${id} on the gateway`);
    await scenario(bench);
  }
  fresh = await startNode(
    'fresh-gateway',
    [...PRODUCT_NODE_FLAGS, 'server/dist/main.js'],
    gatewayEnv(bench.endpoints),
  );
  try {
    const { paths } = await proxyPaths(bench);
    const load = proxyLoad(bench);
    const job = (url: string, seconds: number) => () => load(url, paths, seconds);
    // Unmeasured: the fresh node's first hits (JIT, its memory of recent rows and URLs).
    for (const url of [bench.gateway.url, fresh.url, bench.bare.url]) await job(url, 1)();
    for (let rep = 0; rep < REPETITIONS; rep++) {
      const first = rep % 2 === 0 ? bench.gateway : fresh;
      const second = first === fresh ? bench.gateway : fresh;
      const [a, b, bare] = await interleave(ROUNDS, [
        job(first.url, SECONDS),
        job(second.url, SECONDS),
        job(bench.bare.url, SECONDS),
      ]);
      for (const [runs, what] of [
        [a, first.url],
        [b, second.url],
        [bare, 'bare 302'],
      ] as const)
        checkStatus(runs!, 302, what);
      const ofBare = (runs: typeof a) => runs!.map((r, i) => r.rps / bare![i]!.rps);
      const [old, now] = first === fresh ? [ofBare(b), ofBare(a)] : [ofBare(a), ofBare(b)];
      log(
        `after ${served}: ${ratios(old)}; fresh node: ${ratios(now)}; ` +
          `bare 302 ${median(bare!.map((r) => r.rps)).toFixed(0)} req/s`,
      );
    }
  } finally {
    await fresh.stop();
  }
} finally {
  await teardown();
}
