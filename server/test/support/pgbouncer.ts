import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chown, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { testDatabaseUrl } from './env.js';
import { freePort } from './ports.js';

const run = promisify(execFile);
const BIN = process.env.PGBOUNCER_BIN ?? '/usr/sbin/pgbouncer';

/**
 * A real PgBouncer the test owns, in front of the test PostgreSQL (127.0.0.1:5432 unless told),
 * on a free port: every database name passes through to the same name, trust auth, in the pool
 * mode asked for. Started as a child process and stopped by its PID. As root, it switches to
 * the `postgres` user (PgBouncer refuses to run as root).
 */
export class PgBouncer {
  private constructor(
    readonly port: number,
    private readonly dir: string,
    private readonly child: ChildProcess,
  ) {}

  /** The URL of `database` through the pooler, as the test PostgreSQL's user. */
  url(database: string): string {
    const u = new URL(testDatabaseUrl());
    u.host = `127.0.0.1:${this.port}`;
    u.pathname = `/${database}`;
    return u.toString();
  }

  static async start(
    opts: {
      poolMode?: 'transaction' | 'session';
      poolSize?: number;
      /** Seconds a query may wait for a server connection before PgBouncer fails it (08P01). */
      queryWaitTimeout?: number;
      target?: { host: string; port: number };
    } = {},
  ): Promise<PgBouncer> {
    if (!existsSync(BIN)) {
      throw new Error(
        `PgBouncer is needed for this test: no ${BIN} (apt-get install pgbouncer, or set PGBOUNCER_BIN)`,
      );
    }
    // The free port is only free when asked: another process may bind it before PgBouncer does.
    for (let attempt = 1; ; attempt++) {
      try {
        return await PgBouncer.startOnce(opts);
      } catch (err) {
        if (attempt === 3 || !(err instanceof PortTaken)) throw err;
      }
    }
  }

  private static async startOnce(opts: Parameters<typeof PgBouncer.start>[0] = {}): Promise<PgBouncer> {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'signet-pgbouncer-'));
    const port = await freePort();
    // The PostgreSQL the tests use (TEST_DATABASE_URL), whose databases createTestDatabase makes.
    const base = new URL(testDatabaseUrl());
    const target = opts.target ?? { host: base.hostname, port: Number(base.port || 5432) };
    const user = decodeURIComponent(base.username || 'postgres');
    await writeFile(path.join(dir, 'users.txt'), `"${user}" ""\n`);
    await writeFile(
      path.join(dir, 'pgbouncer.ini'),
      [
        '[databases]',
        `* = host=${target.host} port=${target.port}`,
        '[pgbouncer]',
        'listen_addr = 127.0.0.1',
        `listen_port = ${port}`,
        'unix_socket_dir =',
        'auth_type = trust',
        `auth_file = ${path.join(dir, 'users.txt')}`,
        `pool_mode = ${opts.poolMode ?? 'transaction'}`,
        `default_pool_size = ${opts.poolSize ?? 2}`,
        ...(opts.queryWaitTimeout !== undefined ? [`query_wait_timeout = ${opts.queryWaitTimeout}`] : []),
        `logfile = ${path.join(dir, 'pgbouncer.log')}`,
        '',
      ].join('\n'),
    );
    const root = process.getuid?.() === 0;
    if (root) {
      const { stdout } = await run('id', ['-u', 'postgres']);
      await chown(dir, Number(stdout.trim()), -1);
      for (const f of ['users.txt', 'pgbouncer.ini'])
        await chown(path.join(dir, f), Number(stdout.trim()), -1);
    }
    const child = spawn(BIN, [...(root ? ['-u', 'postgres'] : []), path.join(dir, 'pgbouncer.ini')], {
      cwd: dir,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const bouncer = new PgBouncer(port, dir, child);
    const deadline = Date.now() + 10_000;
    for (;;) {
      const c = new pg.Client({ connectionString: bouncer.url('postgres'), connectionTimeoutMillis: 1000 });
      c.on('error', () => {});
      try {
        await c.connect();
        await c.query('select 1');
        await c.end();
        return bouncer;
      } catch (err) {
        await c.end().catch(() => {});
        if (child.exitCode !== null || Date.now() > deadline) {
          const log = await readFile(path.join(dir, 'pgbouncer.log'), 'utf8').catch(() => '');
          await bouncer.stop();
          if (/Address already in use/.test(stderr + log)) throw new PortTaken(port);
          throw new Error(`PgBouncer did not start: ${(err as Error).message}\n${stderr}\n${log}`);
        }
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  }

  /** Stops it (SIGTERM to its PID; SIGKILL after 5 s) and removes its folder. */
  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      const exited = new Promise((r) => this.child.once('exit', r));
      this.child.kill('SIGTERM');
      const timer = setTimeout(() => this.child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    }
    await rm(this.dir, { recursive: true, force: true });
  }
}

/** PgBouncer could not bind the port it was given: start again on another. */
class PortTaken extends Error {
  constructor(port: number) {
    super(`port ${port} was taken before PgBouncer bound it`);
  }
}
