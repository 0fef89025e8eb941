import { lookup } from 'node:dns/promises';
import { isIP, type Socket } from 'node:net';
import { Redis } from 'ioredis';
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

  constructor(
    private readonly o: {
      sentinels: readonly { host: string; port: number }[];
      name: string;
      logger: Logger;
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
  }

  private listen(): void {
    if (this.closed || this.o.sentinels.length === 0) return;
    const at = this.o.sentinels[this.next % this.o.sentinels.length]!;
    this.next++;
    // No reconnect loop of its own: when this sentinel goes away the next one is asked.
    const s = new Redis(at.port, at.host, {
      retryStrategy: () => null,
      maxRetriesPerRequest: 0,
      enableReadyCheck: false,
      connectTimeout: 2000,
      // A sentinel gone without closing the connection (its host lost) is noticed in seconds,
      // not after the system's two-hour keepalive: the next one is asked.
      keepAlive: 10_000,
    });
    this.sentinel = s;
    s.on('error', () => {});
    s.on('message', (channel: string, message: string) => {
      if (channel === '+switch-master') this.switched(message);
    });
    s.once('end', () => {
      if (this.sentinel !== s || this.closed) return;
      this.later(this.o.retryMs ?? 1000, () => this.listen());
    });
    s.subscribe('+switch-master').catch(() => s.disconnect());
  }

  /** `<name> <old ip> <old port> <new ip> <new port>` */
  private switched(message: string): void {
    const [name, , , host, portText] = message.split(' ');
    if (name !== this.o.name || host === undefined || portText === undefined) return;
    const port = Number(portText);
    this.o.logger.info(
      { primary: `${host}:${port}` },
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

  private later(ms: number, run: () => void): void {
    const t = setTimeout(() => {
      this.timers.delete(t);
      run();
    }, ms);
    t.unref();
    this.timers.add(t);
  }
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
