import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { Redis, type RedisOptions } from 'ioredis';
import { CountingProxy } from './counting-proxy.js';
import { freePort } from './ports.js';
import { securityArgs, securityOptions } from './redis-server.js';
import type { TlsFiles } from './tls-files.js';

const run = promisify(execFile);

/**
 * A local Redis Cluster of `masters` nodes, each with `replicas` replicas (default none), that the
 * test starts and stops.
 *
 * With `countOnTheWire`, a counting TCP proxy stands in front of each node and the node announces
 * the proxy's port (`cluster-announce-port`) as its own: CLUSTER SLOTS and MOVED name the proxies,
 * so a client seeded with `nodes` sends every command through them, and a test counts round trips
 * per node on the wire. (The cluster bus keeps the real port + 10000, so the nodes still gossip
 * directly.) `ports` are always the real ones: kill, restart and INFO use them.
 */
export class LocalRedisCluster {
  private readonly procs = new Map<number, ChildProcess>();
  /** Nodes SIGKILLed and not started again: health checks ask the others. */
  private readonly down = new Set<number>();
  /** Real port -> the counting proxy in front of it (with `countOnTheWire`). */
  readonly proxies = new Map<number, CountingProxy>();

  private constructor(
    readonly ports: number[],
    private readonly dir: string,
    private readonly nodeTimeoutMs: number,
    /** Every node's requirepass and masterauth (the test's own clients authenticate with it). */
    readonly password?: string,
    /** TLS only on every node's port, the cluster bus too (`tls-cluster`). */
    readonly tls?: TlsFiles,
  ) {}

  /** The test's own clients' password and TLS options (none without them). */
  private auth(): RedisOptions {
    return securityOptions({
      ...(this.password ? { password: this.password } : {}),
      ...(this.tls ? { tls: this.tls } : {}),
    });
  }

  /** The addresses clients should be given: the proxies' when counting, else the nodes'. */
  get nodes(): string {
    return this.ports.map((p) => `127.0.0.1:${this.proxies.get(p)?.port ?? p}`).join(',');
  }

