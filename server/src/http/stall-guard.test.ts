import { randomBytes } from 'node:crypto';
import { createServer, type Server, type ServerResponse } from 'node:http';
import { type AddressInfo, connect, type Socket } from 'node:net';
import { Readable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { closedStatus } from './access-log.js';
import { pipeBody } from './send.js';
import { createStallGuard } from './stall-guard.js';

const MB = 1024 * 1024;

/** What became of the one response a test's server gave. */
interface Outcome {
  /** When the route handed over its body (performance.now()). */
  answeredAt: number;
  /** Settles on the response's 'close', with when (Node reports even a destroyed one finished). */
  closed: Promise<number>;
  /** What the access log and the request counters call it once closed: a status, or `aborted`. */
  counted: Promise<string>;
}

const servers: { server: Server; stop(): void }[] = [];
afterEach(async () => {
  for (const { server, stop } of servers.splice(0)) {
    stop();
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  }
});

/**
 * A server whose responses a stall guard of `stallMs` tracks from the start, as the app's are,
 * and that `answer` then answers a turn of the event loop later, as a route that awaits anything does.
 */
async function serve(stallMs: number, answer: (res: ServerResponse) => void) {
  const guard = createStallGuard(stallMs);
  let outcome!: (o: Outcome) => void;
  const answered = new Promise<Outcome>((r) => {
    outcome = r;
  });
  const server = createServer((_req, res) => {
    guard.track(res);
    const closed = new Promise<number>((r) => res.once('close', () => r(performance.now())));
    const counted = new Promise<string>((r) => res.once('close', () => r(closedStatus(res))));
    setImmediate(() => {
      answer(res);
      outcome({ answeredAt: performance.now(), closed, counted });
    });
  });
  servers.push({ server, stop: guard.stop });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  /** A raw client: its request sent, nothing read until the test says so. */
  const client = () => {
    const socket = connect(port, '127.0.0.1');
    socket.pause();
    socket.write('GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n');
    return socket;
  };
  return { answered, client };
}

/** The body after the headers, once the server closed the connection. */
function bodyOf(chunks: Buffer[]): Buffer {
  const all = Buffer.concat(chunks);
  return all.subarray(all.indexOf('\r\n\r\n') + 4);
}

/**
 * Reads at most `step` bytes every `everyMs` until the server closes; the body it got. A slow
 * client, but one that never stops.
 */
function readSteadily(socket: Socket, step: number, everyMs: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let budget = 0;
    const timer = setInterval(() => {
      budget = step;
      socket.resume();
    }, everyMs);
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      budget -= chunk.length;
      if (budget <= 0) socket.pause();
    });
    socket.once('error', (err) => {
      clearInterval(timer);
      reject(err);
    });
    socket.once('close', () => {
      clearInterval(timer);
      resolve(bodyOf(chunks));
    });
  });
}

/** Reads what is left until the connection ends, cut or not; the body it got. */
function readRest(socket: Socket): Promise<Buffer> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.once('error', () => {});
    socket.once('close', () => resolve(bodyOf(chunks)));
    socket.resume();
  });
}

/** Settles with `promise`, or rejects once `ms` have passed. */
function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms);
    }),
  ]);
}

describe('createStallGuard', () => {
  const stallMs = 1000;

  it('destroys a response ended whole whose client reads nothing', async () => {
    // Far more than loopback's socket buffers hold: most of it waits in Node for the client.
    const body = Buffer.alloc(64 * MB, 'x');
    const { answered, client } = await serve(stallMs, (res) => {
      res.writeHead(200, { 'content-length': body.length });
      res.end(body);
    });
    const socket = client();
    const { answeredAt, closed, counted } = await answered;
    // An ended response reports `writableNeedDrain` false: the guard used to let it be for good.
    const at = await within(closed, 4 * stallMs, 'the stalled response closed');
    // Not before the bound; after it, within the guard's ticks (a quarter of it) and some slack.
    expect(at - answeredAt).toBeGreaterThanOrEqual(stallMs);
    expect(at - answeredAt).toBeLessThan(2.5 * stallMs);
    // Node reports it finished at 'close' (its socket's buffer went with it); it was not: the
    // access log and the request counters must say so.
    expect(await counted).toBe('aborted');
    // Cut: the client gets what the kernel held, then the end of the connection.
    const got = await within(readRest(socket), 10_000, 'the client saw the connection end');
    expect(got.length).toBeLessThan(body.length);
  });

  /** A steady reader got every byte, though the body waited on it, yet moved, for several bounds. */
  async function expectWholeBody(answered: Promise<Outcome>, received: Promise<Buffer>, body: Buffer) {
    const { answeredAt, closed, counted } = await answered;
    expect((await closed) - answeredAt).toBeGreaterThan(2 * stallMs);
    expect(await counted).toBe('200');
    const got = await received;
    expect(got.length).toBe(body.length);
    expect(got.equals(body)).toBe(true);
  }

  it('does not cut a client that reads a large ended body slowly but steadily', async () => {
    const body = randomBytes(64 * MB);
    const { answered, client } = await serve(stallMs, (res) => {
      res.writeHead(200, { 'content-length': body.length });
      res.end(body);
    });
    // 4 MB every 200 ms: ~3 s for the body, which stays ended and unsent for most of them.
    const received = readSteadily(client(), 4 * MB, 200);
    await expectWholeBody(answered, received, body);
  });

  it('does not cut a client that reads a piped body slowly but steadily', async () => {
    const body = randomBytes(64 * MB);
    const { answered, client } = await serve(stallMs, (res) => {
      res.writeHead(200, { 'content-length': body.length });
      const slices = function* () {
        for (let at = 0; at < body.length; at += 64 * 1024) yield body.subarray(at, at + 64 * 1024);
      };
      void pipeBody(Readable.from(slices()), res);
    });
    // Each drain is refilled at once, so `writableNeedDrain` holds at nearly every tick: sampling
    // it alone cut this client after one bound.
    const received = readSteadily(client(), 4 * MB, 200);
    await expectWholeBody(answered, received, body);
  });

  it('destroys a piped response whose client stopped reading', async () => {
    const { answered, client } = await serve(stallMs, (res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      const endless = new Readable({
        read() {
          this.push(Buffer.alloc(64 * 1024));
        },
      });
      void pipeBody(endless, res);
    });
    const socket = client();
    const { answeredAt, closed, counted } = await answered;
    const at = await within(closed, 4 * stallMs, 'the stalled response closed');
    expect(at - answeredAt).toBeGreaterThanOrEqual(stallMs);
    expect(at - answeredAt).toBeLessThan(2.5 * stallMs);
    expect(await counted).toBe('aborted');
    await within(readRest(socket), 10_000, 'the client saw the connection end');
  });

  it('leaves alone a response with nothing to send, however long it stays open', async () => {
    let response!: ServerResponse;
    const { answered, client } = await serve(stallMs, (res) => {
      response = res;
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(': open\n\n');
    });
    const socket = client();
    await answered;
    // Two bounds: a guard that took any unfinished response for a waiting one would have cut it.
    await new Promise((r) => setTimeout(r, 2 * stallMs));
    expect(response.destroyed).toBe(false);
    socket.destroy();
  });
});
