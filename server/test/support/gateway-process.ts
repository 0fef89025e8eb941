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

export interface LaunchOptions {
  /** What `node` runs, from the repository root (default: the gateway from source through tsx). */
  args?: string[];
  /** The Node.js executable (default: this process's; the bench compares Node.js versions). */
  node?: string;
  /** Added to PATH, HOME, PORT and HOST (nothing else of this process's environment is passed on). */
  env?: Record<string, string>;
  /** Default: a free one. */
  port?: number;
  /** Polled until it answers (default /healthz); redirects are not followed. */
  readyPath?: string;
  /** Which status of `readyPath` means up (default: a 2xx). */
  isReady?: (status: number) => boolean;
  /** How long it may take to come up before it is killed (default 30 s). */
  timeoutMs?: number;
  /** Between two readiness polls (default 100 ms). */
  pollMs?: number;
  /** Keep only the last N lines of output (default: all of them). */
  keepLines?: number;
  /** How long stop() waits after SIGTERM before it sends SIGKILL (default 10 s). */
  stopGraceMs?: number;
  /** In error messages (default 'gateway'). */
  name?: string;
}

/**
 * A Node.js HTTP server as a child process on its own port, with its own heap, signal handling and
 * exit code: by default the real entry point (server/src/main.ts through tsx: what `npm start`
 * runs). The server tests use it as is (`start`); web e2e (the built gateway, restarted on the same
 * port) and the bench (any of its servers) add their own defaults over `launch`.
 */
export class GatewayProcess {
  /** Every stdout/stderr line so far (pino JSON lines, mostly), or the last `keepLines` of them. */
  readonly logs: string[] = [];
  readonly exited: Promise<Exit>;

  private constructor(
    readonly child: ChildProcess,
    readonly port: number,
    private readonly options: LaunchOptions,
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
          if (options.keepLines !== undefined && this.logs.length > options.keepLines) this.logs.shift();
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

  /**
   * The gateway from source on a free port, no demo images unless asked. Unless `env` sets
   * DATA_DIR, it gets a temporary one that is removed when the process is gone.
   */
  static async start(env: Record<string, string>, timeoutMs = 30_000): Promise<GatewayProcess> {
    const ownDataDir = env.DATA_DIR ? undefined : await mkdtemp(path.join(os.tmpdir(), 'signet-child-'));
    return GatewayProcess.spawn(
      { env: { SEED_DEMO: 'false', ...(ownDataDir ? { DATA_DIR: ownDataDir } : {}), ...env }, timeoutMs },
      ownDataDir,
    );
  }

  /** Any Node.js server (the gateway from source unless `args` say otherwise), once it is up. */
  static launch(options: LaunchOptions): Promise<GatewayProcess> {
    return GatewayProcess.spawn(options, undefined);
  }

  private static async spawn(o: LaunchOptions, ownDataDir: string | undefined): Promise<GatewayProcess> {
    const port = o.port ?? (await freePort());
    const name = o.name ?? 'gateway';
    const timeoutMs = o.timeoutMs ?? 30_000;
    const child = spawn(o.node ?? process.execPath, o.args ?? ['--import', 'tsx', 'server/src/main.ts'], {
      cwd: ROOT,
      env: {
        PATH: process.env.PATH ?? '',
        HOME: process.env.HOME ?? '/tmp',
        PORT: String(port),
        HOST: '127.0.0.1',
        ...o.env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const g = new GatewayProcess(child, port, o, ownDataDir);
    const isReady = o.isReady ?? ((status: number) => status >= 200 && status < 300);
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (child.exitCode !== null) {
        await g.cleanup();
        throw new Error(`${name} exited with ${child.exitCode}:\n${g.logs.join('\n')}`);
      }
      try {
        const res = await fetch(`${g.url}${o.readyPath ?? '/healthz'}`, { redirect: 'manual' });
        if (isReady(res.status)) return g;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) {
        await g.kill();
        throw new Error(`${name} did not start in ${timeoutMs} ms:\n${g.logs.join('\n')}`);
      }
      await new Promise((r) => setTimeout(r, o.pollMs ?? 100));
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
    if (this.running()) this.child.kill(signal);
    const exit = await this.exited;
    await this.cleanup();
    return exit;
  }

  /** SIGTERM (a graceful stop), SIGKILL if it has not exited within the grace (10 s by default). */
  async stop(): Promise<void> {
    if (this.running()) {
      this.child.kill('SIGTERM');
      const timer = setTimeout(() => this.child.kill('SIGKILL'), this.options.stopGraceMs ?? 10_000);
      await this.exited;
      clearTimeout(timer);
    }
    await this.cleanup();
  }

  private running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  private async cleanup(): Promise<void> {
    if (this.ownDataDir) await rm(this.ownDataDir, { recursive: true, force: true });
  }
}
