import { Cluster } from 'ioredis';
import { sql } from 'kysely';
import { type Clock, systemClock } from '../clock.js';
import type { Config } from '../config.js';
import { createRegionStorages, createStorage } from '../container.js';
import { openDatabase, refusedStartupParameter } from '../db/connect.js';
import { DIVERGED, ReadReplica } from '../db/read-replica.js';
import type { Db } from '../db/types.js';
import { describeOffset, MAX_ROUND_TRIP_MS, readClockOffset } from '../lib/clock-offset.js';
import { ClusterDownError, clusterState, probeCluster } from '../redis/cluster-probe.js';
import { createRedisClient } from '../redis/connect.js';
import { clusterProbeKeys } from '../urls/redis-store.js';

export interface CheckRow {
  name: string;
  status: 'ok' | 'down' | 'skipped';
  latencyMs: number | undefined;
  detail: string;
}

/** How long one dependency may take to answer before it counts as down. */
export const CHECK_TIMEOUT_MS = 5000;

/**
 * How far this host's clock may be from PostgreSQL's before the `clock` row is down. Under a
 * second the grid, leases and tokens notice nothing (docs/operations.md, "Clocks"); NTP keeps
 * hosts within milliseconds, so more means a host without it.
 */
export const CLOCK_TOLERANCE_MS = 1000;

async function timed(
  name: string,
  timeoutMs: number,
  fn: (signal: AbortSignal) => Promise<string>,
): Promise<CheckRow> {
  const started = performance.now();
  const abort = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  try {
    const detail = await Promise.race([
      fn(abort.signal),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
      }),
    ]);
    return { name, status: 'ok', latencyMs: performance.now() - started, detail };
  } catch (err) {
    return { name, status: 'down', latencyMs: performance.now() - started, detail: oneLine(err) };
  } finally {
    clearTimeout(timer);
    abort.abort();
  }
}

function oneLine(err: unknown): string {
  const e = err as Error & { cause?: unknown; code?: string };
  const own = e?.message || e?.code || String(err);
  const cause = e?.cause as (Error & { code?: string }) | undefined;
  const why = cause ? cause.message || cause.code : undefined;
  return (why && !own.includes(why) ? `${own}: ${why}` : own).replace(/\s+/g, ' ').slice(0, 200);
}

/**
 * `signet check`: the dependencies a node of this configuration needs, each reached once with a
 * bounded wait, through the same constructors the gateway uses (container.ts, db/connect.ts,
 * redis/connect.ts). The database is opened as the gateway opens it but not migrated: a check
 * changes nothing (it may be run against production before a new version is rolled out).
 */
