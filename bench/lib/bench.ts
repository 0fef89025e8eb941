import type { Redis } from 'ioredis';
import type { GatewayProcess } from '../../server/test/support/gateway-process.js';
import type { HttpJob, HttpResult, PatternJob } from '../children/loadgen.js';
import type { Endpoints, OWNERS } from './config.js';
import type { OwnerRows } from './database.js';
import type { BenchRedis } from './redis.js';
import type { RpcChild } from './rpc.js';

export type OwnerKey = keyof typeof OWNERS;

/** One line of the results table. */
export interface Row {
  id: string;
  what: string;
  figure: string;
  target: string;
  /** null: reported, no target. */
  pass: boolean | null;
}

export interface Section {
  id: string;
  title: string;
  rows: Row[];
  details: Record<string, unknown>;
  notes?: string[];
}

/** Everything a scenario may use: the running services and the run's settings. */
export interface Bench {
  quick: boolean;
  /** A/B rounds per comparison. */
  rounds: number;
  /** Seconds per load measurement. */
  seconds: number;
  endpoints: Endpoints;
  redis: BenchRedis;
  /** A client of the private Redis for FLUSHDB, INFO and checks. */
  redisClient: Redis;
  databaseUrl: string;
  gateway: GatewayProcess;
  ceiling: GatewayProcess;
  /**
   * The ceiling with one real part back: the images repository (sql) or the URL service (urls).
   * Full runs only (scenario 1's decomposition): a quick run does not start them.
   */
  ceilingParts: { sql: GatewayProcess; urls: GatewayProcess } | undefined;
  bare: GatewayProcess;
  /** Scenario 1's hand-written reference: a bare node:http page endpoint doing the page's I/O. */
  reference: GatewayProcess;
  /**
   * The same gateway build with GRAPHQL_JIT=false (graphql-js' interpreter), for scenario 1. Full
   * runs only, as `ceilingParts`.
   */
  interpreted: GatewayProcess | undefined;
  fixture: RpcChild;
  loadgen: RpcChild;
  tokens: Record<OwnerKey, string>;
  rows: Record<OwnerKey, OwnerRows>;
  versions: { node: string; redis: string; postgres: string };
  /** Gateway RSS samples (MiB) taken while scenario 1 ran. */
  rssSamples: number[];
  /** The gateway's V8 heap right after each scenario 1 run. */
  heapSamples: { totalMiB: number; usedMiB: number }[];
  /** `--profile`: the V8 flags that write a CPU profile, for processes a scenario starts itself. */
  profileFlags: string[];
  log(message: string): void;
}

export const PAGE_QUERY =
  'query Page($first: Int!, $after: String) { images(first: $first, after: $after) { edges { node { id signedUrl { url expiresAt } } } } }';

export function pageBody(first: number, after?: string): string {
  return JSON.stringify({ query: PAGE_QUERY, variables: after ? { first, after } : { first } });
}

export function authHeaders(token: string): Record<string, string> {
  return { 'content-type': 'application/json', authorization: `Bearer ${token}` };
}

export function http(b: Bench, job: HttpJob): Promise<HttpResult> {
  return b.loadgen.call<HttpResult>('http', job);
}

export function pattern(b: Bench, job: PatternJob): Promise<{ batchMs: number[]; perImageMs: number[] }> {
  return b.loadgen.call('pattern', job);
}

/** One GraphQL request from the coordinator (setup and checks, never measured). */
export async function graphql<T>(
  base: string,
  token: string,
  query: string,
  variables: Record<string, unknown> = {},
): Promise<T> {
  const res = await fetch(`${base}/graphql`, {
    method: 'POST',
    headers: authHeaders(token),
    body: JSON.stringify({ query, variables }),
  });
  const json = (await res.json()) as { data?: T; errors?: unknown };
  if (!res.ok || json.errors || !json.data) {
    throw new Error(`GraphQL request failed (${res.status}): ${JSON.stringify(json).slice(0, 500)}`);
  }
  return json.data;
}

/** The page query from the coordinator, checked: every edge has a URL. */
export async function fetchPage(
  base: string,
  token: string,
  first: number,
  after?: string,
): Promise<string[]> {
  const data = await graphql<{ images: { edges: { node: { id: string; signedUrl: { url: string } } }[] } }>(
    base,
    token,
    PAGE_QUERY,
    after ? { first, after } : { first },
  );
  const edges = data.images.edges;
  if (edges.length !== first || edges.some((e) => !e.node.signedUrl.url.includes('q-signature=')))
    throw new Error(`page of ${first} came back with ${edges.length} edges or without signed URLs`);
  return edges.map((e) => e.node.id);
}

/** Sum of a Prometheus counter (all label sets) from a process's /metrics. */
export async function metricSum(base: string, name: string, labelFilter?: string): Promise<number> {
  const text = await (await fetch(`${base}/metrics`)).text();
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const rest = line.slice(name.length);
    if (rest[0] !== ' ' && rest[0] !== '{') continue;
    if (labelFilter && !rest.includes(labelFilter)) continue;
    sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

/** Runs A and B alternately `rounds` times (A, B, A, B, …), so both see the same machine. */
export async function alternate<T>(
  rounds: number,
  a: () => Promise<T>,
  b: () => Promise<T>,
): Promise<[T[], T[]]> {
  const [as, bs] = await interleave(rounds, [a, b]);
  return [as!, bs!];
}

/** The same with any number of contenders: A, B, C, A, B, C, … */
export async function interleave<T>(rounds: number, runs: (() => Promise<T>)[]): Promise<T[][]> {
  const out: T[][] = runs.map(() => []);
  for (let i = 0; i < rounds; i++) {
    for (const [j, run] of runs.entries()) out[j]!.push(await run());
  }
  return out;
}

export const fmt = {
  rps: (n: number) => `${Math.round(n).toLocaleString('en-US')} req/s`,
  ms: (n: number) => `${n < 10 ? n.toFixed(2) : n.toFixed(1)} ms`,
  pct: (n: number) => `${(n * 100).toFixed(0)}%`,
  x: (n: number) => `${n.toFixed(1)}×`,
  int: (n: number) => Math.round(n).toLocaleString('en-US'),
};
