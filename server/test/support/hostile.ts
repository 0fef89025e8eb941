import { request } from 'node:http';
import { expect } from 'vitest';
import type { Harness } from './harness.js';
import { CLIENT_CODES, gqlRaw, type RawGql } from './raw-graphql.js';

/** Cases run per input class, printed at the end of each file (the table in docs/reliability-security.md). */
export class Tally {
  private readonly counts = new Map<string, number>();
  add(what: string, n = 1): void {
    this.counts.set(what, (this.counts.get(what) ?? 0) + n);
  }
  get total(): number {
    let t = 0;
    for (const n of this.counts.values()) t += n;
    return t;
  }
  print(file: string): void {
    const lines = [...this.counts].map(([k, n]) => `  ${k}: ${n}`);
    console.log(`[hostile] ${file}: ${this.total} cases\n${lines.join('\n')}`);
  }
}

export interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

/**
 * One HTTP request with the path exactly as given (fetch would normalise `..` and re-encode), so
 * hostile paths reach the server as an attacker would send them.
 */
export function rawRequest(
  base: string,
  opts: {
    method?: string;
    path: string;
    headers?: Record<string, string>;
    body?: Buffer | string;
    /** Gives up on the request (it rejects with an AbortError): a hung server must not hang the test. */
    signal?: AbortSignal;
  },
): Promise<RawResponse> {
  const u = new URL(base);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: u.hostname,
        port: u.port,
        method: opts.method ?? 'GET',
        path: opts.path,
        headers: opts.headers,
        agent: false,
        signal: opts.signal,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(opts.body);
  });
}

/** A GraphQL answer a client may get: no 5xx, JSON, every error coded, none INTERNAL_SERVER_ERROR. */
export function expectClientAnswer(r: RawGql, label: string): void {
  expect(r.status, `${label}: ${r.text.slice(0, 300)}`).toBeLessThan(500);
  expect(r.body, `${label}: not JSON: ${r.text.slice(0, 200)}`).not.toBeNull();
  for (const code of r.codes) {
    expect(CLIENT_CODES.has(code ?? 'none'), `${label}: code ${code}: ${r.text.slice(0, 300)}`).toBe(true);
  }
}

/** Error-level log lines (pino level >= 50) written since `from`: a hostile input must cause none. */
export function errorLogsSince(h: Harness, from: number): string[] {
  return h.logs.slice(from).filter((l) => {
    try {
      return (JSON.parse(l) as { level: number }).level >= 50;
    } catch {
      return true;
    }
  });
}

/** /healthz answers and a normal query works: the server took the beating and is still fine. */
export async function expectHealthy(h: Harness): Promise<void> {
  const health = await fetch(`${h.url}/healthz`);
  expect(health.status).toBe(200);
  const r = await gqlRaw(h, {
    query: '{ viewer { id } images(first: 5) { totalCount edges { node { id signedUrl { url } } } } }',
  });
  expect(r.body?.errors, r.text.slice(0, 300)).toBeUndefined();
  expect(r.body?.data?.viewer).toEqual({ id: 'alice' });
}
