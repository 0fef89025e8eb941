// `npx tsx bench/tools/cold-rounds.ts [cold|again|warm] [connections] [rounds] [--profile]`:
// scenario 4's cold pages (`again`: the same distinct pages asked a second time, their URLs
// cached; or scenario 1's warm page) in rounds on the bench's services, one contender only, to
// look at what a round does to the gateway and Redis: per round the p50, the CPU per page of each
// process, Redis' slowest commands (SLOWLOG over 5 ms) and the gateway's Redis warnings; then
// the gateway's main thread per page (time on a core, time runnable but waiting for one, and its
// context switches, from /proc: what a page's latency holds besides CPU on a shared machine) and
// Redis' time per page by command (`INFO commandstats`; a script's time includes the commands
// it calls, all of it wall time inside Redis).
import { readFile } from 'node:fs/promises';
import { metricSum } from '../lib/bench.js';
import { cpuPerRequest, cpuSnapshot } from '../lib/cpu.js';
import { sleep } from '../lib/processes.js';
import { ensureBuild, startServices } from '../lib/setup.js';
import { pageRuns } from '../scenarios/cold-page.js';

const [mode = 'cold', connArg = '32', roundsArg = '6'] = process.argv
  .slice(2)
  .filter((a) => !a.startsWith('--'));
const connections = Number(connArg);
const rounds = Number(roundsArg);
if (mode !== 'cold' && mode !== 'again' && mode !== 'warm')
  throw new Error('usage: cold-rounds.ts [cold|again|warm] [connections] [rounds]');

await ensureBuild((m) => process.stdout.write(`${m}\n`));
const { bench: b, teardown } = await startServices({
  quick: true,
  rounds: 1,
  seconds: 1,
  log: (m) => process.stdout.write(`${m}\n`),
  profile: process.argv.includes('--profile'),
});
/**
 * A slow command as SLOWLOG keeps it: its name and, for a script, its first key (which of the
 * URL store's scripts it was: `{refresh}:due` the claim or the schedule, `{refresh}:hot` the
 * access flush, a `url:` key the write-back) and how many arguments it had.
 */
const slowCommand = (args: string[]) =>
  /^eval/i.test(args[0] ?? '') ? `${args[0]} ${args[3]} (${args.length} args)` : (args[0] ?? '?');
const seen = (text: string) => b.gateway.logs.filter((l) => l.includes(text)).length;

/**
 * The gateway's main thread (its JavaScript): nanoseconds on a core and runnable but waiting for
 * one (`schedstat`), and its context switches (`status`).
 */
async function mainThread(pid: number) {
  const task = `/proc/${pid}/task/${pid}`;
  const [runNs = 0, waitNs = 0] = (await readFile(`${task}/schedstat`, 'utf8')).trim().split(' ').map(Number);
  const status = await readFile(`${task}/status`, 'utf8');
  const count = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? 0);
  return {
    runNs,
    waitNs,
    voluntary: count('voluntary_ctxt_switches'),
    involuntary: count('nonvoluntary_ctxt_switches'),
  };
}
/** Nanoseconds over `requests` pages, in ms a page. */
const msPerPage = (ns: number, requests: number) => (ns / 1e6 / requests).toFixed(2);

/** `INFO commandstats` as µs per page by command, the largest first (those of at least 1 µs). */
function commandTimes(info: string, requests: number): string {
  const rows: [string, number][] = [];
  for (const line of info.split('\n')) {
    const m = /^cmdstat_([a-z|]+):calls=\d+,usec=(\d+)/.exec(line);
    if (m && m[1] !== 'config|resetstat') rows.push([m[1]!, Number(m[2]) / requests]);
  }
  return (
    rows
      .filter(([, us]) => us >= 1)
      .sort((a, b) => b[1] - a[1])
      .map(([name, us]) => `${name} ${us.toFixed(0)} µs`)
      .join(', ') || 'none'
  );
}
try {
  const { coldBodies, warmRun, coldRun } = pageRuns(b);
  const amount = Math.min(coldBodies.length, connections === 1 ? 300 : 990);
  await b.redisClient.call('config', 'set', 'slowlog-log-slower-than', '5000');
  // What a round signed: all of its URLs when cold, none when again or warm (but the few whose
  // grid step ended during the round).
  const signed = () => metricSum(b.gateway.url, 'signet_signatures_total', 'reason="miss"');
  for (let round = 0; round < rounds; round++) {
    await b.redisClient.flushdb();
    if (mode === 'again') {
      // The round's pages asked once first (unmeasured): then every URL is cached, as in a warm
      // page, but each page is a distinct one (not the node's memo of a page asked again).
      await coldRun(connections, amount);
      await sleep(1500);
    }
    await b.redisClient.call('slowlog', 'reset');
    await b.redisClient.call('config', 'resetstat');
    await sleep(300);
    const threadBefore = await mainThread(b.gateway.pid);
    const unavailable = seen('URL cache unavailable');
    const signedBefore = await signed();
    const before = await cpuSnapshot(b, b.gateway.pid);
    const r = mode === 'warm' ? await warmRun(connections, 4) : await coldRun(connections, amount);
    // The write-backs and the access flush after the last answer belong to the round.
    await sleep(1500);
    const cpu = cpuPerRequest(before, await cpuSnapshot(b, b.gateway.pid), r.requests);
    const thread = await mainThread(b.gateway.pid);
    const commands = commandTimes((await b.redisClient.call('info', 'commandstats')) as string, r.requests);
    const misses = (await signed()) - signedBefore;
    const slow = (await b.redisClient.call('slowlog', 'get', '5')) as [number, number, number, string[]][];
    process.stdout.write(
      `round ${round} ${mode} c=${connections}: p50 ${r.p50.toFixed(2)} ms, ${r.rps.toFixed(0)} req/s, ` +
        `${misses} URLs signed for ${r.requests} pages; ` +
        `CPU per page (ms) gateway ${cpu.server.toFixed(2)}, Redis ${cpu.redis.toFixed(2)}, ` +
        `PostgreSQL ${cpu.postgres.toFixed(2)}; "URL cache unavailable" ${seen('URL cache unavailable') - unavailable}; ` +
        `Redis slowest: ${slow.map((e) => `${(e[2] / 1000).toFixed(1)} ms ${slowCommand(e[3])}`).join(', ') || 'none over 5 ms'}\n` +
        `  gateway main thread per page: on a core ${msPerPage(thread.runNs - threadBefore.runNs, r.requests)} ms, ` +
        `runnable and waiting ${msPerPage(thread.waitNs - threadBefore.waitNs, r.requests)} ms, ` +
        `switches ${((thread.voluntary - threadBefore.voluntary) / r.requests).toFixed(1)} voluntary and ` +
        `${((thread.involuntary - threadBefore.involuntary) / r.requests).toFixed(1)} involuntary\n` +
        `  Redis per page by command: ${commands}\n`,
    );
  }
} finally {
  await teardown();
}
