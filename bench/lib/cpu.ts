import type { Bench } from './bench.js';
import { withClient } from './database.js';
import { cpuSecondsOf } from './processes.js';

/** `server`: the process under load in that run (the gateway, or one of the ceilings). */
export type CpuSnapshot = Record<'server' | 'redis' | 'postgres' | 'loadgen', number>;

/** PostgreSQL backends serving the run's database (the gateway's pool). */
async function postgresPids(b: Bench): Promise<number[]> {
  const name = new URL(b.databaseUrl).pathname.slice(1);
  return withClient(b.databaseUrl, async (c) =>
    (
      await c.query<{ pid: number }>(
        'select pid from pg_stat_activity where datname = $1 and pid <> pg_backend_pid()',
        [name],
      )
    ).rows.map((r) => r.pid),
  );
}

const cpu = (pid: number) => cpuSecondsOf(pid).catch(() => 0);

/**
 * CPU seconds used so far by the PostgreSQL backends serving the run's database. A backend that
 * exits between two readings (a pool closing an idle connection) takes its seconds with it.
 */
export async function postgresCpuSeconds(b: Bench): Promise<number> {
  const pgs = await postgresPids(b);
  return (await Promise.all(pgs.map(cpu))).reduce((a, x) => a + x, 0);
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
