import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { freePort } from './ports.js';
import { OwnedRedis, type RedisSecurity, securityOptions } from './redis-server.js';

export interface SentinelGroupOptions {
  /** The master name the sentinels monitor (REDIS_SENTINEL_NAME). */
  name?: string;
  /** How long a primary may not answer before a sentinel thinks it down (sentinel default: 30 s). */
  downAfterMs?: number;
  failoverTimeoutMs?: number;
  /**
   * The primary's and replica's password and TLS (the sentinels get `auth-pass` for it, and speak
   * TLS too when the nodes do).
   */
  security?: RedisSecurity;
  /** The sentinels' own password (their `requirepass`; `sentinel-pass` between them). */
  sentinelPassword?: string;
}

/**
 * A Redis primary, one replica and three `redis-sentinel` processes (quorum 2) on free ports, all
 * owned by the test and stopped by PID. `REDIS_SENTINELS` for a gateway is `sentinels`.
 */
export class RedisSentinelGroup {
  private readonly sentinelProcs: ChildProcess[] = [];

  private constructor(
    readonly primary: OwnedRedis,
    readonly replica: OwnedRedis,
    readonly sentinelPorts: number[],
    readonly name: string,
    private readonly dir: string,
    private readonly o: SentinelGroupOptions = {},
  ) {}

  /** `host:port,…` of the sentinels: the value of REDIS_SENTINELS. */
  get sentinels(): string {
    return this.sentinelPorts.map((p) => `127.0.0.1:${p}`).join(',');
  }