export async function checkDependencies(
  config: Config,
  timeoutMs = CHECK_TIMEOUT_MS,
  clock: Clock = systemClock,
): Promise<CheckRow[]> {
  // Embedded PGlite is no network hop: starting it (a WebAssembly Postgres) takes seconds on a
  // busy machine, and a first start creates its files. It gets longer than a server would.
  const databaseTimeout = config.databaseUrl ? timeoutMs : Math.max(timeoutMs, 60_000);
  /**
   * Opens a database as the gateway does, without migrating it, and pings it once (then runs
   * `then` on it, if given, for its answer). With DATABASE_DIRECT_URL set the URLs may be a
   * pooler's: the pool then sends no startup parameter it would refuse (db/statement-timeout.ts).
   */
  const ping = async <T = void>(
    databaseUrl: string | undefined,
    then?: (db: Db) => Promise<T>,
  ): Promise<T | undefined> => {
    const db = await openDatabase({
      databaseUrl,
      directUrl: config.databaseDirectUrl,
      dataDir: config.dataDir,
      poolSize: 1,
      migrate: false,
    });
    try {
      try {
        await db.ping();
      } catch (err) {
        // PgBouncer refusing the pool's statement timeout: say what to set, as a start does.
        throw refusedStartupParameter(err, config.databaseDirectUrl !== undefined) ?? err;
      }
      return await then?.(db);
    } finally {
      await db.close();
    }
  };
  const database = timed('database', databaseTimeout, async () => {
    await ping(config.databaseUrl);
    return config.databaseUrl ? redactUrl(config.databaseUrl) : `embedded PGlite in ${config.dataDir}`;
  });
  // Every node signs on the window grid and leases work by its own clock: this host's against
  // the primary's, which every node shares (the gateway exports the same reading as
  // signet_clock_offset_seconds).
  const clockRow: Promise<CheckRow> = config.databaseUrl
    ? database.then((reached) =>
        reached.status !== 'ok'
          ? { name: 'clock', status: 'skipped', latencyMs: undefined, detail: 'the database did not answer' }
          : timed('clock', timeoutMs, async () => {
              // The best of three round trips: the first may include a connection's start.
              let best: Awaited<ReturnType<typeof readClockOffset>>;
              await ping(config.databaseUrl, async (db) => {
                for (let i = 0; i < 3; i++) {
                  const r = await readClockOffset(
                    () => db.ping(),
                    undefined,
                    () => clock.now(),
                  );
                  if (r && (!best || r.roundTripMs < best.roundTripMs)) best = r;
                }
              });
              if (!best)
                throw new Error(
                  `no round trip to PostgreSQL under ${MAX_ROUND_TRIP_MS} ms to read its clock by`,
                );
              const said = `this host's clock is ${describeOffset(best.offsetMs)} PostgreSQL's (±${Math.ceil(best.roundTripMs / 2)} ms)`;
              if (Math.abs(best.offsetMs) > CLOCK_TOLERANCE_MS)
                throw new Error(
                  `${said}: more than ${CLOCK_TOLERANCE_MS / 1000} s; keep every host on NTP (docs/operations.md, "Clocks")`,
                );
              return said;
            }),
      )
    : Promise.resolve<CheckRow>({
        name: 'clock',
        status: 'skipped',
        latencyMs: undefined,
        detail: "embedded PGlite runs on this host's clock",
      });

  /** A database URL that may be unset: pinged when set, else skipped saying what happens instead. */
  const optional = (name: string, url: string | undefined, unset: string): Promise<CheckRow> =>
    url
      ? timed(name, timeoutMs, async () => {
          await ping(url);
          return redactUrl(url);
        })
      : Promise.resolve<CheckRow>({ name, status: 'skipped', latencyMs: undefined, detail: unset });
  /**
   * Why the replica has split off from the primary, if it has: the verdict of one poll of the
   * gateway's own poller (db/read-replica.ts), so the check and the gateway agree. Undefined too
   * when the primary does not answer: that cannot be told then, and the `database` row says why.
   */
  const divergence = async (readUrl: string): Promise<string | undefined> => {
    if (!config.databaseUrl) return undefined;
    try {
      return await ping(config.databaseUrl, async (db) => {
        const replica = new ReadReplica({
          url: readUrl,
          primary: db.kysely,
          maxLagMs: config.databaseReadMaxLagMs,
          pooled: config.databaseDirectUrl !== undefined,
          poolSize: 1,
          logger: { info: () => {}, warn: () => {} },
        });
        try {
          await replica.poll();
        } finally {
          await replica.close();
        }
        const reason = replica.state.reason;
        return reason?.startsWith(DIVERGED) ? reason : undefined;
      });
    } catch {
      return undefined;
    }
  };
  // Page queries and visibility lookups go to the replica when it is set (container.ts, openReads).
  // The gateway uses only a server in recovery (db/read-replica.ts): a URL naming the primary
  // itself (or a promoted former replica) answers a ping but would leave every read on
  // DATABASE_URL, so that row is down too. So is a replica that has replayed past the primary's
  // position (split off from it: the primary restored from a backup, a failover to a server that
  // had received less), which the gateway skips as diverged.
  const readUrl = config.databaseReadUrl;
  const databaseRead = readUrl
    ? timed('database-read', timeoutMs, async () => {
        const inRecovery = await ping(readUrl, async (db) => {
          const { rows } = await sql<{ recovery: boolean }>`select pg_is_in_recovery() as recovery`.execute(
            db.kysely,
          );
          return rows[0]?.recovery === true;
        });
        if (!inRecovery)
          throw new Error(
            'not a replica: pg_is_in_recovery() is false there (a primary); the gateway would skip it and read everything from DATABASE_URL',
          );
        const diverged = await divergence(readUrl);
        if (diverged) throw new Error(`${diverged}; the gateway skips it`);
        return `${redactUrl(readUrl)} (streaming replica, in recovery)`;
      })
    : Promise.resolve<CheckRow>({
        name: 'database-read',
        status: 'skipped',
        latencyMs: undefined,
        detail: 'DATABASE_READ_URL not set: reads go to the primary',
      });
  // The migrations and the work-list index builds run there (db/connect.ts, work-list-indexes.ts).
  const databaseDirect = optional(
    'database-direct',
    config.databaseDirectUrl,
    'DATABASE_DIRECT_URL not set: migrations run on DATABASE_URL',
  );

  const sentinels = config.redisSentinels;
  const redisConfigured =
    config.redisUrl !== undefined || config.redisClusterNodes.length > 0 || sentinels.length > 0;
  const redis: Promise<CheckRow> = redisConfigured
    ? timed('redis', timeoutMs, async (signal) => {
        // The same topology the gateway connects to (container.ts, openRedis).
        const client = createRedisClient({
          url: config.redisUrl,
          clusterNodes: config.redisClusterNodes,
          sentinels,
          sentinelName: config.redisSentinelName,
          auth: config.redisAuth,
          commandTimeoutMs: timeoutMs,
        });
        let lastError: Error | undefined;
        client.on('error', (err: Error) => {
          lastError = err;
        });
        let stateTimer: NodeJS.Timeout | undefined;
        try {
          await new Promise<void>((resolve, reject) => {
            client.once('ready', () => resolve());
            signal.addEventListener('abort', () => reject(lastError ?? new Error('not ready')));
            // Reconnection keeps failing: report the first reason rather than the timeout.
            client.once('error', (err: Error) => setTimeout(() => reject(err), 250));
            // ioredis holds a Cluster client short of ready, silently, while cluster_state is
            // fail: ask the nodes, and name CLUSTERDOWN rather than time out.
            if (client instanceof Cluster) {
              const look = () => {
                stateTimer = setTimeout(async () => {
                  if (signal.aborted) return;
                  const seen = await clusterState(config.redisClusterNodes, config.redisAuth, 1000);
                  if (seen && seen.state !== 'ok') {
                    reject(new ClusterDownError(undefined, `cluster_state:${seen.state} on ${seen.node}`));
                  } else if (!signal.aborted) look();
                }, 500);
              };
              look();
            }
          });
          // A Cluster node answers PING whatever the cluster's state: ask the slots instead.
          if (client instanceof Cluster) await probeCluster(client, clusterProbeKeys(config.redisPrefix));
          else await client.ping();
          if (sentinels.length > 0) {
            return `sentinel ${config.redisSentinelName} via ${sentinels.map((n) => `${n.host}:${n.port}`).join(',')}`;
          }
          return config.redisUrl
            ? redactUrl(config.redisUrl)
            : `cluster ${config.redisClusterNodes.length} nodes`;
        } finally {
          clearTimeout(stateTimer);
          client.disconnect();
        }
      })
    : Promise.resolve<CheckRow>({
        name: 'redis',
        status: 'skipped',
        latencyMs: undefined,
        detail: 'REDIS_URL, REDIS_CLUSTER_NODES and REDIS_SENTINELS not set: in-process cache',
      });

  const own = createStorage(config);
  const storage = timed('storage', timeoutMs, async () => {
    await own.ping();
    return describeBucket(config);
  });
  // With several regions every region's bucket is this node's too: a delete removes the object
  // from each (docs/operations.md, "Several regions"), and an image not yet replicated is read
  // from its home region's. One row each, `storage-<region>`.
  const regions = config.regions;
  const regionRows = regions
    ? [...createRegionStorages(config, own)]
        .filter(([name]) => name !== regions.self)
        .map(([name, s]) =>
          timed(`storage-${name}`, timeoutMs, async () => {
            await s.ping();
            const b = regions.buckets.find((x) => x.name === name)!;
            return `${config.storageDriver} ${b.bucket} (${b.host ?? `region ${name}`})`;
          }),
        )
    : [];

  return Promise.all([database, clockRow, databaseRead, databaseDirect, redis, storage, ...regionRows]);
}

