import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase } from '../../src/db/connect.js';
import { createTestDatabase } from '../support/database.js';
import { type Exit, GatewayProcess } from '../support/gateway-process.js';
import { HttpConnection } from '../support/http-connection.js';
import { freePort } from '../support/ports.js';

// A rolling restart behind a load balancer, against the real entry point (docs/operations.md,
// "Health, readiness, shutdown"): keep-alive clients sending POSTs back to back see no reset,
// /readyz says `draining` on a connection already open, and a second signal, or one during
// start-up, is logged and acted on.

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Outcome {
  /** When the request was written. */
  sentAt: number;
  status?: number;
  /** The response's Connection header. */
  connection?: string | undefined;
  /** The error code of a request that failed (ECONNRESET, ECONNREFUSED, …). */
  error?: string;
}

const QUERY = JSON.stringify({ query: '{ __typename }' });

/** One POST /graphql on the agent's keep-alive connection. */
function post(agent: http.Agent, base: string): Promise<{ status: number; connection: string | undefined }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      `${base}/graphql`,
      {
        method: 'POST',
        agent,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(QUERY) },
      },
      (res) => {
        res.on('error', reject);
        res.on('aborted', () => reject(Object.assign(new Error('aborted'), { code: 'ECONNRESET' })));
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode!, connection: res.headers.connection }));
      },
    );
    req.on('error', reject);
    req.end(QUERY);
  });
}

/**
 * A client with one keep-alive connection (Node's agent, as a balancer's upstream pool keeps
 * them) sending POSTs back to back, until the node refuses its connection or `done()`.
 */
async function backToBack(base: string, out: Outcome[], done: () => boolean): Promise<void> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  try {
    while (!done()) {
      const o: Outcome = { sentAt: Date.now() };
      out.push(o);
      try {
        const r = await post(agent, base);
        o.status = r.status;
        o.connection = r.connection;
      } catch (err) {
        o.error = (err as NodeJS.ErrnoException).code ?? String(err);
        // Refused: the node stopped listening (a balancer tries another node: nothing was sent).
        if (o.error === 'ECONNREFUSED') return;
      }
    }
  } finally {
    agent.destroy();
  }
}

function logLines(gw: { logs: string[] }): Record<string, unknown>[] {
  return gw.logs.flatMap((l) => {
    try {
      return [JSON.parse(l) as Record<string, unknown>];
    } catch {
      return [];
    }
  });
}

