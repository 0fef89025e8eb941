import net from 'node:net';

/**
 * Connects a proxied client to host:port. Both sockets are tracked in `sockets` (so a proxy can
 * cut them all) and die together; `onClose` runs when either closes.
 */
export function connectUpstream(
  client: net.Socket,
  host: string,
  port: number,
  sockets: Set<net.Socket>,
  onClose: () => void = () => {},
): net.Socket {
  const upstream = net.connect(port, host);
  for (const s of [client, upstream]) {
    sockets.add(s);
    s.on('error', () => {});
    s.on('close', () => {
      sockets.delete(s);
      onClose();
      client.destroy();
      upstream.destroy();
    });
  }
  return upstream;
}

/**
 * A TCP proxy the test controls: `cut()` drops every connection and refuses new ones (the
 * database "stops"), `restore()` lets traffic through again, and `withhold(marker)` keeps the
 * requests of connections accepted from then on from the server once one carries `marker`.
 */
export class TcpProxy {
  private readonly sockets = new Set<net.Socket>();
  private refusing = false;
  private marker: string | undefined;
  /** Client bytes kept from the server by `withhold`, as text. */
  readonly withheld: string[] = [];

  private constructor(
    private readonly server: net.Server,
    readonly port: number,
  ) {}

  static async start(targetHost: string, targetPort: number): Promise<TcpProxy> {
    let self: TcpProxy | undefined;
    const server = net.createServer((client) => self!.accept(client, targetHost, targetPort));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    self = new TcpProxy(server, (server.address() as net.AddressInfo).port);
    return self;
  }

  private accept(client: net.Socket, host: string, port: number): void {
    if (this.refusing) {
      client.destroy();
      return;
    }
    const upstream = connectUpstream(client, host, port, this.sockets);
    upstream.pipe(client);
    const marker = this.marker;
    if (marker === undefined) {
      client.pipe(upstream);
      return;
    }
    let holding = false;
    client.on('data', (chunk: Buffer) => {
      holding ||= chunk.includes(marker);
      if (holding) this.withheld.push(chunk.toString());
      else upstream.write(chunk);
    });
  }

  /**
   * Connections accepted from now on: the first chunk a client sends that contains `marker`, and
   * everything after it, never reach the server (a request the server never answers).
   */
  withhold(marker: string): void {
    this.marker = marker;
  }

  cut(): void {
    this.refusing = true;
    for (const s of this.sockets) s.destroy();
  }

  restore(): void {
    this.refusing = false;
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
