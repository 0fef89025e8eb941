// Scenario 9's subscribers: thousands of SSE subscriptions (one image each) held open in one
// process, recording when each one's first event arrives.
import http from 'node:http';
import { serve } from '../lib/rpc.js';

const SUBSCRIPTION =
  'subscription($ids: [ID!]!) { signedUrlRefreshed(ids: $ids) { imageId signedUrl { url expiresAt } } }';

const now = () => performance.timeOrigin + performance.now();
const agent = new http.Agent({ keepAlive: false, maxSockets: Number.POSITIVE_INFINITY });
const requests: http.ClientRequest[] = [];
const arrivals = new Map<string, number>();
let unexpected = 0;

function open(url: URL, token: string, id: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const body = JSON.stringify({ query: SUBSCRIPTION, variables: { ids: [id] } });
    const req = http.request(
      url,
      {
        method: 'POST',
        agent,
        headers: {
          'content-type': 'application/json',
          accept: 'text/event-stream',
          authorization: `Bearer ${token}`,
          'content-length': Buffer.byteLength(body),
        },
      },
      (res) => {
        if (res.statusCode !== 200) {
          res.resume();
          reject(new Error(`subscription answered HTTP ${res.statusCode}`));
          return;
        }
        resolve();
        // The stream as an EventSource reads it: events end at a blank line, `:` lines are
        // pings, `data:` lines are joined; each `next` event's payload is parsed.
        res.setEncoding('utf8');
        let buffered = '';
        res.on('data', (chunk: string) => {
          buffered += chunk;
          for (let end = buffered.indexOf('\n\n'); end !== -1; end = buffered.indexOf('\n\n')) {
            const block = buffered.slice(0, end);
            buffered = buffered.slice(end + 2);
            onEvent(id, block);
          }
        });
        res.on('error', () => {});
      },
    );
    req.on('error', (err) => reject(err));
    req.end(body);
    requests.push(req);
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
    for (const r of requests) r.destroy();
    requests.length = 0;
    arrivals.clear();
    unexpected = 0;
    return true;
  },
});
