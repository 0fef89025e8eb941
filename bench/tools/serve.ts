// `npx tsx bench/tools/serve.ts [--profile]`: starts the benchmark's services and keeps them up
// (for profiling by hand); prints where they are and writes the tokens to /tmp/signet-bench.json
// (or $SIGNET_BENCH_INFO).
import { writeFile } from 'node:fs/promises';
import { pageBody } from '../lib/bench.js';
import { ensureBuild, startServices } from '../lib/setup.js';

await ensureBuild((m) => process.stdout.write(`${m}\n`));

const { bench, teardown } = await startServices({
  quick: false, // every contender started, as a full run starts them
  rounds: 1,
  seconds: 1,
  log: (m) => process.stdout.write(`${m}\n`),
  profile: process.argv.includes('--profile'),
});
const info = {
  gateway: bench.gateway.url,
  gatewayPid: bench.gateway.pid,
  ceiling: bench.ceiling.url,
  ceilingPid: bench.ceiling.pid,
  urls: bench.ceilingParts?.urls.url,
  urlsPid: bench.ceilingParts?.urls.pid,
  sql: bench.ceilingParts?.sql.url,
  sqlPid: bench.ceilingParts?.sql.pid,
  bare: bench.bare.url,
  reference: bench.reference.url,
  referencePid: bench.reference.pid,
  redis: bench.endpoints.redisUrl,
  database: bench.databaseUrl,
  token: bench.tokens.main,
  pageBody: pageBody(100),
};
// SIGNET_BENCH_INFO: where to write it (two people profiling on one machine).
await writeFile(process.env.SIGNET_BENCH_INFO ?? '/tmp/signet-bench.json', JSON.stringify(info, null, 2));
process.stdout.write(`${JSON.stringify(info, null, 2)}\nCtrl-C to stop\n`);
process.on('SIGINT', () => {
  teardown().then(() => process.exit(0));
});
process.on('SIGTERM', () => {
  teardown().then(() => process.exit(0));
});
