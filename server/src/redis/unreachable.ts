import { CommandTimeoutError } from './command-timeout.js';

// A Redis client's errors that say Redis cannot be reached, as opposed to a command's failure
// (the Redis side of what db/unavailable.ts is for PostgreSQL).
const UNREACHABLE =
  /ECONNREFUSED|ECONNRESET|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|ENOTFOUND|EAI_AGAIN|EPIPE|Connection is closed|All sentinels are unreachable|None of startup nodes is available|Failed to refresh slots cache/;

/** Whether a Redis client's error says Redis cannot be reached (rather than a command's failure). */
export function isRedisUnreachable(err: Error & { code?: string }): boolean {
  return UNREACHABLE.test(err.code ?? '') || UNREACHABLE.test(err.message);
}

/**
 * A Cluster's answer that the slot is somewhere else, or on its way there (a reshard, a
 * failover): MOVED, ASK, TRYAGAIN (a multi-key command in a slot being migrated), ioredis giving up
 * after its redirections, and ioredis refusing a pipeline whose keys its own slot map puts in
 * different node groups (its map is half-updated after a MOVED until the next full refresh). None
 * says the cache is away: the command was not run, and is run again once the slot map is fresh
 * (redis/command-batch.ts). See docs/architecture.md, "Data" (resharding).
 */
const REDIRECTION =
  /^(MOVED|ASK|TRYAGAIN) |^Too many Cluster redirections\. Last error: (ReplyError: )?(MOVED|ASK|TRYAGAIN) |same slots allocation group/;

export function isClusterRedirection(err: Error): boolean {
  return REDIRECTION.test(err.message);
}

/**
 * A Cluster that cannot serve the slot: `cluster_state:fail` (a master lost with no replica to
 * take over, a node cut off from the majority, slots not covered), which every keyed command
 * answers with CLUSTERDOWN, also once ioredis has given up retrying it.
 */
export function isClusterDown(err: Error): boolean {
  return /^CLUSTERDOWN\b|Last error: (ReplyError: )?CLUSTERDOWN\b/.test(err.message);
}

/** ioredis' refusals while a connection (or a cluster's) is not ready and nothing is queued. */
const NOT_READY =
  /isn't ready and enableOfflineQueue|Stream isn't writeable and enableOfflineQueue|Cluster is disconnect/;

/** The URL store's bound on a whole call (urls/redis-store.ts). */
const DEADLINE = /^redis call exceeded its \d+ ms deadline$/;

/**
 * Whether an error of a Redis call says Redis could not do it now, rather than that the call was
 * wrong: unreachable, no reply in time (`CommandTimeoutError`, the store's deadline), not ready,
 * CLUSTERDOWN, or redirections that did not settle. The caller degrades (signs directly) or, where
 * it must answer with what only Redis knows (`Image.urlStatus`, `urlStats`), answers
 * SERVICE_UNAVAILABLE with a retry (errors/classify.ts, fromRedis).
 */
export function isRedisUnavailable(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  if (err instanceof CommandTimeoutError || err.name === 'CommandTimeoutError') return true;
  return (
    isRedisUnreachable(err) ||
    isClusterDown(err) ||
    isClusterRedirection(err) ||
    NOT_READY.test(err.message) ||
    DEADLINE.test(err.message) ||
    err.name === 'MaxRetriesPerRequestError'
  );
}
