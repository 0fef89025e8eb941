import type { Bench } from './bench.js';
import { withClient } from './database.js';
import { cpuSecondsOf, statFields } from './processes.js';

/** `server`: the process under load in that run (the gateway, or one of the ceilings). */
export type CpuSnapshot = Record<'server' | 'redis' | 'postgres' | 'loadgen', number>;

/**
 * The postmaster's pid (the parent of every backend), once per run; 0 when its /proc entry is not
 * on this machine (a database elsewhere).
 */
let postmasterPid: number | undefined;

/** PostgreSQL backends serving the run's database (the servers' pools). */
async function postgresPids(b: Bench): Promise<number[]> {
  const name = new URL(b.databaseUrl).pathname.slice(1);
  return withClient(b.databaseUrl, async (c) => {
    const rows = (
      await c.query<{ pid: number; own: boolean }>(
        'select pid, pid = pg_backend_pid() as own from pg_stat_activity where datname = $1',
        [name],
      )
    ).rows;
    // This query's own backend is alive while its connection is open: its parent is the postmaster.
    postmasterPid ??= await statFields(rows.find((r) => r.own)!.pid)
      .then((f) => Number(f[1]))
      .catch(() => 0);
    return rows.filter((r) => !r.own).map((r) => r.pid);
  });
}

const cpu = (pid: number) => cpuSecondsOf(pid).catch(() => 0);

/**
 * CPU seconds used so far by the PostgreSQL backends serving the run's database, plus what the
 * backends that already exited used. A pool closes connections idle for 30 s (the gateway's, the
 * ceilings', the reference's), so between two rounds of one contender its backends come and go:
 * summing the live ones only, a backend that exited inside a measurement took its seconds with it
 * and made the difference negative (scenario 1 reported PostgreSQL at −0.59 ms per page). The
 * postmaster reaps every backend, and the kernel adds a reaped child's CPU to its parent's
 * cutime/cstime: that sum counts them all. The backends of other databases and this query's own
 * connection are counted too: nothing else runs on the server during a run, and a connection's
 * start costs a few milliseconds against seconds of load.
 */
export async function postgresCpuSeconds(b: Bench): Promise<number> {
  const pids = await postgresPids(b);
  const live = (await Promise.all(pids.map(cpu))).reduce((a, x) => a + x, 0);
  if (!postmasterPid) return live;
  const f = await statFields(postmasterPid);
  return live + (Number(f[13]) + Number(f[14])) / 100; // cutime, cstime in clock ticks (USER_HZ 100)
}

/** CPU seconds used so far by each process the page path involves. */
export async function cpuSnapshot(b: Bench, serverPid: number): Promise<CpuSnapshot> {
  return {
    server: await cpu(serverPid),
    redis: await cpu(b.redis.pid),
    postgres: await postgresCpuSeconds(b),
    loadgen: await cpu(b.loadgen.pid),
  };
}

/** Milliseconds of CPU per request, by process, between two snapshots. */
export function cpuPerRequest(a: CpuSnapshot, z: CpuSnapshot, requests: number): CpuSnapshot {
  const out = {} as CpuSnapshot;
  for (const k of Object.keys(a) as (keyof CpuSnapshot)[]) out[k] = ((z[k] - a[k]) * 1000) / requests;
  return out;
}
