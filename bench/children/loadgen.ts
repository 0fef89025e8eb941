// The load generator: autocannon's programmatic API (and a browser-like client) in a process of
// its own, driven by the coordinator over IPC.
import http from 'node:http';
import autocannon, { type AutocannonRequest } from 'autocannon';
import { serve } from '../lib/rpc.js';
import { percentile } from '../lib/stats.js';

export interface HttpJob {
  /** Origin plus a default path, e.g. http://127.0.0.1:4000/graphql. */
  url: string;
  method: 'GET' | 'POST' | 'HEAD';
  headers?: Record<string, string>;
  /**
   * Rotated request by request, in order across all connections: with `amount` at most their
   * number, each is sent exactly once (cold pages).
   */
  bodies?: string[];
  paths?: string[];
  connections: number;
  durationS?: number;
  amount?: number;
}

export interface HttpResult {
  requests: number;
  seconds: number;
  rps: number;
  p50: number;
  p90: number;
  p99: number;
  meanMs: number;
  bytesPerSec: number;
  status: Record<string, number>;
  errors: number;
  timeouts: number;
}

function runHttp(job: HttpJob): Promise<HttpResult> {
  const list = job.bodies ?? job.paths;
  const field: 'body' | 'path' = job.bodies ? 'body' : 'path';
  let next = 0;
  const request: AutocannonRequest = { method: job.method, ...(job.headers ? { headers: job.headers } : {}) };
  if (list && list.length === 1) request[field] = list[0]!;
  else if (list && list.length > 1) {
    request.setupRequest = (req) => ({ ...req, [field]: list[next++ % list.length] });
  }
  const latencies: number[] = [];
  const status: Record<string, number> = {};
  let bytes = 0;
  let started = 0;
  let lastAnswer = 0;
  return new Promise((resolve, reject) => {
    const instance = autocannon(
      {
        url: job.url,
        connections: job.connections,
        ...(job.amount ? { amount: job.amount } : { duration: job.durationS ?? 5 }),
        timeout: 30,
        // autocannon notices the end of a run (its duration, or the last of `amount` answered)
        // only on its sample tick, every second by default: a 1.2 s run lasted 2 s, and a run of
        // a fixed number of requests was timed in whole seconds. Ticks of 50 ms end runs on time
        // (docs/benchmarks.md, finding 21).
        sampleInt: 50,
        requests: [request],
        skipAggregateResult: true,
      },
      (err, result) => {
        if (err) return reject(err);
        // Up to the last answer: the wait for the tick that ends the run is not load.
        const seconds = ((lastAnswer > started ? lastAnswer : performance.now()) - started) / 1000;
        resolve({
          requests: latencies.length,
          seconds,
          rps: latencies.length / seconds,
          p50: percentile(latencies, 50),
          p90: percentile(latencies, 90),
          p99: percentile(latencies, 99),
          meanMs: latencies.reduce((a, b) => a + b, 0) / Math.max(1, latencies.length),
          bytesPerSec: bytes / seconds,
          status,
          errors: result.errors,
          timeouts: result.timeouts,
        });
      },
    );
    instance.once('start', () => {
      started = performance.now();
    });
    // autocannon's own histogram keeps whole milliseconds of 2xx answers only: keep every
    // response's time (a 302 included) at full precision instead.
    instance.on('response', (_client: unknown, code: number, resBytes: number, ms: number) => {
      latencies.push(ms);
      lastAnswer = performance.now();
      bytes += resBytes;
      status[code] = (status[code] ?? 0) + 1;
    });
  });
}

export interface PatternJob {
  url: string;
  token: string;
  ids: string[];
  pageBody: string;
  iterations: number;
  inFlight: number;
}

function post(agent: http.Agent, url: URL, token: string, body: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      url,
      {
        method: 'POST',
        agent,
        headers: {
          'content-type': 'application/json',
          authorization: `Bearer ${token}`,
          'content-length': Buffer.byteLength(body),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString();
          if (res.statusCode !== 200) reject(new Error(`HTTP ${res.statusCode}: ${text.slice(0, 300)}`));
          else resolve(text);
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

const IMAGE_QUERY = 'query($id: ID!) { image(id: $id) { signedUrl { url } } }';

/**
 * Scenario 3: the time a browser-like client (keep-alive, `inFlight` connections) needs to get
 * every URL of a page, as one page query (batch) or one query per image (what Signet replaces).
 * The two alternate, so both see the same machine.
 */
async function runPattern(job: PatternJob): Promise<{ batchMs: number[]; perImageMs: number[] }> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: job.inFlight });
  const url = new URL(job.url);
  const check = (text: string, what: string) => {
    const parsed = JSON.parse(text) as { errors?: unknown; data?: unknown };
    if (parsed.errors || !parsed.data) throw new Error(`${what} failed: ${text.slice(0, 300)}`);
    return parsed.data;
  };
  const batch = async () => {
    const t = performance.now();
    const data = check(await post(agent, url, job.token, job.pageBody), 'page query') as {
      images: { edges: unknown[] };
    };
    if (data.images.edges.length !== job.ids.length) throw new Error('page query returned a short page');
    return performance.now() - t;
  };
  const perImage = async () => {
    const t = performance.now();
    let next = 0;
    const worker = async () => {
      while (next < job.ids.length) {
        const id = job.ids[next++]!;
        const body = JSON.stringify({ query: IMAGE_QUERY, variables: { id } });
        const data = check(await post(agent, url, job.token, body), 'image query') as {
          image: { signedUrl: { url: string } } | null;
        };
        if (!data.image) throw new Error(`image ${id} not found`);
      }
    };
    await Promise.all(Array.from({ length: job.inFlight }, worker));
    return performance.now() - t;
  };
  // Warm the connections and both code paths first.
  await batch();
  await perImage();
  const batchMs: number[] = [];
  const perImageMs: number[] = [];
  for (let i = 0; i < job.iterations; i++) {
    batchMs.push(await batch());
    perImageMs.push(await perImage());
  }
  agent.destroy();
  return { batchMs, perImageMs };
}

serve({
  http: (job: HttpJob) => runHttp(job),
  pattern: (job: PatternJob) => runPattern(job),
});
