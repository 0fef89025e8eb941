import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from './ports.js';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/**
 * The real entry point (server/src/main.ts through tsx: what `npm start` runs) as a child
 * process on a free port, with its own heap, signal handling and exit code. Unless the caller
 * sets DATA_DIR, it gets a temporary one that is removed when the process is gone.
 */
export class GatewayProcess {
  /** Every stdout/stderr line so far (pino JSON lines, mostly). */
  readonly logs: string[] = [];
  readonly exited: Promise<Exit>;

  private constructor(
    readonly child: ChildProcess,
    readonly port: number,
    private readonly ownDataDir: string | undefined,
  ) {
    this.exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
    for (const stream of [child.stdout!, child.stderr!]) {
      let buf = '';
      stream.setEncoding('utf8');
      stream.on('data', (chunk: string) => {
        buf += chunk;
        let i = buf.indexOf('\n');
        while (i >= 0) {
          this.logs.push(buf.slice(0, i));
          buf = buf.slice(i + 1);
          i = buf.indexOf('\n');
        }
      });
    }
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** The whole output so far, as chunks of lines. */
  get output(): string[] {
    return this.logs.map((l) => `${l}\n`);
  }

  static async start(env: Record<string, string>, timeoutMs = 30_000): Promise<GatewayProcess> {
    const port = await freePort();
    const ownDataDir = env.DATA_DIR ? undefined : await mkdtemp(path.join(os.tmpdir(), 'signet-child-'));
    const child = spawn(process.execPath, ['--import', 'tsx', 'server/src/main.ts'], {
      cwd: ROOT,
      env: {
        PATH: process.env.PATH ?? '',
        HOME: process.env.HOME ?? '/tmp',
        PORT: String(port),
        HOST: '127.0.0.1',
        SEED_DEMO: 'false',
        ...(ownDataDir ? { DATA_DIR: ownDataDir } : {}),
        ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const g = new GatewayProcess(child, port, ownDataDir);
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (child.exitCode !== null) {
        await g.cleanup();
        throw new Error(`gateway exited with ${child.exitCode}:\n${g.logs.join('\n')}`);
      }
      try {
        if ((await fetch(`${g.url}/healthz`)).ok) return g;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) {
        await g.kill();
        throw new Error(`gateway did not start in ${timeoutMs} ms:\n${g.logs.join('\n')}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** Resident and peak resident memory in bytes, from /proc. */
  async memory(): Promise<{ rss: number; peak: number }> {
    const text = await readFile(`/proc/${this.pid}/status`, 'utf8');
    const field = (name: string) => {
      const m = new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(text);
      if (!m) throw new Error(`no ${name} in /proc/${this.pid}/status`);
      return Number(m[1]) * 1024;
    };
    return { rss: field('VmRSS'), peak: field('VmHWM') };
  }

  /** Resets the peak (VmHWM) to the current RSS, so a later peak measures one operation. */
  resetPeak(): Promise<void> {
    return writeFile(`/proc/${this.pid}/clear_refs`, '5');
  }

  /** Sends a signal (SIGKILL: the way a crashed node disappears) and waits for the exit. */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<Exit> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
    const exit = await this.exited;
    await this.cleanup();
    return exit;
  }

  /** SIGTERM (a graceful stop), SIGKILL if it has not exited in 10 s. */
  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      this.child.kill('SIGTERM');
      const timer = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
      await this.exited;
      clearTimeout(timer);
    }
    await this.cleanup();
  }

  private async cleanup(): Promise<void> {
    if (this.ownDataDir) await rm(this.ownDataDir, { recursive: true, force: true });
  }
}