async function until(what: string, check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

/**
 * A TCP gate in front of PostgreSQL: connections are held (nothing reaches the database) until
 * `open()`, so a test knows the node is inside its start-up, opening its database.
 */
class Gate {
  private opened = false;
  private readonly held: net.Socket[] = [];
  private readonly sockets = new Set<net.Socket>();
  private sawOne: () => void = () => {};
  /** Resolves when the first connection arrives. */
  readonly reached = new Promise<void>((resolve) => {
    this.sawOne = resolve;
  });

  private constructor(
    private readonly server: net.Server,
    readonly port: number,
    private readonly target: { host: string; port: number },
  ) {}

  static async start(target: { host: string; port: number }): Promise<Gate> {
    let self: Gate | undefined;
    const server = net.createServer((client) => self!.accept(client));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    self = new Gate(server, (server.address() as net.AddressInfo).port, target);
    return self;
  }

  private accept(client: net.Socket): void {
    this.sockets.add(client);
    client.on('error', () => {});
    client.on('close', () => this.sockets.delete(client));
    this.sawOne();
    if (this.opened) this.pipe(client);
    else {
      client.pause();
      this.held.push(client);
    }
  }

  private pipe(client: net.Socket): void {
    const upstream = net.connect(this.target.port, this.target.host);
    this.sockets.add(upstream);
    upstream.on('error', () => client.destroy());
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => {
      this.sockets.delete(upstream);
      client.destroy();
    });
    client.pipe(upstream);
    upstream.pipe(client);
    client.resume();
  }

  open(): void {
    this.opened = true;
    for (const c of this.held.splice(0)) if (!c.destroyed) this.pipe(c);
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

describe('shutdown behind a load balancer', () => {
  let pgdb: { url: string; drop: () => Promise<void> };
  let dataDir: string;
  let gw: GatewayProcess | undefined;
  /** Auth off (every request is the demo admin), PostgreSQL, the local driver: a cheap node. */
  let env: Record<string, string>;

  beforeAll(async () => {
    pgdb = await createTestDatabase();
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'signet-drain-'));
    // Migrated once here, so each start below opens a ready database.
    const db = await openDatabase({ databaseUrl: pgdb.url, dataDir });
    await db.close();
    env = { DATABASE_URL: pgdb.url, STORAGE_DRIVER: 'local', LOG_LEVEL: 'info' };
  });
  afterEach(async () => {
    await gw?.kill();
    gw = undefined;
  });
  afterAll(async () => {
    await pgdb?.drop();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it('SHUTDOWN_DELAY_SECONDS: back-to-back keep-alive POSTs see no reset, /readyz says draining on an open connection, responses close their connections', async () => {
    const delayMs = 2000;
    gw = await GatewayProcess.start({ ...env, SHUTDOWN_DELAY_SECONDS: String(delayMs / 1000) });
    const base = gw.url;
    // A balancer's health check on its own keep-alive connection, idle between probes.
    const probe = await HttpConnection.open(base);
    probe.send('/readyz');
    const before = await probe.head();
    await probe.body(before);
    expect(before.status).toBe(200);
    // A keep-alive connection that asks nothing more (a pool's spare): closed once all is quiet.
    const spare = await HttpConnection.open(base);
    spare.send('/healthz');
    await spare.body(await spare.head());

    const outcomes: Outcome[][] = [[], [], [], []];
    let stop = false;
    const clients = outcomes.map((out) => backToBack(base, out, () => stop));
    await until('every client to be under way', () => outcomes.every((o) => o.length >= 20));

    const sent = Date.now();
    gw.child.kill('SIGTERM');
    await until('the node to start draining', () => logLines(gw!).some((l) => l.msg === 'shutting down'));
    await sleep(300);
    // The probe's connection, open since before the signal: answered, 503 draining, and closed
    // after that answer (the balancer's next probe opens a new connection).
    probe.send('/readyz');
    const ready = await probe.head();
    const readyBody = JSON.parse((await probe.body(ready)).toString()) as { status: string };
    expect(ready.status).toBe(503);
    expect(readyBody.status).toBe('draining');
    expect(ready.headers.connection).toBe('close');
    expect(await probe.closedByServer()).toBe(true);
    // Still listening during the delay: a new connection is served, and hears the same.
    const fresh = await fetch(`${base}/readyz`);
    expect(fresh.status).toBe(503);
    expect(((await fresh.json()) as { status: string }).status).toBe('draining');
    // The balancer has seen the 503 and takes the node out: its clients' next requests go to
    // other nodes. (Connections that still come as the delay ends are refused, or reset if they
    // wait in the kernel's accept queue as the listener closes: the delay must outlast the
    // balancer's detection, docs/operations.md.)
    const outAt = Date.now();
    stop = true;
    await Promise.all(clients);
    expect(outAt - sent, 'the delay was over before the balancer saw the 503').toBeLessThan(delayMs);

    const exit = await gw.exited;
    const took = Date.now() - sent;
    expect(exit).toEqual({ code: 0, signal: null });
    expect(took).toBeGreaterThanOrEqual(delayMs);
    // The spare connection was closed once nothing moved, not cut by the 7 s grace period.
    expect(took).toBeLessThan(delayMs + 3000);
    expect(await spare.closedByServer()).toBe(true);

    const all = outcomes.flat();
    // Not one request was reset, nor refused: each was answered.
    expect(all.filter((o) => o.error !== undefined)).toEqual([]);
    expect(all.every((o) => o.status === 200)).toBe(true);
    // The clients were served during the delay, each response closing its connection (a
    // request written a moment after the signal may have been taken before the drain began).
    const during = all.filter((o) => o.sentAt > sent + 200);
    expect(during.length).toBeGreaterThan(20);
    expect(during.filter((o) => o.connection !== 'close')).toEqual([]);
    // Every connection ended without the grace period's cut.
    const stopped = logLines(gw).find((l) => l.msg === 'stopped');
    expect(stopped?.drained).toBe(true);
  });

  it('without a delay, back-to-back keep-alive POSTs are not reset either: refused once the node stops listening', async () => {
    gw = await GatewayProcess.start({ ...env, SHUTDOWN_DELAY_SECONDS: '0' });
    const probe = await HttpConnection.open(gw.url);
    probe.send('/readyz');
    await probe.body(await probe.head());
    const outcomes: Outcome[][] = Array.from({ length: 8 }, () => []);
    let stop = false;
    const clients = outcomes.map((out) => backToBack(gw!.url, out, () => stop));
    await until('every client to be under way', () => outcomes.every((o) => o.length >= 20));
    gw.child.kill('SIGTERM');
    await until('the node to start draining', () => logLines(gw!).some((l) => l.msg === 'shutting down'));
    // A probe on the connection it had open before the signal is answered, not reset.
    probe.send('/readyz');
    const ready = await probe.head();
    expect(ready.status).toBe(503);
    expect(JSON.parse((await probe.body(ready)).toString())).toMatchObject({ status: 'draining' });
    expect(ready.headers.connection).toBe('close');
    const exit = await gw.exited;
    stop = true;
    await Promise.all(clients);
    expect(exit).toEqual({ code: 0, signal: null });
    const all = outcomes.flat();
    expect(all.filter((o) => o.error !== undefined && o.error !== 'ECONNREFUSED')).toEqual([]);
    // Each client ended on a refused connection, not a reset.
    expect(outcomes.map((o) => o.at(-1)?.error)).toEqual(outcomes.map(() => 'ECONNREFUSED'));
  });

  /** A request held in flight: a POST whose body never finishes, so the drain waits for it. */
  async function holdARequest(base: string): Promise<net.Socket> {
    const u = new URL(base);
    const socket = net.connect(Number(u.port), u.hostname);
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    socket.on('error', () => {});
    socket.write(
      `POST /graphql HTTP/1.1\r\nhost: ${u.host}\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{"query":`,
    );
    return socket;
  }

  it('the same signal twice at once (a Ctrl-C that npm start forwards again) is one: the stop finishes, exit 0', async () => {
    gw = await GatewayProcess.start({ ...env, SHUTDOWN_DELAY_SECONDS: '0' });
    // A request in flight keeps the stop going while the second one arrives.
    const held = await holdARequest(gw.url);
    await sleep(200);
    gw.child.kill('SIGINT');
    // Apart enough to be delivered twice (one pending signal absorbs a second), well inside a second.
    await until('the stop to begin', () => logLines(gw!).some((l) => l.msg === 'shutting down'));
    gw.child.kill('SIGINT');
    await until('the repeat to be heard', () =>
      logLines(gw!).some((l) => l.msg === 'the same signal again at once: taken as the first'),
    );
    held.destroy();
    const exit = await gw.exited;
    expect(exit).toEqual({ code: 0, signal: null });
    expect(logLines(gw).some((l) => l.msg === 'the same signal again at once: taken as the first')).toBe(
      true,
    );
    expect(logLines(gw).some((l) => /second signal/.test(String(l.msg)))).toBe(false);
  });

  it.each([
    ['SIGTERM', 'SIGTERM', 143],
    ['SIGTERM', 'SIGINT', 130],
  ] as const)(
    '%s, then %s during the drain: logged, and the process exits at once with %i',
    async (first, second, code) => {
      gw = await GatewayProcess.start({ ...env, SHUTDOWN_DELAY_SECONDS: '0' });
      const held = await holdARequest(gw.url);
      await sleep(200);
      gw.child.kill(first);
      await until('the node to start draining', () => logLines(gw!).some((l) => l.msg === 'shutting down'));
      // Past a second: the same signal sooner is the first delivered twice (next test).
      await sleep(1100);
      const sent = Date.now();
      gw.child.kill(second);
      const exit = await gw.exited;
      expect(Date.now() - sent).toBeLessThan(2000);
      expect(exit).toEqual({ code, signal: null });
      const said = logLines(gw).find((l) => l.signal === second && l.msg !== 'shutting down');
      expect(said?.msg).toMatch(/second signal/);
      held.destroy();
    },
  );

  describe('a signal during start-up', () => {
    const cleanups: (() => Promise<void>)[] = [];
    afterEach(async () => {
      for (const f of cleanups.splice(0)) await f();
    });

    /** The real entry point with its database behind a closed gate, not waited on. */
    async function startBehindGate() {
      const pg = new URL(pgdb.url);
      const gate = await Gate.start({ host: pg.hostname, port: Number(pg.port || 5432) });
      const url = new URL(pgdb.url);
      url.host = `127.0.0.1:${gate.port}`;
      const port = await freePort();
      const dir = await mkdtemp(path.join(os.tmpdir(), 'signet-drain-start-'));
      const child = spawn(process.execPath, ['--import', 'tsx', 'server/src/main.ts'], {
        cwd: ROOT,
        env: {
          PATH: process.env.PATH ?? '',
          HOME: process.env.HOME ?? '/tmp',
          PORT: String(port),
          HOST: '127.0.0.1',
          ...env,
          DATABASE_URL: url.toString(),
          DATA_DIR: dir,
          SEED_DEMO: 'false',
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      const logs: string[] = [];
      for (const s of [child.stdout, child.stderr]) {
        let buf = '';
        s.setEncoding('utf8').on('data', (d: string) => {
          buf += d;
          const lines = buf.split('\n');
          buf = lines.pop()!;
          logs.push(...lines);
        });
      }
      const exited = new Promise<Exit>((resolve) =>
        child.once('exit', (code, signal) => resolve({ code, signal })),
      );
      cleanups.push(async () => {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
        await exited;
        await gate.close();
        await rm(dir, { recursive: true, force: true });
      });
      // The node is inside its start-up, opening its database (its signal handlers are set).
      await gate.reached;
      return { child, logs, exited, port, gate };
    }

    it('SIGTERM while the node opens its database: logged at once, the start stops, it never listens, exit 0', async () => {
      const node = await startBehindGate();
      node.child.kill('SIGTERM');
      await until('the signal to be logged', () =>
        logLines(node).some((l) => l.signal === 'SIGTERM' && /start/.test(String(l.msg))),
      );
      expect(node.child.exitCode).toBeNull();
      // The database answers now: the step under way ends, and the start goes no further.
      node.gate.open();
      const exit = await node.exited;
      expect(exit).toEqual({ code: 0, signal: null });
      expect(node.logs.join('\n')).not.toContain('signet listening');
      await expect(fetch(`http://127.0.0.1:${node.port}/healthz`)).rejects.toThrow();
    });

    it('a second signal during start-up: logged, exit 130 at once, without waiting for the step under way', async () => {
      const node = await startBehindGate();
      node.child.kill('SIGTERM');
      await until('the signal to be logged', () => logLines(node).some((l) => l.signal === 'SIGTERM'));
      const sent = Date.now();
      node.child.kill('SIGINT');
      const exit = await node.exited;
      expect(Date.now() - sent).toBeLessThan(2000);
      expect(exit).toEqual({ code: 130, signal: null });
      const said = logLines(node).find((l) => l.signal === 'SIGINT');
      expect(said?.msg).toMatch(/second signal/);
    });
  });
});
