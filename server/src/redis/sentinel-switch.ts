import { lookup } from 'node:dns/promises';
import { isIP, type Socket } from 'node:net';
import { Redis, type RedisOptions } from 'ioredis';
import type { RedisAuth } from '../config.js';
import type { Logger } from '../logger.js';

/**
 * Moves a node's Sentinel-mode connections to a newly promoted primary as soon as a sentinel
 * announces it (`+switch-master`), instead of when the old primary is demoted.
 *
 * Why: in a planned switchover (`SENTINEL FAILOVER`) the old primary stays up. The sentinels
 * promote the replica within a second, but they make the old primary a replica (and close its
 * clients) only when they next poll it, ~10 s later. Until then every connection of the node
 * still reads and writes the old primary, and what it writes there (URL cache entries, refresh
 * schedule entries, access counts, BullMQ jobs) is thrown away when it resyncs as a replica
 * (measured by server/test/faults/redis-sentinel-switchover.test.ts).
 *
 * How: one subscription per node, to one sentinel at a time (the next one when it goes away).
 * On a switch of our primary it reconnects every ready connection that is not on the new
 * address; a reconnect asks the sentinels again (connect.ts). Sentinels learn of a promotion a
 * second or two apart, so a connection that reconnects through one that has not yet may land on
 * the old primary again: the check is repeated a few times over the following seconds.
 * Connections that are not ready are left alone: their reconnect already asks the sentinels, and
 * ioredis' own detector, which disconnects those too, could end a client for good (connect.ts).
 *
 * An announcement made while the watch is between two sentinels (its sentinel went away) reaches
 * nobody: after each subscription the watch asks that sentinel for the primary and its config
 * epoch, and follows a primary it had not heard of. Only a newer epoch counts, so a sentinel that
 * has not yet learned of a promotion never moves connections back to the old primary.
 * See docs/operations.md, "Redis behind Sentinel".
 */
export class SentinelSwitchWatch {
  private readonly clients = new Set<Redis>();
  private sentinel: Redis | undefined;
  private next = 0;
  private closed = false;
  private readonly timers = new Set<NodeJS.Timeout>();
  /** Counts switches: the checks of an earlier one stand down once a newer one is announced. */
  private switches = 0;
  /**
   * The primary as a sentinel last described it (SENTINEL MASTER), with its config epoch; after
   * an announcement, the announced one at the next epoch at least, until a sentinel tells.
   */
  private known: Primary | undefined;
  /** The short connections of questions in flight (closed with the watch). */
  private readonly asking = new Set<Redis>();

  constructor(
    private readonly o: {
      sentinels: readonly { host: string; port: number }[];
      name: string;
      logger: Logger;
      /** The sentinels' own user, password and TLS (REDIS_SENTINEL_*, REDIS_TLS): as connect.ts. */
      auth?: RedisAuth;
      /** When to look again after a switch (ms after the announcement). */
      recheckMs?: readonly number[];
      /** Before trying the next sentinel when one is away. */
      retryMs?: number;
    },
  ) {}

  /** Starts listening (to the first sentinel that answers). */
  start(): void {
    this.listen();
  }

  /**
   * A connection to keep on the primary, and every copy made of it with `duplicate()` (a BullMQ
   * worker blocks on a copy of the connection it is given).
   */
  track(client: Redis): void {
    this.clients.add(client);
    // An ended client may be connected again (BullMQ reconnects its worker's blocking client
    // after a watchdog timeout): forgotten while ended, followed again once ready.
    client.on('end', () => this.clients.delete(client));
    client.on('ready', () => {
      if (!this.closed) this.clients.add(client);
    });
    const duplicate = client.duplicate.bind(client);
    client.duplicate = (...args: Parameters<Redis['duplicate']>) => {
      const copy = duplicate(...args);
      this.track(copy);
      return copy;
    };
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    this.sentinel?.disconnect();
    for (const q of this.asking) q.disconnect();
  }

  private listen(): void {
    if (this.closed || this.o.sentinels.length === 0) return;
    const at = this.o.sentinels[this.next % this.o.sentinels.length]!;
    this.next++;
    // A sentinel gone without closing the connection (its host lost) is noticed in seconds,
    // not after the system's two-hour keepalive: the next one is asked.
    const s = sentinelConnection(at, this.o.auth, { keepAlive: 10_000 });
    this.sentinel = s;
    s.on('message', (channel: string, message: string) => {
      if (channel !== '+switch-master') return;
      // `<name> <old ip> <old port> <new ip> <new port>`
      const [name, , , host, port] = message.split(' ');
      if (name !== this.o.name || host === undefined || port === undefined) return;
      const before = this.known;
      this.follow(host, Number(port), 'announced');
      // Its epoch, so that asking a sentinel later tells a newer switch from this one: the next
      // one at least until the announcing sentinel tells (a sentinel that has not yet learned of
      // this switch answers the older epoch, and is not followed back).
      if (before) this.known = { host, port: Number(port), epoch: before.epoch + 1 };
      void this.primaryOf(at).then((p) => p && this.learn(p));
    });
    s.once('end', () => {
      if (this.sentinel !== s || this.closed) return;
      this.later(this.o.retryMs ?? 1000, () => this.listen());
    });
    s.subscribe('+switch-master').then(
      async () => {
        // Subscribed first, then asked: a switch is either announced from here on or in the answer.
        const switches = this.switches;
        const p = await this.primaryOf(at);
        // An announcement heard meanwhile is as new as the answer, or newer.
        if (!p || this.closed || this.sentinel !== s || switches !== this.switches) return;
        const before = this.known;
        if (!this.learn(p)) return;
        if (before) {
          // A newer epoch elsewhere: a switch this watch did not hear.
          if (before.host !== p.host || before.port !== p.port)
            this.follow(p.host, p.port, 'asked after resubscribing');
        } else if (this.switches === 0) {
          // The first answer, before any switch: a connection not on the primary it names moves,
          // once and quietly (normally none). After a switch whose epoch never came (its
          // question failed), an answer could be a sentinel that has not learned of it: it is
          // only taken as the known primary.
          void addressesOf(p.host).then((a) => {
            if (!this.closed && this.switches === 0) this.moveTo(a, p.port);
          });
        }
      },
      () => s.disconnect(),
    );
  }

