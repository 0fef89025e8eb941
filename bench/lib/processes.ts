import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { GatewayProcess } from '../../server/test/support/gateway-process.js';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Resident set size now and at its peak (VmHWM), in MiB, from /proc. */
export async function memoryOf(pid: number): Promise<{ rssMiB: number; peakMiB: number }> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = (name: string) =>
    Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? Number.NaN);
  return { rssMiB: kb('VmRSS') / 1024, peakMiB: kb('VmHWM') / 1024 };
}

/** CPU seconds (user + system) a process has used so far, from /proc/<pid>/stat. */
export async function cpuSecondsOf(pid: number): Promise<number> {
  return cpuSecondsIn(await statFields(pid));
}

/** CPU seconds (user + system) from a process's /proc/<pid>/stat fields (`statFields`). */
export function cpuSecondsIn(fields: readonly string[]): number {
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (USER_HZ 100)
}

/** A process's CPU seconds so far, or 0 once it has exited. */
export function cpuSecondsOrZero(pid: number): Promise<number> {
  return cpuSecondsOf(pid).catch(() => 0);
}

/** The fields of /proc/<pid>/stat after the command name (which may contain spaces): state first. */
export async function statFields(pid: number): Promise<string[]> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}

/**
 * Starts `node <args>` (a gateway, a worker, a bare server) on a free port (PORT in its env) and
 * waits for `readyPath` to answer below 500, through the tests' child-process helper: up to a
 * minute to start, the last 200 lines of output kept for errors, 12 s from SIGTERM to SIGKILL.
 */
export function startNode(
  name: string,
  args: string[],
  env: Record<string, string>,
  options: { readyPath?: string; timeoutMs?: number; port?: number; node?: string } = {},
): Promise<GatewayProcess> {
  return GatewayProcess.launch({
    name,
    args,
    env,
    ...(options.port !== undefined ? { port: options.port } : {}),
    ...(options.node !== undefined ? { node: options.node } : {}),
    readyPath: options.readyPath ?? '/healthz',
    isReady: (status) => status < 500,
    timeoutMs: options.timeoutMs ?? 60_000,
    pollMs: 50,
    keepLines: 200,
    stopGraceMs: 12_000,
  });
}

/** Runs a command to completion; resolves with its stdout (rejects with its output on failure). */
export function run(cmd: string, args: string[], options: { allowFail?: boolean } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
    });
    child.on('error', reject);
    child.on('exit', (code) => {
      if (code === 0 || options.allowFail) resolve(out);
      else reject(new Error(`${cmd} ${args.join(' ')} exited with ${code}:\n${out}${err}`));
    });
  });
}
