import { readdir, readFile } from 'node:fs/promises';
import type { Bench } from './bench.js';
import { withClient } from './database.js';
import { cpuSecondsOrZero as cpu, cpuSecondsIn, statFields } from './processes.js';
import { median } from './stats.js';

/** `server`: the process under load in that run (the gateway, or one of the ceilings). */
export type CpuSnapshot = Record<'server' | 'redis' | 'postgres' | 'loadgen', number>;

/** The postmaster's pid, once per run; 0 when the database server does not run on this machine. */
let postmasterPid: number | undefined;

async function comm(pid: number): Promise<string> {
  return (await readFile(`/proc/${pid}/comm`, 'utf8')).trim();
}

/**
 * The postmaster: the parent of this query's own backend, both named `postgres` (a server on
 * another machine or in a container gives a pid that is not its backend here, or none).
 */
async function findPostmaster(b: Bench): Promise<number> {
  return withClient(b.databaseUrl, async (c) => {
    const own = (await c.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0]!.pid;
    try {
      const parent = Number((await statFields(own))[1]);
      return (await comm(own)) === 'postgres' && (await comm(parent)) === 'postgres' ? parent : 0;
    } catch {
      return 0;
    }
  });
}

/** CPU seconds of the postmaster's live children (backends and background processes). */
async function liveChildrenCpu(postmaster: number): Promise<number> {
  let total = 0;
  for (const name of await readdir('/proc')) {
    const pid = Number(name);
    if (!Number.isInteger(pid)) continue;
    try {
      const f = await statFields(pid);
      if (Number(f[1]) === postmaster) total += cpuSecondsIn(f);
    } catch {
      // Exited meanwhile: counted by the postmaster's reaped children once reaped.
    }
  }
  return total;
}

/** CPU seconds of the postmaster's reaped children (utime, stime of the waited-for: cutime, cstime). */
async function reapedChildrenCpu(postmaster: number): Promise<number> {
  const f = await statFields(postmaster);
  return (Number(f[13]) + Number(f[14])) / 100;
}

/**
 * CPU seconds used so far by the PostgreSQL server: its processes alive now plus those that
 * exited. The pools close connections idle for 30 s (the gateway's, the ceilings', the
 * reference's), so between two rounds of one contender its backends come and go: summing the live
 * backends only, one that exited inside a measurement took its seconds with it and made the
 * difference negative (scenario 1 reported PostgreSQL at −0.59 ms per page). The kernel adds a
 * reaped child's CPU to its parent's cutime/cstime, so the postmaster's live and reaped children
 * together count every backend once, whatever its database: nothing else may use the server
 * during a run. The reaped sum is read before and after the live ones, and again until it held
 * still, so a backend reaped in between is not counted twice. 0 when the server is not local.
 */
export async function postgresCpuSeconds(b: Bench): Promise<number> {
  postmasterPid ??= await findPostmaster(b);
  if (postmasterPid === 0) return 0;
  let total = 0;
  for (let tries = 0; tries < 5; tries++) {
    const before = await reapedChildrenCpu(postmasterPid);
    const live = await liveChildrenCpu(postmasterPid);
    const after = await reapedChildrenCpu(postmasterPid);
    total = live + after;
    if (before === after) break;
  }
  return total;
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

/** The median of each process's figure over several runs (rounds of one contender). */
export function cpuMedian(list: readonly CpuSnapshot[]): CpuSnapshot {
  const out = {} as CpuSnapshot;
  for (const k of Object.keys(list[0]!) as (keyof CpuSnapshot)[]) out[k] = median(list.map((x) => x[k]));
  return out;
}
