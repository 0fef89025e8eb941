import net from 'node:net';
import { connectUpstream } from './tcp-proxy.js';

/**
 * A TCP proxy that reads the client's side of a Redis or PostgreSQL connection, so the tests and
 * the benchmark's scenario 2 count what actually crossed the wire rather than what the code meant
 * to send (or what it says it sent).
 *
 * Redis: a round trip ("turn") is a run of client bytes on one connection between two server
 * replies; each turn lists the commands in it (a pipeline of 100 SETs is one turn; 64 MGETs each
 * awaited before the next are 64). PostgreSQL: statements are the Query and Execute messages of
 * the frontend protocol, with the text of each.
 */
export interface Turn {
  commands: Record<string, number>;
  /** The first key of each EVAL/EVALSHA in the turn: which script it was (its KEYS[1]). */
  scriptKeys: string[];
  /**
   * Each URL script call of the turn (a write-back): its first image, how many URLs it stores,
   * and whether it counts refreshes (ARGV[1] '1': a refresh sweep's write, not a miss's).
   */
  urlWrites: UrlWrite[];
  /** Which client connection of this proxy it was sent on (0 for the first accepted). */
  connection: number;
}

export interface UrlWrite {
  id: string;
  entries: number;
  refresh: boolean;
}

interface Conn {
  buf: Buffer;
  /** The server spoke since the client last did: the next client bytes start a new turn. */
  newTurn: boolean;
  turn: Turn | undefined;
  startup: boolean;
}

export class CountingProxy {
  readonly turns: Turn[] = [];
  /** PostgreSQL: statement text (first 80 characters) -> executions. */
  readonly statements = new Map<string, number>();
  executed = 0;
  private readonly sockets = new Set<net.Socket>();
  private connections = 0;
  /** Unnamed prepared statement text per connection (node-postgres parses unnamed statements). */
  private readonly lastParsed = new WeakMap<Conn, string>();

  private constructor(
    private readonly server: net.Server,
    readonly port: number,
  ) {}

  static async start(protocol: 'redis' | 'postgres', host: string, port: number): Promise<CountingProxy> {
    let self: CountingProxy | undefined;
    const server = net.createServer((client) => self!.accept(client, protocol, host, port));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    self = new CountingProxy(server, (server.address() as net.AddressInfo).port);
    return self;
  }

  /** When a client last sent bytes (performance.now()). */
  private lastSentAt = 0;

  /**
   * Resolves once no client has sent anything for `quietMs`: a cold page's write-back leaves after
   * its answer (docs/architecture.md, "The hot path"), so a test counting a page's turns waits
   * for it.
   */
  async settled(quietMs = 100): Promise<void> {
    // Quiet counted from the call too: a write-back not sent yet has its turn still to come.
    const calledAt = performance.now();
    for (;;) {
      const idle = performance.now() - Math.max(this.lastSentAt, calledAt);
      if (idle >= quietMs) return;
      await new Promise((resolve) => setTimeout(resolve, quietMs - idle + 1));
    }
  }

  reset(): void {
    this.turns.length = 0;
    this.statements.clear();
    this.executed = 0;
  }

  private accept(client: net.Socket, protocol: 'redis' | 'postgres', host: string, port: number): void {
    const upstream = connectUpstream(client, host, port, this.sockets);
    const conn: Conn = { buf: Buffer.alloc(0), newTurn: true, turn: undefined, startup: true };
    const connection = this.connections++;
    client.on('data', (chunk: Buffer) => {
      this.lastSentAt = performance.now();
      if (conn.newTurn) {
        conn.turn = { commands: {}, scriptKeys: [], urlWrites: [], connection };
        this.turns.push(conn.turn);
        conn.newTurn = false;
      }
      conn.buf = conn.buf.length === 0 ? chunk : Buffer.concat([conn.buf, chunk]);
      if (protocol === 'redis') this.readRedis(conn);
      else this.readPostgres(conn);
    });
    upstream.on('data', () => {
      conn.newTurn = true;
    });
    client.pipe(upstream);
    upstream.pipe(client);
  }

