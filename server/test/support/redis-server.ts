import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { Redis, type RedisOptions } from 'ioredis';
import { freePort } from './ports.js';
import type { TlsFiles } from './tls-files.js';

/** How the test's own clients reach a Redis that has a password or speaks only TLS. */
export interface RedisSecurity {
  /** requirepass (and masterauth: a replica, or a primary demoted to one, needs it too). */
  password?: string;
  /** TLS only, on `port` (the plain port is closed; replication over TLS too). */
  tls?: TlsFiles;
}

/** The server arguments for `security`: a password, and TLS on `port` instead of plain TCP. */
export function securityArgs(port: number, security: RedisSecurity): string[] {
  const { password, tls } = security;
  return [
    ...(password ? ['--requirepass', password, '--masterauth', password] : []),
    ...(tls
      ? [
          '--port',
          '0',
          '--tls-port',
          String(port),
          '--tls-cert-file',
          tls.cert,
          '--tls-key-file',
          tls.key,
          '--tls-ca-cert-file',
          tls.ca,
          '--tls-auth-clients',
          'no',
          '--tls-replication',
          'yes',
        ]
      : []),
  ];
}

/** A test client's options for `security` (its CA given directly: this process has no extra CAs). */
export function securityOptions(security: { password?: string; tls?: TlsFiles }): RedisOptions {
  return {
    ...(security.password ? { password: security.password } : {}),
    ...(security.tls ? { tls: { ca: readFileSync(security.tls.ca) } } : {}),
  };
}

/** A private redis-server the test owns: it can be killed and restarted on the same port. */
export class OwnedRedis {
  private child: ChildProcess | undefined;
  constructor(
    readonly port: number,
    readonly security: RedisSecurity = {},
  ) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  static async start(): Promise<OwnedRedis> {
    const r = new OwnedRedis(await freePort());
    await r.start();
    return r;
  }

  async start(extraArgs: string[] = []): Promise<void> {
    this.child = spawn(
      'redis-server',
      [
        '--port',
        String(this.port),
        '--bind',
        '127.0.0.1',
        '--save',
        '',
        '--appendonly',
        'no',
        ...securityArgs(this.port, this.security),
        ...extraArgs,
      ],
      { stdio: 'ignore' },
    );
    this.child.on('error', (err) => {
      throw new Error(`could not start redis-server (is it installed?): ${err.message}`);
    });
    const deadline = Date.now() + 5000;
    for (;;) {
      const c = new Redis(this.port, '127.0.0.1', {
        lazyConnect: true,
        maxRetriesPerRequest: 0,
        retryStrategy: () => null,
        ...securityOptions(this.security),
      });
      c.on('error', () => {});
      try {
        await c.connect();
        await c.ping();
        c.disconnect();
        return;
      } catch {
        c.disconnect();
        if (Date.now() > deadline) throw new Error(`redis-server on port ${this.port} did not start`);
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  }

  /** SIGKILL: the way a crashed Redis disappears. */
  async kill(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.kill('SIGKILL');
    });
    this.child = undefined;
  }

  /** A client for assertions (INFO commandstats, MEMORY USAGE…). */
  client(): Redis {
    const c = new Redis(this.port, '127.0.0.1', {
      maxRetriesPerRequest: 1,
      ...securityOptions(this.security),
    });
    c.on('error', () => {});
    return c;
  }
}

/** Calls per command since the last CONFIG RESETSTAT, from INFO commandstats. */
export async function commandStats(client: Redis): Promise<Record<string, number>> {
  const info = await client.info('commandstats');
  const out: Record<string, number> = {};
  for (const line of info.split('\n')) {
    const m = /^cmdstat_([^:]+):calls=(\d+)/.exec(line.trim());
    if (m) out[m[1]!] = Number(m[2]);
  }
  return out;
}
