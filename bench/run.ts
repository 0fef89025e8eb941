// `npm run bench [-- --quick] [--only 1,4] [--profile]`: starts what it measures (private Redis, a fresh
// PostgreSQL database, the COS fixture, the built gateway, a load generator), runs the
// scenarios of docs/benchmarks.md and writes bench/results/latest.json and the results table.
import type { Section } from './lib/bench.js';
import { machineInfo, writeResults } from './lib/report.js';
import { ensureBuild, startServices } from './lib/setup.js';
import { bulkSigning } from './scenarios/bulk-signing.js';
import { embeddedStart } from './scenarios/memory.js';
import { variantGeneration } from './scenarios/variant-generation.js';
import { SCENARIOS_WITH_SERVICES } from './scenarios/with-services.js';

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const profile = args.includes('--profile');
const onlyArg = args.find((a) => a.startsWith('--only'));
const only = onlyArg
  ? new Set((onlyArg.includes('=') ? onlyArg.split('=')[1]! : args[args.indexOf(onlyArg) + 1]!).split(','))
  : undefined;
const wanted = (id: string) => !only || only.has(id);

const started = Date.now();
const log = (m: string) =>
  process.stdout.write(`[${((Date.now() - started) / 1000).toFixed(0).padStart(4)}s] ${m}\n`);

async function main(): Promise<void> {
  const command = `npm run bench${args.length > 0 ? ` -- ${args.join(' ')}` : ''}`;
  log(`${command} (${quick ? 'quick' : 'full'} run)`);
  await ensureBuild(log);
  const sections: Section[] = [];
  const settings = { quick, rounds: quick ? 2 : 3, seconds: quick ? 1.2 : 8, log };

  // Alone on the machine first: one-core signing and the embedded start.
  if (wanted('5')) {
    log('scenario 5: bulk signing');
    sections.push(await bulkSigning(settings));
  }
  if (wanted('10') || wanted('10c')) {
    log('scenario 10c: embedded start');
    sections.push(await embeddedStart(settings));
  }
  if (wanted('13')) {
    log('scenario 13: local variant generation');
    sections.push(await variantGeneration(settings));
  }
  // Scenarios that need no services (`--only 5,13`) stop here.
  if (!SCENARIOS_WITH_SERVICES.some(([id]) => wanted(id))) {
    const summary = await writeResults({
      command,
      quick,
      seconds: (Date.now() - started) / 1000,
      machine: machineInfo(),
      versions: { node: process.version, redis: 'not started', postgres: 'not started' },
      sections,
      partial: true,
    });
    process.stdout.write(`\n${summary}\n`);
    return;
  }

  const { bench, teardown } = await startServices({ ...settings, profile });
  // Ctrl-C or a kill still stops every process and drops the database.
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      log(`${signal}: stopping`);
      void teardown().finally(() => process.exit(130));
    });
  }
  let failure: unknown;
  try {
    for (const [id, scenario] of SCENARIOS_WITH_SERVICES) {
      if (!wanted(id)) continue;
      log(`scenario ${id}`);
      sections.push(await scenario(bench));
    }
  } catch (err) {
    failure = err;
  } finally {
    await teardown();
  }
  const summary = await writeResults({
    command,
    quick,
    seconds: (Date.now() - started) / 1000,
    machine: machineInfo(),
    versions: bench.versions,
    sections,
    partial: failure !== undefined || only !== undefined,
  });
  process.stdout.write(`\n${summary}\n`);
  if (failure) throw failure;
}

main().catch((err) => {
  console.error('bench failed:', err);
  process.exit(1);
});
