import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { GatewayProcess } from '../../../server/test/support/gateway-process.js';
import { freePort } from '../../../server/test/support/ports.js';

/**
 * The built gateway (`node server/dist/main.js`) with embedded defaults: PGlite and the local
 * bucket in a temp DATA_DIR, the in-process cache. It can be restarted on the same port and
 * data, with other settings (e.g. a new signing secret) — behind the back of an open page.
 */
export class Gateway {
  /** The output of the runs before the current one (a restart starts a new process). */
  private readonly earlier: string[] = [];
  private process: GatewayProcess | null = null;

  private constructor(
    readonly port: number,
    readonly dataDir: string,
    private env: Record<string, string>,
    private readonly startTimeoutMs = 60_000,
  ) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** `startTimeoutMs`: how long a start may take (default 60 s; PGlite's first start is slow on a busy machine). */
  static async start(env: Record<string, string> = {}, startTimeoutMs = 60_000): Promise<Gateway> {
    const dataDir = await mkdtemp(path.join(tmpdir(), 'signet-e2e-'));
    const gw = new Gateway(await freePort(), dataDir, env, startTimeoutMs);
    await gw.launch();
    return gw;
  }

  private async launch(): Promise<void> {
    this.process = await GatewayProcess.launch({
      args: ['server/dist/main.js'],
      port: this.port,
      env: {
        NODE_ENV: 'development',
        PUBLIC_URL: this.url,
        DATA_DIR: this.dataDir,
        LOG_LEVEL: 'warn',
        ...this.env,
      },
      timeoutMs: this.startTimeoutMs,
    });
  }

  /** The last 4,000 characters of the gateway's output, over all its runs. */
  log(): string {
    return [...this.earlier, ...(this.process?.output ?? [])].join('').slice(-4000);
  }

  /** Stops the process (SIGTERM, SIGKILL after 10 s); the data directory stays. */
  async stop(): Promise<void> {
    const running = this.process;
    this.process = null;
    if (!running) return;
    await running.stop();
    this.earlier.push(...running.output);
  }

  /** Same port and data, changed settings. */
  async restart(env: Record<string, string>): Promise<void> {
    await this.stop();
    this.env = { ...this.env, ...env };
    await this.launch();
  }

  async close(): Promise<void> {
    await this.stop();
    await rm(this.dataDir, { recursive: true, force: true });
  }

  /** A GraphQL request from outside the browser (as a test's own client). */
  async graphql<T>(query: string, variables: Record<string, unknown> = {}, token?: string): Promise<T> {
    const res = await fetch(`${this.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: JSON.stringify({ query, variables }),
    });
    const body = (await res.json()) as { data?: T; errors?: unknown[] };
    if (body.errors?.length || !body.data) throw new Error(`GraphQL failed: ${JSON.stringify(body.errors)}`);
    return body.data;
  }
}
