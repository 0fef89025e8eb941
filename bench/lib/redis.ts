import { type ChildProcess, spawn } from 'node:child_process';
import { Redis, type RedisOptions } from 'ioredis';
import { freePort } from '../../server/test/support/ports.js';
import { sleep } from './processes.js';

/**
 * A private redis-server for the run: INFO commandstats and MEMORY USAGE then describe only
 * what the gateway did, and FLUSHDB between scenarios touches nobody else's data.
 */
export class BenchRedis {
  private constructor(
    private readonly child: ChildProcess,
    readonly port: number,
  ) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  get pid(): number {
    return this.child.pid!;
  }

  static async start(): Promise<BenchRedis> {
    const port = await freePort();
    const child = spawn(
      'redis-server',
      [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--save',
        '',
        '--appendonly',
        'no',
        '--maxclients',
        '20000',
      ],
      { stdio: 'ignore' },
    );
    const spawned = new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', (err) =>
        reject(new Error(`redis-server could not start (is it installed?): ${err.message}`)),
      );
    });
    await spawned;
    const r = new BenchRedis(child, port);
    const deadline = Date.now() + 10_000;
    for (;;) {
      const c = r.client({ lazyConnect: true, retryStrategy: () => null });
      try {
        await c.connect();
        await c.ping();
        c.disconnect();
        return r;
      } catch {
        c.disconnect();
        if (Date.now() > deadline) throw new Error(`redis-server on port ${port} did not start`);
        await sleep(50);
      }
    }
  }

  client(extra: RedisOptions = {}): Redis {
    const c = new Redis(this.port, '127.0.0.1', { maxRetriesPerRequest: 1, ...extra });
    c.on('error', () => {});
    return c;
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const exited = new Promise((r) => this.child.once('exit', r));
    this.child.kill('SIGTERM');
    await exited;
  }
}

/** One numeric field of INFO (e.g. used_memory). */
export async function infoNumber(client: Redis, section: string, field: string): Promise<number> {
  const info = await client.info(section);
  const m = new RegExp(`^${field}:(\\d+)`, 'm').exec(info);
  return m ? Number(m[1]) : Number.NaN;
}

/** Each batch of the keys matching `pattern`, by SCAN (no KEYS: it blocks Redis on a big keyspace). */
export async function forEachKeyBatch(
  client: Redis,
  pattern: string,
  each: (keys: string[]) => unknown,
): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await client.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    cursor = next;
    if (keys.length > 0) await each(keys);
  } while (cursor !== '0');
}
