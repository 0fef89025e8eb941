import net from 'node:net';

export interface RawHead {
  status: number;
  /** Lower-case names; repeated headers joined with ", ". */
  headers: Record<string, string>;
}

/**
 * One HTTP/1.1 keep-alive connection driven by hand: requests are written when the test says
 * (pipelined behind a response still in flight, if it wants), and the responses are read only as
 * fast as the test asks for them — a response the test stops reading stays in flight on the
 * server (TCP backpressure), which fetch cannot arrange.
 */
export class HttpConnection {
  private buf: Buffer = Buffer.alloc(0);
  private readonly chunks: AsyncIterator<Buffer>;

  private constructor(
    private readonly socket: net.Socket,
    private readonly host: string,
  ) {
    this.chunks = socket[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  }

  static async open(base: string): Promise<HttpConnection> {
    const u = new URL(base);
    const socket = net.connect(Number(u.port), u.hostname);
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    return new HttpConnection(socket, u.host);
  }

  /** Writes a GET (or HEAD) request; does not wait for anything. */
  send(path: string, method: 'GET' | 'HEAD' = 'GET', headers: Record<string, string> = {}): void {
    const lines = [`${method} ${path} HTTP/1.1`, `host: ${this.host}`];
    for (const [k, v] of Object.entries(headers)) lines.push(`${k}: ${v}`);
    this.socket.write(`${lines.join('\r\n')}\r\n\r\n`);
  }

  /** Reads more bytes into the buffer; false when the server closed the connection. */
  private async more(): Promise<boolean> {
    const { done, value } = await this.chunks.next();
    if (done) return false;
    this.buf = this.buf.length === 0 ? value : Buffer.concat([this.buf, value]);
    return true;
  }

  /** The status line and headers of the next response. */
  async head(): Promise<RawHead> {
    let end = this.buf.indexOf('\r\n\r\n');
    while (end < 0) {
      if (!(await this.more())) throw new Error('connection closed before a response head');
      end = this.buf.indexOf('\r\n\r\n');
    }
    const [statusLine, ...lines] = this.buf.toString('latin1', 0, end).split('\r\n');
    this.buf = this.buf.subarray(end + 4);
    const status = Number(statusLine!.split(' ')[1]);
    const headers: Record<string, string> = {};
    for (const line of lines) {
      const colon = line.indexOf(':');
      const name = line.slice(0, colon).trim().toLowerCase();
      const value = line.slice(colon + 1).trim();
      headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
    }
    return { status, headers };
  }

  /**
   * Up to `max` bytes of the body being read (at least one unless it is finished), for a
   * Content-Length body. Returns an empty buffer when `remaining` is 0.
   */
  async some(remaining: number, max = remaining): Promise<Buffer> {
    if (remaining === 0) return Buffer.alloc(0);
    if (this.buf.length === 0 && !(await this.more())) throw new Error('connection closed mid-body');
    const n = Math.min(remaining, max, this.buf.length);
    const out = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(n);
    return out;
  }

  /** The rest of a body: Content-Length or chunked. */
  async body(head: RawHead, alreadyRead = 0): Promise<Buffer> {
    const parts: Buffer[] = [];
    if (head.headers['transfer-encoding']?.toLowerCase() === 'chunked') {
      for (;;) {
        let nl = this.buf.indexOf('\r\n');
        while (nl < 0) {
          if (!(await this.more())) throw new Error('connection closed in a chunk header');
          nl = this.buf.indexOf('\r\n');
        }
        const size = Number.parseInt(this.buf.toString('latin1', 0, nl), 16);
        this.buf = this.buf.subarray(nl + 2);
        while (this.buf.length < size + 2) {
          if (!(await this.more())) throw new Error('connection closed in a chunk');
        }
        if (size > 0) parts.push(this.buf.subarray(0, size));
        this.buf = this.buf.subarray(size + 2);
        if (size === 0) return Buffer.concat(parts);
      }
    }
    let remaining = Number(head.headers['content-length'] ?? 0) - alreadyRead;
    while (remaining > 0) {
      const part = await this.some(remaining);
      parts.push(part);
      remaining -= part.length;
    }
    return Buffer.concat(parts);
  }

  /** Resolves true once the server has closed the connection (and sent nothing more). */
  async closedByServer(): Promise<boolean> {
    if (this.buf.length > 0) return false;
    try {
      return !(await this.more());
    } catch {
      return true; // reset: closed as well
    }
  }

  destroy(): void {
    this.socket.destroy();
  }
}
