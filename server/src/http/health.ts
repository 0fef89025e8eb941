import { timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { bearerCredential } from '../auth/viewer.js';
import type { Clock } from '../clock.js';
import type { Config } from '../config.js';
import type { Db } from '../db/types.js';
import { unauthenticated } from '../errors/index.js';
import { readClockOffset } from '../lib/clock-offset.js';
import { withDeadline } from '../lib/late-timer.js';
import type { Logger } from '../logger.js';
import { exportClockOffset, type Metrics } from '../metrics.js';
import type { Storage } from '../storage/storage.js';
import type { UrlCache } from '../urls/store.js';
import { sendJson } from './send.js';

export type State = 'ok' | 'degraded' | 'down';

export interface Readiness {
  /** ok: all good; degraded: serving with a handicap; down: cannot serve; draining: shutting down. */
  status: 'ok' | 'degraded' | 'down' | 'draining';
  ready: boolean;
  checks: {
    database: State;
    cache: { state: State; kind: string };
    storage: { state: State; driver: string };
  };
}

/** Undefined when the dependency answered in time, else why not (for the transition's log line). */
async function probe(fn: () => Promise<void>, timeoutMs: number): Promise<string | undefined> {
  try {
    // A node busy serving must not read its own lag as a dependency down (lib/late-timer.ts).
    await withDeadline(fn(), timeoutMs, 'timeout');
    return undefined;
  } catch (err) {
    // Only the message: a driver's error can carry request details in its causes.
    return err instanceof Error ? err.message : String(err);
  }
}

type Dependency = 'database' | 'cache' | 'storage';

/**
 * Probes database, cache and storage. Only a database that does not answer makes the node
 * unable to serve (every request needs rows), and with a read replica in use it still serves
 * reads: the primary down with the replica usable is `degraded` (pages, lookups and `/proxy`
 * are read from the replica; writes fail), as is the replica skipped with the primary up.
 * Redis down is `degraded`: the hot path signs directly. Storage down is `down` for that check
 * but the node stays ready: signing is CPU-only and another node could not reach the bucket
 * either, so taking nodes out of the load balancer would only turn a partial outage into a full
 * one (the same holds for the one primary every node shares).
 */
export interface ProbeDeps {
  config: Pick<Config, 'redisCommandTimeoutMs' | 'metricsToken'>;
  db: Pick<Db, 'ping'>;
  /**
   * DATABASE_READ_URL's replica: skipped (down or too far behind) makes the database `degraded`;
   * usable while the primary does not answer, it keeps the node ready (database `degraded`).
   */
  readReplica?: { state: { usable: boolean } } | undefined;
  store: Pick<UrlCache, 'ping' | 'kind'>;
  storage: Pick<Storage, 'ping' | 'driver'>;
  metrics: Pick<Metrics, 'dependencyUp' | 'clockOffsetSeconds' | 'registry'>;
  /** The clock this node signs and leases by, measured against PostgreSQL's. */
  clock: Clock;
  logger: Pick<Logger, 'info' | 'warn'>;
}

/** How long one round of probes answers for every caller (probes and scrapes are unauthenticated). */
const PROBE_CACHE_MS = 1000;

export function createProbes(s: ProbeDeps, isDraining: () => boolean = () => false) {
  // Concurrent callers (a readiness probe during a scrape) share one round of probes, and a
  // round answers for a second: a flood of /readyz or /metrics costs the dependencies nothing.
  let inflight: Promise<Readiness> | undefined;
  let last: { at: number; result: Readiness } | undefined;

  // What the last round saw, to log each dependency going down and coming back once: without it
  // a node whose PostgreSQL was away wrote no line at all (operators start from `level >= 40`).
  const wasUp: Partial<Record<Dependency, boolean>> = {};
  const noteTransition = (dependency: Dependency, failure: string | undefined) => {
    const up = failure === undefined;
    const was = wasUp[dependency];
    wasUp[dependency] = up;
    // The first round says only a dependency down; later ones, every change.
    if (was === up || (was === undefined && up)) return;
    if (up) s.logger.info({ dependency }, 'dependency answers again');
    else s.logger.warn({ dependency, err: failure }, 'dependency does not answer');
  };

  async function run(): Promise<Readiness> {
    const failures = await Promise.all([
      probe(async () => {
        // The primary answers with its clock: signet_clock_offset_seconds, on PostgreSQL only.
        const read = await readClockOffset(
          () => s.db.ping(),
          undefined,
          () => s.clock.now(),
        );
        if (read) {
          exportClockOffset(s.metrics);
          s.metrics.clockOffsetSeconds.set(read.offsetMs / 1000);
        }
      }, 1500),
      probe(() => s.store.ping(), Math.max(250, s.config.redisCommandTimeoutMs * 2)),
      // Storage never decides readiness, so a hanging origin must not make /readyz slower than
      // an orchestrator's probe timeout (Kubernetes: 1 s), which would unready every node.
      probe(() => s.storage.ping(), 750),
    ]);
    for (const [i, d] of (['database', 'cache', 'storage'] as const).entries())
      noteTransition(d, failures[i]);
    const [dbOk, cacheOk, storageOk] = failures.map((f) => f === undefined) as [boolean, boolean, boolean];
    s.metrics.dependencyUp.set({ dependency: 'database' }, dbOk ? 1 : 0);
    s.metrics.dependencyUp.set({ dependency: 'cache' }, cacheOk ? 1 : 0);
    s.metrics.dependencyUp.set({ dependency: 'storage' }, storageOk ? 1 : 0);
    // signet_dependency_up{database} is the primary's: 0 while it is down, replica or not.
    const replicaServes = s.readReplica?.state.usable === true;
    // Rows can be read: from the primary, or from a replica the poller keeps in use (with the
    // primary down, one that has replayed the last position it gave; db/read-replica.ts).
    const readable = dbOk || replicaServes;
    const checks: Readiness['checks'] = {
      // A skipped replica costs the primary its reads, not this node its service; a primary
      // down with a usable replica costs the writes, not the reads.
      database: !readable ? 'down' : !dbOk || (s.readReplica && !replicaServes) ? 'degraded' : 'ok',
      cache: { state: cacheOk ? 'ok' : 'degraded', kind: s.store.kind },
      storage: { state: storageOk ? 'ok' : 'down', driver: s.storage.driver },
    };
    const draining = isDraining();
    const ready = readable && !draining;
    const status = draining
      ? 'draining'
      : !readable
        ? 'down'
        : cacheOk && storageOk && checks.database === 'ok'
          ? 'ok'
          : 'degraded';
    return { status, ready, checks };
  }

  return {
    check(): Promise<Readiness> {
      const draining = isDraining();
      if (last && !draining && performance.now() - last.at < PROBE_CACHE_MS)
        return Promise.resolve(last.result);
      inflight ??= run()
        .then((result) => {
          last = { at: performance.now(), result };
          return result;
        })
        .finally(() => {
          inflight = undefined;
        });
      return inflight;
    },
  };
}

export type Probes = ReturnType<typeof createProbes>;

/** `/healthz`: liveness, 200 while the process serves (no dependency is checked). */
export function healthz(_req: IncomingMessage, res: ServerResponse): void {
  sendJson(res, 200, { status: 'ok' });
}

/** `/readyz`: each dependency ok/degraded/down; 503 only when this node cannot serve. */
export function createReadyz(probes: Probes) {
  return async (_req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const { ready, status, checks } = await probes.check();
    sendJson(res, ready ? 200 : 503, { status, checks });
  };
}

/** `/metrics`: Prometheus text; dependency gauges are refreshed by the scrape itself. */
export function createMetricsRoute(
  s: { metrics: Pick<Metrics, 'registry'>; config: Pick<Config, 'metricsToken'> },
  probes: Probes,
) {
  const expected = s.config.metricsToken === undefined ? undefined : Buffer.from(s.config.metricsToken);
  return async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    if (expected && !bearerMatches(req.headers.authorization, expected)) {
      throw unauthenticated('/metrics wants the METRICS_TOKEN as a bearer token');
    }
    await probes.check();
    const body = await s.metrics.registry.metrics();
    res.writeHead(200, { 'content-type': s.metrics.registry.contentType, 'cache-control': 'no-store' });
    res.end(body);
  };
}

/** Whether an Authorization header is `Bearer <expected>`, the credential compared in constant time. */
function bearerMatches(header: string | undefined, expected: Buffer): boolean {
  const credential = bearerCredential(header);
  if (credential === undefined) return false;
  const given = Buffer.from(credential);
  return given.length === expected.length && timingSafeEqual(given, expected);
}
