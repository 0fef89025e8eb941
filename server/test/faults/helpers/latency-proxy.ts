import net from 'node:net';
import { connectUpstream } from '../../support/tcp-proxy.js';

/** Delays chunks by the latency in force when they arrived, keeping their order. */
class DelayedPipe {
  private readonly queue: { chunk: Buffer; dueAt: number }[] = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly to: net.Socket,
    private readonly latency: () => number,
    private readonly onForward: (chunk: Buffer) => void,
    private readonly onArrive: (chunk: Buffer) => void,
  ) {}

  push(chunk: Buffer): void {
    this.onArrive(chunk);
    const last = this.queue[this.queue.length - 1]?.dueAt ?? 0;
    // Never before an earlier chunk: lowering the latency must not reorder the byte stream.
    this.queue.push({ chunk, dueAt: Math.max(Date.now() + this.latency(), last) });
    if (!this.timer) this.schedule();
  }

  private schedule(): void {
    const head = this.queue[0];
    if (!head) return;
    this.timer = setTimeout(() => this.flush(), Math.max(0, head.dueAt - Date.now()));
  }

  private flush(): void {
    this.timer = undefined;
    const now = Date.now();
    while (this.queue[0] && this.queue[0].dueAt <= now) {
      const { chunk } = this.queue.shift()!;
      if (this.to.destroyed) continue;
      this.to.write(chunk);
      this.onForward(chunk);
    }
    this.schedule();
  }

  stop(): void {
    clearTimeout(this.timer);
    this.queue.length = 0;
  }
}

/**
 * A TCP proxy that adds latency to every chunk, each way (a slow or far-away Redis): point the
 * gateway at it and turn the latency up and down while the load runs.
 */
export class LatencyProxy {
  private readonly sockets = new Set<net.Socket>();
  latencyMs = 0;
  /** Sees every chunk as it is passed on ('up': towards the server), after its delay. */
  onForward: ((direction: 'up' | 'down', chunk: Buffer) => void) | undefined;
  /**
   * Sees every chunk as it reaches the proxy, before its delay: a reply seen here has left Redis
   * and not yet reached the client.
   */
  onArrive: ((direction: 'up' | 'down', chunk: Buffer) => void) | undefined;

  private constructor(
    private readonly server: net.Server,
    readonly port: number,
  ) {}

  static async start(targetPort: number, targetHost = '127.0.0.1'): Promise<LatencyProxy> {
    let self: LatencyProxy | undefined;
    const server = net.createServer((client) => self!.accept(client, targetHost, targetPort));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    self = new LatencyProxy(server, (server.address() as net.AddressInfo).port);
    return self;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  private accept(client: net.Socket, host: string, port: number): void {
    const upstream = connectUpstream(client, host, port, this.sockets, () => {
      up.stop();
      down.stop();
    });
    const latency = () => this.latencyMs;
    const up = new DelayedPipe(
      upstream,
      latency,
      (c) => this.onForward?.('up', c),
      (c) => this.onArrive?.('up', c),
    );
    const down = new DelayedPipe(
      client,
      latency,
      (c) => this.onForward?.('down', c),
      (c) => this.onArrive?.('down', c),
    );
    client.on('data', (c: Buffer) => up.push(c));
    upstream.on('data', (c: Buffer) => down.push(c));
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
