import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { CountingProxy } from './counting-proxy.js';
import { freePort } from './ports.js';

const run = promisify(execFile);

/**
 * A local Redis Cluster of `masters` nodes (no replicas) that the test starts and stops.
 *
 * With `countOnTheWire`, a counting TCP proxy stands in front of each node and the node announces
 * the proxy's port (`cluster-announce-port`) as its own: CLUSTER SLOTS and MOVED name the proxies,
 * so a client seeded with `nodes` sends every command through them, and a test counts round trips
 * per node on the wire. (The cluster bus keeps the real port + 10000, so the nodes still gossip
 * directly.) `ports` are always the real ones: kill, restart and INFO use them.
 */
export class LocalRedisCluster {
  private readonly procs = new Map<number, ChildProcess>();
  /** Real port -> the counting proxy in front of it (with `countOnTheWire`). */
  readonly proxies = new Map<number, CountingProxy>();

  private constructor(
    readonly ports: number[],
    private readonly dir: string,
  ) {}

  /** The addresses clients should be given: the proxies' when counting, else the nodes'. */
  get nodes(): string {
    return this.ports.map((p) => `127.0.0.1:${this.proxies.get(p)?.port ?? p}`).join(',');
  }

  static async start(masters = 3, opts: { countOnTheWire?: boolean } = {}): Promise<LocalRedisCluster> {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'signet-cluster-'));
    const ports: number[] = [];
    for (let i = 0; i < masters; i++) ports.push(await freePort());
    const c = new LocalRedisCluster(ports, dir);
    for (const p of ports) await c.startNode(p);
    // Created on the real ports (redis-cli derives the bus port from the address it is given).
    await run('redis-cli', [
      '--cluster',
      'create',
      ...ports.map((p) => `127.0.0.1:${p}`),
      '--cluster-replicas',
      '0',
      '--cluster-yes',
    ]);
    await c.waitHealthy();
    if (opts.countOnTheWire) {
      for (const p of ports) c.proxies.set(p, await CountingProxy.start('redis', '127.0.0.1', p));
      for (const p of ports) {
        const r = new Redis(p, '127.0.0.1', { maxRetriesPerRequest: 0 });
        r.on('error', () => {});
        await r.config('SET', 'cluster-announce-port', String(c.proxies.get(p)!.port));
        r.disconnect();
      }
      await c.waitAnnounced();
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
        const r = new Redis(p, '127.0.0.1', { maxRetriesPerRequest: 0, lazyConnect: true });
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
        '2000',
        '--save',
        '',
        '--appendonly',
        'no',
        '--dir',
        this.dir,
        // A restarted node announces its proxy again (CONFIG SET does not survive a restart).
        ...(this.proxies.has(port) ? ['--cluster-announce-port', String(this.proxies.get(port)!.port)] : []),
      ],
      { stdio: 'ignore' },
    );
    this.procs.set(port, child);
    const deadline = Date.now() + 5000;
    for (;;) {
      const r = new Redis(port, '127.0.0.1', {
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

  /** Waits until every node reports cluster_state:ok. */
  async waitHealthy(timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      let ok = true;
      for (const p of this.ports) {
        const r = new Redis(p, '127.0.0.1', {
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

  /** SIGKILLs one master (its slots become unreachable until it returns). */
  async kill(port: number): Promise<void> {
    const child = this.procs.get(port);
    if (!child || child.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.kill('SIGKILL');
    });
  }

  /** Restarts a killed master with its saved cluster config: it takes its slots back. */
  async restart(port: number): Promise<void> {
    await this.startNode(port);
    await this.waitHealthy();
  }

  /** Calls per command on every node, summed (INFO commandstats). */
  async commandStats(): Promise<Record<string, number>> {
    const total: Record<string, number> = {};
    for (const p of this.ports) {
      const r = new Redis(p, '127.0.0.1', { maxRetriesPerRequest: 0 });
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
      const r = new Redis(p, '127.0.0.1', { maxRetriesPerRequest: 0 });
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