  /** Takes a sentinel's description of the primary if its epoch is newer than the one known. */
  private learn(p: Primary): boolean {
    if (this.known && p.epoch <= this.known.epoch) return false;
    this.known = p;
    return true;
  }

  /** Moves the node's connections to the primary at host:port (now, and in the next seconds). */
  private follow(host: string, port: number, how: 'announced' | 'asked after resubscribing'): void {
    this.o.logger.info(
      { primary: `${host}:${port}`, how },
      'Redis primary switched (Sentinel); moving connections',
    );
    // Only the latest switch is followed: the checks of an earlier one would move connections
    // back off the primary that replaced it.
    const switchNo = ++this.switches;
    const latest = () => !this.closed && switchNo === this.switches;
    void addressesOf(host).then((addresses) => {
      for (const ms of [0, ...(this.o.recheckMs ?? [1000, 2000, 4000, 8000])]) {
        this.later(ms, () => {
          if (latest()) this.moveTo(addresses, port);
        });
      }
    });
  }

  private moveTo(addresses: readonly string[], port: number): void {
    let moved = 0;
    for (const c of this.clients) {
      if (c.status !== 'ready') continue;
      const stream = (c as unknown as { stream?: Socket }).stream;
      if (!stream || onAddress(stream, addresses, port)) continue;
      c.disconnect(true);
      moved++;
    }
    if (moved > 0) {
      this.o.logger.info(
        { moved, primary: `${addresses[0]}:${port}` },
        'reconnected to the new Redis primary',
      );
    }
  }

  /**
   * A sentinel's answer to SENTINEL MASTER (on a short connection of its own: the watch's is
   * subscribed), or undefined when it does not answer or does not know the name.
   */
  private async primaryOf(at: { host: string; port: number }): Promise<Primary | undefined> {
    if (this.closed) return undefined;
    const q = sentinelConnection(at, this.o.auth, { commandTimeout: 2000 });
    this.asking.add(q);
    try {
      const reply = (await q.call('SENTINEL', 'MASTER', this.o.name)) as string[];
      const fields = new Map<string, string>();
      for (let i = 0; i + 1 < reply.length; i += 2) fields.set(reply[i]!, reply[i + 1]!);
      const host = fields.get('ip');
      const port = Number(fields.get('port'));
      const epoch = Number(fields.get('config-epoch'));
      if (!host || !Number.isInteger(port) || !Number.isInteger(epoch)) return undefined;
      return { host, port, epoch };
    } catch {
      return undefined;
    } finally {
      this.asking.delete(q);
      q.disconnect();
    }
  }

  private later(ms: number, run: () => void): void {
    if (this.closed) return;
    const t = setTimeout(() => {
      this.timers.delete(t);
      run();
    }, ms);
    t.unref();
    this.timers.add(t);
  }
}

interface Primary {
  host: string;
  port: number;
  /** The configuration epoch of the promotion that made it primary (grows with each failover). */
  epoch: number;
}

/**
 * A connection to one sentinel, without a reconnect loop of its own: when a sentinel goes away
 * the watch asks the next one. Errors are the watch's to handle (by the connection's end).
 */
function sentinelConnection(
  at: { host: string; port: number },
  auth: RedisAuth | undefined,
  extra: RedisOptions,
): Redis {
  const c = new Redis(at.port, at.host, {
    retryStrategy: () => null,
    maxRetriesPerRequest: 0,
    enableReadyCheck: false,
    connectTimeout: 2000,
    ...(auth?.sentinelUsername !== undefined ? { username: auth.sentinelUsername } : {}),
    ...(auth?.sentinelPassword !== undefined ? { password: auth.sentinelPassword } : {}),
    ...(auth?.tls ? { tls: {} } : {}),
    ...extra,
  });
  c.on('error', () => {});
  return c;
}

/**
 * The addresses of an announced primary: itself when it is an address; a name (sentinels with
 * `resolve-hostnames`) is looked up once per switch. A name that does not resolve leaves nothing
 * to compare with: every ready connection reconnects, and asks the sentinels.
 */
async function addressesOf(host: string): Promise<string[]> {
  if (isIP(host) !== 0) return [host];
  try {
    return (await lookup(host, { all: true })).map((a) => a.address);
  } catch {
    return [];
  }
}

/** Is this socket connected to one of these addresses on `port` (IPv4 may show IPv4-mapped)? */
function onAddress(stream: Socket, addresses: readonly string[], port: number): boolean {
  if (stream.remotePort !== port) return false;
  const remote = stream.remoteAddress ?? '';
  return addresses.some((a) => remote === a || remote === `::ffff:${a}`);
}
