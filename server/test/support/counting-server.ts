import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export type CountingServer = Awaited<ReturnType<typeof countingServer>>;

/** A server that counts every request it gets (the place an SSRF or a `jku` would reach). */
export async function countingServer(handler?: (path: string) => { status: number; body: string }) {
  const hits: string[] = [];
  const server: Server = createServer((req, res) => {
    hits.push(req.url ?? '');
    const r = handler?.(req.url ?? '') ?? { status: 404, body: 'nothing here' };
    res.writeHead(r.status, { 'content-type': 'application/json' }).end(r.body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    hostPort: `127.0.0.1:${port}`,
    hits,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}
