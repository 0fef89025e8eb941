// Scenario 9's subscribers: thousands of SSE subscriptions (one image each) held open in one
// process, recording when each one's first event arrives.
import net from 'node:net';
import { serve } from '../lib/rpc.js';

const SUBSCRIPTION =
  'subscription($ids: [ID!]!) { signedUrlRefreshed(ids: $ids) { imageId signedUrl { url expiresAt } } }';

const now = () => performance.timeOrigin + performance.now();
const sockets: net.Socket[] = [];
const arrivals = new Map<string, number>();
let unexpected = 0;

/*
 * Plain sockets, as autocannon sends its requests: the request is one prebuilt write, and the
 * answer is read by the few lines below (status, chunked body, SSE events). node:http's client
 * cost this process as much CPU per subscription as the gateway spent opening it (0.24-0.34 ms),
 * on the same two cores (docs/benchmarks.md, finding 25).
 */

/** The request node:http's client sent (one socket each, no keep-alive). */
function request(url: URL, token: string, body: string): string {
  return (
    `POST ${url.pathname} HTTP/1.1\r\nHost: ${url.host}\r\nContent-Type: application/json\r\n` +
    `Accept: text/event-stream\r\nAuthorization: Bearer ${token}\r\n` +
    `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`
  );
}

/** Resolves once the gateway answered 200 with a chunked event stream (the subscription is held). */
function open(url: URL, token: string, id: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: url.hostname, port: Number(url.port) || 80 });
    sockets.push(socket);
    // latin1: one char per byte, so chunk sizes (bytes) are string lengths; events are decoded
    // as UTF-8 once whole.
    socket.setEncoding('latin1');
    let answered = false;
    let raw = '';
    /** Bytes left of the chunk being read, or -1 while its size line is awaited. */
    let chunkLeft = -1;
    let text = '';
    const fail = (err: Error) => {
      if (answered) return;
      answered = true;
      socket.destroy();
      reject(err);
    };
    socket.on('connect', () =>
      socket.write(request(url, token, JSON.stringify({ query: SUBSCRIPTION, variables: { ids: [id] } }))),
    );
    socket.on('data', (chunk: string) => {
      raw += chunk;
      if (!answered) {
        const end = raw.indexOf('\r\n\r\n');
        if (end === -1) return;
        const head = raw.slice(0, end).toLowerCase();
        raw = raw.slice(end + 4);
        const status = head.slice(9, 12);
        if (status !== '200') return fail(new Error(`subscription answered HTTP ${status}`));
        if (!head.includes('\r\ntransfer-encoding: chunked'))
          return fail(new Error('subscription answered without a chunked body'));
        answered = true;
        resolve();
      }
      for (;;) {
        if (chunkLeft === -1) {
          const nl = raw.indexOf('\r\n');
          if (nl === -1) break;
          chunkLeft = Number.parseInt(raw.slice(0, nl), 16);
          raw = raw.slice(nl + 2);
          if (chunkLeft === 0) break; // the stream ended: what came before it is read below
        }
        if (raw.length < chunkLeft + 2) break;
        text += raw.slice(0, chunkLeft);
        raw = raw.slice(chunkLeft + 2);
        chunkLeft = -1;
      }
      // The stream as an EventSource reads it: events end at a blank line, `:` lines are
      // pings, `data:` lines are joined; each `next` event's payload is parsed.
      for (let end = text.indexOf('\n\n'); end !== -1; end = text.indexOf('\n\n')) {
        onEvent(id, Buffer.from(text.slice(0, end), 'latin1').toString('utf8'));
        text = text.slice(end + 2);
      }
    });
    socket.on('error', (err) => fail(err));
    socket.on('close', () => fail(new Error('the gateway closed the connection before answering')));
  });
}

function onEvent(id: string, block: string): void {
  let event = 'message';
  let data = '';
  for (const line of block.split('\n')) {
    if (line.startsWith('event:')) event = line.slice(6).trim();
    else if (line.startsWith('data:')) data += (data ? '\n' : '') + line.slice(line[5] === ' ' ? 6 : 5);
  }
  if (event !== 'next' || data === '') return;
  const payload = JSON.parse(data) as {
    data?: { signedUrlRefreshed?: { imageId?: string; signedUrl?: { url?: string } } };
    errors?: unknown;
  };
  const e = payload.data?.signedUrlRefreshed;
  if (payload.errors || e?.imageId !== id || !e.signedUrl?.url) unexpected++;
  else if (!arrivals.has(id)) arrivals.set(id, now());
}

serve({
  async open(p: { url: string; token: string; ids: string[]; concurrency: number }) {
    const url = new URL(p.url);
    const started = now();
    let next = 0;
    let failed = 0;
    let firstError = '';
    const worker = async () => {
      while (next < p.ids.length) {
        const id = p.ids[next++]!;
        await open(url, p.token, id).catch((err: Error) => {
          failed++;
          firstError ||= err.message;
        });
      }
    };
    await Promise.all(Array.from({ length: p.concurrency }, worker));
    return { opened: p.ids.length - failed, failed, firstError, ms: now() - started };
  },

  async waitFor(p: { count: number; timeoutMs: number }) {
    const deadline = Date.now() + p.timeoutMs;
    while (arrivals.size < p.count && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    return { received: arrivals.size, unexpected, arrivals: [...arrivals] };
  },

  /** Ends every subscription and forgets what arrived (the warm-up's events do not count). */
  close() {
    for (const s of sockets) s.destroy();
    sockets.length = 0;
    arrivals.clear();
    unexpected = 0;
    return true;
  },
});
