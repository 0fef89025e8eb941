import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { logAcceptErrors } from '../../src/http/accept-errors.js';
import { captureLogger } from '../support/logs.js';

/** A failed accept as Node reports it (lib/net.js: an ErrnoException with syscall 'accept'). */
function acceptError(code: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`accept ${code}`), { code, errno: -105, syscall: 'accept' });
}

describe('a failed accept after listen', () => {
  const servers: ReturnType<typeof createServer>[] = [];
  afterEach(async () => {
    for (const s of servers.splice(0)) await new Promise((r) => s.close(r));
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
    logAcceptErrors(server, logger);
    server.emit('error', acceptError('ENOBUFS'));
    const line = JSON.parse(logs.at(-1)!) as Record<string, unknown>;
    expect(line).toMatchObject({
      level: 50,
      code: 'ENOBUFS',
      syscall: 'accept',
      msg: 'the HTTP server failed to accept a connection; still listening',
    });
    const res = await fetch(url);
    expect(await res.text()).toBe('ok');
  });

  it('would end the process without it: an unheard error event throws', async () => {
    const { server } = await listening();
    expect(() => server.emit('error', acceptError('ENOBUFS'))).toThrow('accept ENOBUFS');
  });
});