  static async start(
    masters = 3,
    opts: {
      countOnTheWire?: boolean;
      /** Replicas per master (`--cluster-replicas`): a master that dies is replaced by one. */
      replicas?: number;
      /** cluster-node-timeout: how long a node may not answer before it is failing (default 2 s). */
      nodeTimeoutMs?: number;
      /** requirepass and masterauth on every node (REDIS_PASSWORD for a gateway). */
      password?: string;
      /** TLS only (REDIS_TLS for a gateway, with the CA in NODE_EXTRA_CA_CERTS). */
      tls?: TlsFiles;
    } = {},
  ): Promise<LocalRedisCluster> {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'signet-cluster-'));
    const replicas = opts.replicas ?? 0;
    const ports: number[] = [];
    for (let i = 0; i < masters * (1 + replicas); i++) ports.push(await freePort());
    const c = new LocalRedisCluster(ports, dir, opts.nodeTimeoutMs ?? 2000, opts.password, opts.tls);
    // A start that fails half-way (a node that cannot bind, a cluster that never turns healthy)
    // stops the nodes it started instead of leaving them running.
    try {
      for (const p of ports) await c.startNode(p);
      // Created on the real ports (redis-cli derives the bus port from the address it is given).
      await run('redis-cli', [
        '--cluster',
        'create',
        ...ports.map((p) => `127.0.0.1:${p}`),
        '--cluster-replicas',
        String(replicas),
        '--cluster-yes',
        ...(opts.password ? ['-a', opts.password, '--no-auth-warning'] : []),
        ...(opts.tls ? ['--tls', '--cacert', opts.tls.ca] : []),
      ]);
      await c.waitHealthy();
      if (replicas > 0) await c.waitReplicasSynced(masters * replicas);
      if (opts.countOnTheWire) {
        for (const p of ports) c.proxies.set(p, await CountingProxy.start('redis', '127.0.0.1', p));
        for (const p of ports) {
          const r = new Redis(p, '127.0.0.1', { ...c.auth(), maxRetriesPerRequest: 0 });
          r.on('error', () => {});
          await r.config('SET', 'cluster-announce-port', String(c.proxies.get(p)!.port));
          r.disconnect();
        }
        await c.waitAnnounced();
      }
    } catch (err) {
      await c.stop();
      throw err;
    }
    return c;
  }

  /** Waits until every node's CLUSTER SLOTS names only the proxies (the change travels by gossip). */
  private async waitAnnounced(timeoutMs = 20_000): Promise<void> {
    const want = new Set([...this.proxies.values()].map((x) => x.port));
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      let ok = true;
      for (const p of this.ports) {
        const r = new Redis(p, '127.0.0.1', { ...this.auth(), maxRetriesPerRequest: 0, lazyConnect: true });
        r.on('error', () => {});
        try {
          await r.connect();
          const slots = await r.cluster('SLOTS');
          if (!slots.every(([, , master]) => master !== undefined && want.has(Number(master[1])))) ok = false;
        } catch {
          ok = false;
        } finally {
          r.disconnect();
        }
      }
      if (ok) return;
      if (Date.now() > deadline) throw new Error('cluster nodes did not announce the proxies in time');
      await new Promise((res) => setTimeout(res, 100));
    }
  }

  async startNode(port: number): Promise<void> {
    const child = spawn(
      'redis-server',
      [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--cluster-enabled',
        'yes',
        '--cluster-config-file',
        `nodes-${port}.conf`,
        '--cluster-node-timeout',
        String(this.nodeTimeoutMs),
        '--save',
        '',
        '--appendonly',
        'no',
        // A replica's first sync starts at once (the default waits 5 s for more replicas).
        '--repl-diskless-sync-delay',
        '0',
        '--dir',
        this.dir,
        ...securityArgs(port, {
          ...(this.password ? { password: this.password } : {}),
          ...(this.tls ? { tls: this.tls } : {}),
        }),
        ...(this.tls ? ['--tls-cluster', 'yes'] : []),
        // A restarted node announces its proxy again (CONFIG SET does not survive a restart).
        ...(this.proxies.has(port) ? ['--cluster-announce-port', String(this.proxies.get(port)!.port)] : []),
      ],
      { stdio: 'ignore' },
    );
    this.procs.set(port, child);
    this.down.delete(port);
    const deadline = Date.now() + 5000;
    for (;;) {
      const r = new Redis(port, '127.0.0.1', {
        ...this.auth(),
        lazyConnect: true,
        maxRetriesPerRequest: 0,
        retryStrategy: () => null,
      });
      r.on('error', () => {});
      try {
        await r.connect();
        await r.ping();
        r.disconnect();
        return;
      } catch {
        r.disconnect();
        if (Date.now() > deadline) throw new Error(`redis-server (cluster node) on ${port} did not start`);
        await new Promise((res) => setTimeout(res, 50));
      }
    }
  }

  /**
   * Waits until `count` replicas have synced with their masters. A replica that never synced
   * would not stand for election (its data is too old), so a failover test must wait for this.
   */
  private async waitReplicasSynced(count: number, timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      let synced = 0;
      for (const p of this.ports) {
        const r = new Redis(p, '127.0.0.1', {
          ...this.auth(),
          maxRetriesPerRequest: 0,
          retryStrategy: () => null,
          lazyConnect: true,
        });
        r.on('error', () => {});
        try {
          await r.connect();
          const info = await r.info('replication');
          if (info.includes('role:slave') && info.includes('master_link_status:up')) synced++;
        } catch {
          // counted as not synced
        } finally {
          r.disconnect();
        }
      }
      if (synced >= count) return;
      if (Date.now() > deadline) throw new Error(`only ${synced} of ${count} cluster replicas synced`);
      await new Promise((res) => setTimeout(res, 200));
    }
  }

  /** Waits until every running node reports cluster_state:ok. */
  async waitHealthy(timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      let ok = true;
      for (const p of this.ports.filter((x) => !this.down.has(x))) {
        const r = new Redis(p, '127.0.0.1', {
          ...this.auth(),
          maxRetriesPerRequest: 0,
          retryStrategy: () => null,
          lazyConnect: true,
        });
        r.on('error', () => {});
        try {
          await r.connect();
          const info = await r.cluster('INFO');
          if (!String(info).includes('cluster_state:ok')) ok = false;
        } catch {
          ok = false;
        } finally {
          r.disconnect();
        }
      }
      if (ok) return;
      if (Date.now() > deadline) throw new Error('redis cluster did not become healthy');
      await new Promise((res) => setTimeout(res, 200));
    }
  }

  /** SIGKILLs one node (a master's slots are unreachable until it returns or a replica takes over). */
  async kill(port: number): Promise<void> {
    const child = this.procs.get(port);
    this.down.add(port);
    // A SIGKILLed child has a signalCode and no exitCode: either means it is gone already.
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.kill('SIGKILL');
    });
  }

  /** Each running node's role as a live node sees it: masters, and the master each replica follows. */
  async topology(): Promise<{ masters: number[]; replicaOf: Map<number, number> }> {
    for (const p of this.ports.filter((x) => !this.down.has(x))) {
      const r = new Redis(p, '127.0.0.1', {
        ...this.auth(),
        maxRetriesPerRequest: 0,
        retryStrategy: () => null,
        lazyConnect: true,
      });
      r.on('error', () => {});
      try {
        await r.connect();
        const text = String(await r.cluster('NODES'));
        // <id> <ip:port@bus> <flags> <master id or -> ...
        const rows = text
          .trim()
          .split('\n')
          .map((line) => line.split(' '))
          .map(([id, addr, flags, master]) => ({
            id: id!,
            port: Number(addr!.split('@')[0]!.split(':')[1]),
            flags: flags!.split(','),
            master: master!,
          }));
        const portOf = new Map(rows.map((x) => [x.id, x.port] as const));
        const live = rows.filter((x) => !x.flags.includes('fail') && !x.flags.includes('fail?'));
        return {
          masters: live.filter((x) => x.flags.includes('master')).map((x) => x.port),
          replicaOf: new Map(
            live
              .filter((x) => x.flags.includes('slave'))
              .map((x) => [x.port, portOf.get(x.master)!] as const),
          ),
        };
      } catch {
        // ask the next node
      } finally {
        r.disconnect();
      }
    }
    throw new Error('no cluster node answered CLUSTER NODES');
  }

  /** Restarts a killed master with its saved cluster config: it takes its slots back. */
  async restart(port: number): Promise<void> {
    await this.startNode(port);
    await this.waitHealthy();
  }

  /** Calls per command on every node, summed (INFO commandstats). */
  async commandStats(): Promise<Record<string, number>> {
    const total: Record<string, number> = {};
    for (const p of this.ports.filter((x) => !this.down.has(x))) {
      const r = new Redis(p, '127.0.0.1', { ...this.auth(), maxRetriesPerRequest: 0 });
      r.on('error', () => {});
      const info = await r.info('commandstats');
      r.disconnect();
      for (const line of info.split('\n')) {
        const m = /^cmdstat_([^:]+):calls=(\d+)/.exec(line.trim());
        if (m) total[m[1]!] = (total[m[1]!] ?? 0) + Number(m[2]);
      }
    }
    return total;
  }

  async resetStats(): Promise<void> {
    for (const p of this.ports) {
      const r = new Redis(p, '127.0.0.1', { ...this.auth(), maxRetriesPerRequest: 0 });
      r.on('error', () => {});
      await r.config('RESETSTAT');
      r.disconnect();
    }
  }

  async stop(): Promise<void> {
    for (const x of this.proxies.values()) await x.close();
    for (const p of this.ports) await this.kill(p);
    await rm(this.dir, { recursive: true, force: true });
  }
}