  static async start(o: SentinelGroupOptions = {}): Promise<RedisSentinelGroup> {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'signet-sentinel-'));
    // Each in the group's folder: a replica writes the RDB of its sync to its working directory,
    // and a primary demoted by a switchover becomes one.
    const primary = new OwnedRedis(await freePort(), o.security);
    await primary.start(['--dir', dir]);
    const replica = new OwnedRedis(await freePort(), o.security);
    const ports = [await freePort(), await freePort(), await freePort()];
    const g = new RedisSentinelGroup(primary, replica, ports, o.name ?? 'mymaster', dir, o);
    try {
      await replica.start(['--replicaof', '127.0.0.1', String(primary.port), '--dir', dir]);
      await g.waitReplicaLinked();
      for (const port of ports) await g.startSentinel(port, o);
      await g.waitMonitoring();
    } catch (err) {
      await g.stop();
      throw err;
    }
    return g;
  }

  private async startSentinel(port: number, o: SentinelGroupOptions): Promise<void> {
    // Sentinel rewrites its config file (what it learns), so each has its own, writable.
    const file = path.join(this.dir, `sentinel-${port}.conf`);
    const { password, tls } = o.security ?? {};
    await writeFile(
      file,
      [
        ...(tls
          ? [
              'port 0',
              `tls-port ${port}`,
              `tls-cert-file ${tls.cert}`,
              `tls-key-file ${tls.key}`,
              `tls-ca-cert-file ${tls.ca}`,
              'tls-auth-clients no',
              // To the primary, the replica and the other sentinels.
              'tls-replication yes',
            ]
          : [`port ${port}`]),
        ...(o.sentinelPassword
          ? [`requirepass ${o.sentinelPassword}`, `sentinel sentinel-pass ${o.sentinelPassword}`]
          : []),
        'bind 127.0.0.1',
        `dir ${this.dir}`,
        `sentinel monitor ${this.name} 127.0.0.1 ${this.primary.port} 2`,
        `sentinel down-after-milliseconds ${this.name} ${o.downAfterMs ?? 1000}`,
        `sentinel failover-timeout ${this.name} ${o.failoverTimeoutMs ?? 5000}`,
        `sentinel parallel-syncs ${this.name} 1`,
        ...(password ? [`sentinel auth-pass ${this.name} ${password}`] : []),
        '',
      ].join('\n'),
    );
    const child = spawn('redis-sentinel', [file], { stdio: 'ignore' });
    const spawnError = new Promise<Error>((resolve) => child.once('error', resolve));
    this.sentinelProcs.push(child);
    const deadline = Date.now() + 5000;
    for (;;) {
      const failed = await Promise.race([spawnError, new Promise<undefined>((r) => setTimeout(r, 50))]);
      if (failed) throw new Error(`could not start redis-sentinel (is it installed?): ${failed.message}`);
      const c = this.clientOf(port);
      try {
        await c.connect();
        await c.ping();
        return;
      } catch {
        if (Date.now() > deadline) throw new Error(`redis-sentinel on port ${port} did not start`);
      } finally {
        c.disconnect();
      }
    }
  }

  private async waitReplicaLinked(timeoutMs = 10_000): Promise<void> {
    const c = this.replica.client();
    try {
      await waitFor('the replica to sync', timeoutMs, async () =>
        (await c.info('replication')).includes('master_link_status:up'),
      );
    } finally {
      c.disconnect();
    }
  }

  /** Every sentinel knows the replica and the two other sentinels: a failover can be agreed on. */
  private async waitMonitoring(timeoutMs = 20_000): Promise<void> {
    await waitFor('the sentinels to find the replica and each other', timeoutMs, async () => {
      for (const port of this.sentinelPorts) {
        const c = this.clientOf(port);
        try {
          await c.connect();
          const replicas = (await c.call('SENTINEL', 'REPLICAS', this.name)) as unknown[];
          const others = (await c.call('SENTINEL', 'SENTINELS', this.name)) as unknown[];
          if (replicas.length < 1 || others.length < 2) return false;
        } finally {
          c.disconnect();
        }
      }
      return true;
    });
  }

  /** The port the sentinels name as primary now (asks the first one that answers). */
  async primaryPort(): Promise<number | undefined> {
    for (const port of this.sentinelPorts) {
      const c = this.clientOf(port);
      try {
        await c.connect();
        const addr = (await c.call('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', this.name)) as string[] | null;
        if (addr) return Number(addr[1]);
      } catch {
        // the next one
      } finally {
        c.disconnect();
      }
    }
    return undefined;
  }

  /** Polls the sentinels until they name `port` as primary; resolves with the moment they did. */
  async waitPromoted(port: number, timeoutMs = 30_000): Promise<number> {
    await waitFor(
      `the sentinels to promote ${port}`,
      timeoutMs,
      async () => (await this.primaryPort()) === port,
      25,
    );
    return Date.now();
  }

  /**
   * A planned switchover (`SENTINEL FAILOVER`): the sentinels promote the replica while the
   * primary is still up, then make the old primary a replica of it. Retried while the sentinels
   * have not yet judged the replica fit (`NOGOODSLAVE` in the first seconds after it linked).
   */
  async switchover(timeoutMs = 15_000, via = 0): Promise<void> {
    const c = this.clientOf(this.sentinelPorts[via]!);
    try {
      await c.connect();
      let refused = '';
      const accepted = async () => {
        try {
          await c.call('SENTINEL', 'FAILOVER', this.name);
          return true;
        } catch (err) {
          refused = (err as Error).message;
          return false;
        }
      };
      await waitFor('a sentinel to accept SENTINEL FAILOVER', timeoutMs, accepted, 200).catch(
        (err: Error) => {
          throw new Error(`${err.message} (last refusal: ${refused})`);
        },
      );
    } finally {
      c.disconnect();
    }
  }

  /** A client of the i-th sentinel (connects on its first command; disconnect it when done). */
  sentinelClient(i: number): Redis {
    return this.clientOf(this.sentinelPorts[i]!);
  }

  private clientOf(port: number): Redis {
    return sentinelClient(port, {
      password: this.o.sentinelPassword,
      ...(this.o.security?.tls ? { tls: this.o.security.tls } : {}),
    });
  }

  /** SIGKILLs the i-th sentinel (in the order of `sentinels`). */
  async killSentinel(i: number): Promise<void> {
    const child = this.sentinelProcs[i];
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.kill('SIGKILL');
    });
  }

  /** Polls `instance` until it is a replica of the Redis on `primaryPort`, in sync with it. */
  async waitReplicaOf(instance: OwnedRedis, primaryPort: number, timeoutMs = 20_000): Promise<void> {
    const c = instance.client();
    try {
      await waitFor(`${instance.port} to replicate ${primaryPort}`, timeoutMs, async () => {
        const info = await c.info('replication');
        return (
          info.includes('role:slave') &&
          info.includes(`master_port:${primaryPort}`) &&
          info.includes('master_link_status:up')
        );
      });
    } finally {
      c.disconnect();
    }
  }

  /** Stops every process by PID (sentinels first, so none fails over while the rest stops). */
  async stop(): Promise<void> {
    for (const child of this.sentinelProcs) {
      if (child.exitCode !== null || child.signalCode !== null) continue;
      await new Promise<void>((resolve) => {
        child.once('exit', () => resolve());
        child.kill('SIGKILL');
      });
    }
    await this.replica.kill();
    await this.primary.kill();
    await rm(this.dir, { recursive: true, force: true });
  }
}

function sentinelClient(port: number, security: RedisSecurity): Redis {
  const c = new Redis(port, '127.0.0.1', {
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    enableReadyCheck: false,
    ...securityOptions(security),
  });
  c.on('error', () => {});
  return c;
}

async function waitFor(what: string, timeoutMs: number, check: () => Promise<boolean>, pollMs = 100) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, pollMs));
  }
}
