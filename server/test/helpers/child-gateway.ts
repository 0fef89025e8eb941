import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CosFixture } from '../fixtures/cos-fixture.js';
import { COS_SECRET_ID, COS_SECRET_KEY, TEST_JWT_SECRET } from './harness.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

export const CHILD_JWT_SECRET = TEST_JWT_SECRET;
export const CHILD_PROXY_SECRET = 'child-proxy-secret-0123456789';

/** Environment for a production-shaped child: PostgreSQL, the cos driver against the fixture, auth on. */
export function childEnv(fixture: CosFixture, databaseUrl: string): Record<string, string> {
  return {
    DATABASE_URL: databaseUrl,
    STORAGE_DRIVER: 'cos',
    COS_SECRET_ID,
    COS_SECRET_KEY,
    COS_BUCKET: 'test-1250000000',
    COS_REGION: 'ap-test',
    COS_DOMAIN: fixture.host,
    COS_PROTOCOL: 'http',
    AUTH_JWT_SECRET: TEST_JWT_SECRET,
    PROXY_TOKEN_SECRET: `k0:${CHILD_PROXY_SECRET}`,
  };
}

export interface ChildGateway {
  url: string;
  pid: number;
  child: ChildProcess;
  /** Every stdout/stderr line so far (pino JSON lines, mostly). */
  logs: string[];
  /** Resolves when the process is gone. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Resident and peak resident memory in bytes, from /proc. */
  memory(): Promise<{ rss: number; peak: number }>;
  /** Resets the peak (VmHWM) to the current RSS, so a later peak measures one operation. */
  resetPeak(): Promise<void>;
  /** SIGKILL if still running, and removes its data folder. */
  kill(): Promise<void>;
}

/**
 * The real entry point (server/src/main.ts through tsx) as a child process: what `npm start`
 * runs, with its own heap, signal handling and exit code.
 */
export async function startChildGateway(env: Record<string, string>): Promise<ChildGateway> {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'signet-child-'));
  const child = spawn(process.execPath, ['--import', 'tsx', 'server/src/main.ts'], {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '/tmp',
      PORT: '0',
      HOST: '127.0.0.1',
      DATA_DIR: dataDir,
      LOG_LEVEL: 'info',
      SEED_DEMO: 'false',
      SIGNET_ROLE: 'api',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: string[] = [];
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  let onLine: ((line: string) => void) | undefined;
  for (const stream of [child.stdout!, child.stderr!]) {
    let buf = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      buf += chunk;
      let i = buf.indexOf('\n');
      while (i >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        logs.push(line);
        onLine?.(line);
        i = buf.indexOf('\n');
      }
    });
  }

  const kill = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited;
    }
    await rm(dataDir, { recursive: true, force: true });
  };

  let port: number;
  try {
    port = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('the gateway did not start within 30 s')), 30_000);
      onLine = (line) => {
        if (!line.includes('signet listening')) return;
        clearTimeout(timer);
        resolve((JSON.parse(line) as { port: number }).port);
      };
      void exited.then(({ code }) => {
        clearTimeout(timer);
        reject(new Error(`the gateway exited with ${code} while starting`));
      });
    });
  } catch (err) {
    await kill();
    throw new Error(`${(err as Error).message}\n${logs.join('\n')}`);
  }

  const status = async (field: string) => {
    const text = await readFile(`/proc/${child.pid}/status`, 'utf8');
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text);
    if (!m) throw new Error(`no ${field} in /proc/${child.pid}/status`);
    return Number(m[1]) * 1024;
  };

  return {
    url: `http://127.0.0.1:${port}`,
    pid: child.pid!,
    child,
    logs,
    exited,
    memory: async () => ({ rss: await status('VmRSS'), peak: await status('VmHWM') }),
    resetPeak: () => writeFile(`/proc/${child.pid}/clear_refs`, '5'),
    kill,
  };
}
