import { once } from 'node:events';
import { createServer, type IncomingMessage, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { readBody } from './sse-subscriptions.js';

// readBody's request lives as long as the subscription it opens: what it leaves on the request
// (listeners and, through their closures, the body's chunks) is held for all that time.

let server: Server | undefined;
afterEach(async () => {
  server?.closeAllConnections();
  await new Promise((r) => server?.close(r) ?? r(undefined));
  server = undefined;
});

/**
 * A real server reads one request with readBody; the client sends the body in the given pieces,
 * each after the one before arrived (so the server sees them as separate chunks).
 */
async function readOne(pieces: Buffer[]) {
  const chunks: number[] = [];
  let arrived: () => void = () => {};
  server = createServer((req, res) => {
    // Registered first: counts the chunks and paces the client.
    req.on('data', (c: Buffer) => {
      chunks.push(c.length);
      arrived();
    });
    readBody(req).then(
      (r) => {
        // Left on the request by readBody: the test's own 'data' listener is the one left.
        const listeners = {
          data: req.listenerCount('data') - 1,
          end: req.listenerCount('end'),
          error: req.listenerCount('error'),
        };
        res.end(JSON.stringify({ ...r, chunks, listeners }));
      },
      (err: Error) => res.end(JSON.stringify({ error: err.message })),
    );
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  const length = pieces.reduce((n, p) => n + p.length, 0);
  const req = request({ port, method: 'POST', agent: false, headers: { 'content-length': length } });
  for (const p of pieces) {
    const got = new Promise<void>((r) => {
      arrived = r;
    });
    req.write(p);
    await got;
  }
  req.end();
  const [res] = (await once(req, 'response')) as [IncomingMessage];
  let text = '';
  for await (const c of res) text += c;
  return JSON.parse(text);
}

const none = { data: 0, end: 0, error: 0 };

describe('readBody', () => {
  it('reads a one-chunk body and leaves no listener on the request', async () => {
    const body = '{"query":"subscription { x }"}';
    expect(await readOne([Buffer.from(body)])).toEqual({
      body,
      tooDeep: false,
      chunks: [body.length],
      listeners: none,
    });
  });

  it('joins a body that came in several chunks, a character split across two, and leaves no listener', async () => {
    const body = '{"query":"subscription { x }","variables":{"name":"é😀"}}';
    const bytes = Buffer.from(body);
    const at = bytes.indexOf(0xf0) + 2; // inside the 4-byte emoji
    const answer = await readOne([bytes.subarray(0, at), bytes.subarray(at)]);
    expect(answer).toEqual({ body, tooDeep: false, chunks: [at, bytes.length - at], listeners: none });
  });

  it('marks JSON nested too deep, and leaves no listener', async () => {
    const answer = await readOne([Buffer.from(`{"query":${'['.repeat(200)}${']'.repeat(200)}}`)]);
    expect(answer.tooDeep).toBe(true);
    expect(answer.listeners).toEqual(none);
  });
});
