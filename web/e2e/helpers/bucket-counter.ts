import { createServer, type IncomingMessage, request, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface BucketRequest {
  /** The object key, decoded from the path after `/local-bucket/`. */
  key: string;
  method: string;
  status: number;
  /** Body bytes sent to the browser. */
  bytes: number;
  /** When the request arrived (ms since the epoch). */
  at: number;
  /** The signed URL's end of life (its `e`, in ms). */
  expiresAt: number;
  /** The conditional headers the browser sent, if any (a revalidation). */
  conditional: boolean;
  cacheControl: string | undefined;
}

/**
 * An HTTP relay in front of the gateway that records every `/local-bucket/` request reaching it:
 * what the bucket (and a bill for egress) would see. Requests the browser answers from its own
 * cache never get here, so counting here counts network fetches only. The gateway is started
 * with `PUBLIC_URL` pointing here, so the page and every URL it is given go through the relay.
 */
export class BucketCounter {
  readonly requests: BucketRequest[] = [];
  private target = 0;

  private constructor(private readonly server: Server) {}

  static async start(): Promise<BucketCounter> {
    const server = createServer();
    const counter = new BucketCounter(server);
    server.on('request', (req, res) => counter.relay(req, res));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return counter;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** The gateway's port (known only once it runs, and it is told this relay's URL first). */
  forwardTo(port: number): void {
    this.target = port;
  }

  /** Requests per object key. */
  perKey(): Map<string, BucketRequest[]> {
    const out = new Map<string, BucketRequest[]>();
    for (const r of this.requests) out.set(r.key, [...(out.get(r.key) ?? []), r]);
    return out;
  }

  reset(): void {
    this.requests.length = 0;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private relay(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://relay');
    const bucket = url.pathname.startsWith('/local-bucket/');
    const at = Date.now();
    const upstream = request(
      { host: '127.0.0.1', port: this.target, method: req.method, path: req.url, headers: req.headers },
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        let bytes = 0;
        up.on('data', (chunk: Buffer) => {
          bytes += chunk.length;
        });
        up.pipe(res);
        if (!bucket) return;
        up.on('end', () => {
          this.requests.push({
            key: url.pathname.slice('/local-bucket/'.length).split('/').map(decodeURIComponent).join('/'),
            method: req.method ?? '',
            status: up.statusCode ?? 0,
            bytes,
            at,
            expiresAt: Number(url.searchParams.get('e')) * 1000,
            conditional: Boolean(req.headers['if-none-match'] || req.headers['if-modified-since']),
            cacheControl: up.headers['cache-control'],
          });
        });
      },
    );
    upstream.on('error', () => {
      if (!res.headersSent) res.writeHead(502).end();
      else res.destroy();
    });
    // The browser gone (an aborted stream, a closed page): so is the request to the gateway.
    res.on('close', () => upstream.destroy());
    req.pipe(upstream);
  }
}