  private readRedis(conn: Conn): void {
    const buf = conn.buf;
    let at = 0;
    const count = (name: string) => {
      const c = conn.turn!.commands;
      c[name] = (c[name] ?? 0) + 1;
    };
    for (;;) {
      if (at >= buf.length) break;
      const nl = buf.indexOf('\r\n', at);
      if (nl < 0) break;
      if (buf[at] !== 0x2a) {
        // Inline command (PING\r\n).
        count(buf.toString('latin1', at, nl).split(' ')[0]!.toLowerCase());
        at = nl + 2;
        continue;
      }
      const n = Number(buf.toString('latin1', at + 1, nl));
      let pos = nl + 2;
      let name = '';
      let firstKey = '';
      // EVALSHA sha numkeys key… arg…: the URL script's ARGV[1] (counted) and ARGV[4] (its JSON).
      let keyCount = 0;
      let counted = '';
      let json = '';
      let complete = true;
      for (let i = 0; i < n; i++) {
        const nl2 = buf.indexOf('\r\n', pos);
        if (nl2 < 0) {
          complete = false;
          break;
        }
        const len = Number(buf.toString('latin1', pos + 1, nl2));
        const start = nl2 + 2;
        if (start + len + 2 > buf.length) {
          complete = false;
          break;
        }
        if (i === 0) name = buf.toString('latin1', start, start + len).toLowerCase();
        // EVALSHA sha numkeys key1 …
        if (i === 2) keyCount = Number(buf.toString('latin1', start, start + len));
        if (i === 3) firstKey = buf.toString('latin1', start, start + len);
        if (firstKey.includes('}url:')) {
          if (i === 3 + keyCount) counted = buf.toString('latin1', start, start + len);
          if (i === 6 + keyCount) json = buf.toString('utf8', start, start + len);
        }
        pos = start + len + 2;
      }
      if (!complete) break;
      count(name);
      if ((name === 'evalsha' || name === 'eval') && n > 3) {
        conn.turn!.scriptKeys.push(firstKey);
        const at = firstKey.indexOf('}url:');
        if (at >= 0) {
          // [shard, id, value, ttlMs, refreshAt, …] (server/src/urls/redis-store.ts)
          const entries = json ? (JSON.parse(json) as unknown[]).length / 5 : 0;
          conn.turn!.urlWrites.push({ id: firstKey.slice(at + 5), entries, refresh: counted === '1' });
        }
      }
      at = pos;
    }
    conn.buf = buf.subarray(at);
  }

  private readPostgres(conn: Conn): void {
    const buf = conn.buf;
    let at = 0;
    for (;;) {
      if (conn.startup) {
        // Untyped: StartupMessage, or an SSL/GSS request that precedes it.
        if (buf.length - at < 8) break;
        const len = buf.readInt32BE(at);
        if (buf.length - at < len) break;
        const code = buf.readInt32BE(at + 4);
        if (code !== 80877103 && code !== 80877104) conn.startup = false;
        at += len;
        continue;
      }
      if (buf.length - at < 5) break;
      const type = String.fromCharCode(buf[at]!);
      const len = buf.readInt32BE(at + 1);
      if (buf.length - at < len + 1) break;
      const body = buf.subarray(at + 5, at + 1 + len);
      if (type === 'Q') this.executedOne(body.toString('utf8', 0, body.indexOf(0)));
      else if (type === 'P') {
        const nameEnd = body.indexOf(0);
        this.lastParsed.set(conn, body.toString('utf8', nameEnd + 1, body.indexOf(0, nameEnd + 1)));
      } else if (type === 'E') this.executedOne(this.lastParsed.get(conn) ?? '(prepared)');
      at += len + 1;
    }
    conn.buf = buf.subarray(at);
  }

  private executedOne(sql: string): void {
    this.executed++;
    const key = sql.replace(/\s+/g, ' ').trim().slice(0, 80);
    this.statements.set(key, (this.statements.get(key) ?? 0) + 1);
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/**
 * A batch's write-back of misses: its URL script call (KEYS[1] a `…url:<id>` key) not counting
 * refreshes. A refresh sweep's store has ARGV[1] '1'; the access flush's scripts start with a
 * `meta:` or the hot set's key; the claim's with the schedule's.
 */
export function isWriteBack(t: Turn): boolean {
  return t.urlWrites.some((w) => !w.refresh);
}
