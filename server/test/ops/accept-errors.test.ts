import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { ACCEPT_FAILURES_PER_TURN, logAcceptErrors } from '../../src/http/accept-errors.js';
import { captureLogger } from '../support/logs.js';

/** A failed accept as Node reports it (lib/net.js: an ErrnoException with syscall 'accept'). */
function acceptError(code: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`accept ${code}`), { code, errno: -105, syscall: 'accept' });
}

const nextTurn = () => new Promise((r) => setImmediate(r));

describe('a failed accept after listen', () => {
  const servers: ReturnType<typeof createServer>[] = [];
  afterEach(async () => {
    for (const s of servers.splice(0)) if (s.listening) await new Promise((r) => s.close(r));
  });

  const listening = async () => {
    const server = createServer((_req, res) => res.end('ok'));
    servers.push(server);
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/` };
  };

  it('is logged with its code, and the server goes on answering', async () => {
    const { logger, logs } = captureLogger();
    const { server, url } = await listening();
    const stops: string[] = [];
    logAcceptErrors(server, logger, (why) => stops.push(why));
    server.emit('error', acceptError('ENOBUFS'));
    const line = JSON.parse(logs.at(-1)!) as Record<string, unknown>;
    expect(line).toMatchObject({
      level: 50,
      code: 'ENOBUFS',
      syscall: 'accept',
      msg: 'the HTTP server failed to accept a connection; still listening',
    });
    expect(await (await fetch(url)).text()).toBe('ok');
    // Failures spread over turns (one per connection that failed) never stop the node.
    for (let i = 0; i < ACCEPT_FAILURES_PER_TURN * 2; i++) {
      server.emit('error', acceptError('ENOMEM'));
      await nextTurn();
    }
    expect(stops).toEqual([]);
    expect(await (await fetch(url)).text()).toBe('ok');
  });

  it('failures that fill a turn (libuv retrying at once, for good) stop the node once, with one line saying so', async () => {
    const { logger, logs } = captureLogger();
    const { server } = await listening();
    const stops: string[] = [];
    logAcceptErrors(server, logger, (why) => stops.push(why));
    for (let i = 0; i < ACCEPT_FAILURES_PER_TURN * 3; i++) server.emit('error', acceptError('ENOBUFS'));
    expect(stops).toEqual(['accept keeps failing']);
    const lines = logs.map((l) => JSON.parse(l) as { msg: string });
    expect(lines.filter((l) => l.msg.startsWith('the HTTP server failed to accept'))).toHaveLength(
      ACCEPT_FAILURES_PER_TURN,
    );
    expect(lines.filter((l) => l.msg.startsWith('the HTTP server keeps failing'))).toHaveLength(1);
  });

  it('would end the process without it: an unheard error event throws', async () => {
    const { server } = await listening();
    expect(() => server.emit('error', acceptError('ENOBUFS'))).toThrow('accept ENOBUFS');
  });
});