/** The storage row's detail: the driver and where its bucket is. */
function describeBucket(config: Config): string {
  const driver = config.storageDriver;
  switch (driver) {
    case 'cos':
      return `cos ${config.cos.bucket} (${config.cos.region})`;
    case 's3': {
      const s3 = config.s3!; // createStorage has refused s3 without it
      return `s3 ${s3.bucket} (${s3.region}, ${s3.endpoint})`;
    }
    case 'local':
      return `local ${config.dataDir}/bucket`;
    default: {
      const unknown: never = driver;
      throw new Error(`no description of storage driver ${String(unknown)}`);
    }
  }
}

/** A connection URL without its password. */
function redactUrl(raw: string): string {
  try {
    const u = new URL(raw);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(unparseable URL)';
  }
}

/** Rows as an aligned text table. */
export function formatTable(rows: CheckRow[]): string {
  const cells = [
    ['NAME', 'STATUS', 'LATENCY', 'DETAIL'],
    ...rows.map((r) => [
      r.name,
      r.status,
      r.latencyMs === undefined ? '-' : `${Math.round(r.latencyMs)} ms`,
      r.detail,
    ]),
  ];
  const widths = [0, 1, 2].map((i) => Math.max(...cells.map((c) => c[i]!.length)));
  return cells
    .map((c) =>
      c
        .map((cell, i) => (i < 3 ? cell.padEnd(widths[i]!) : cell))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}
