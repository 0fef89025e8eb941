import { Cluster, Redis, type RedisOptions } from 'ioredis';

export type RedisClient = Redis | Cluster;

export interface RedisConnectOptions {
  url: string | undefined;
  clusterNodes: { host: string; port: number }[];
  commandTimeoutMs: number;
  /** For blocking users such as BullMQ workers and subscribers (no command timeout). */
  blocking?: boolean;
}

/**
 * Options that make a dead Redis cost milliseconds: no offline queue (commands fail at once while
 * disconnected), a per-command timeout, and a quick, capped reconnect loop in the background.
 */
function baseOptions(o: RedisConnectOptions): RedisOptions {
  return o.blocking
    ? { maxRetriesPerRequest: null, enableReadyCheck: true, retryStrategy: (n) => Math.min(n * 100, 1000) }
    : {
        enableOfflineQueue: false,
        maxRetriesPerRequest: 0,
        commandTimeout: o.commandTimeoutMs,
        connectTimeout: Math.max(500, o.commandTimeoutMs * 4),
        retryStrategy: (n) => Math.min(50 * 2 ** Math.min(n, 5), 1000),
        enableReadyCheck: true,
      };
}

export function createRedisClient(o: RedisConnectOptions): RedisClient {
  if (o.clusterNodes.length > 0) {
    const redisOptions = baseOptions(o);
    return new Cluster(o.clusterNodes, {
      redisOptions,
      enableOfflineQueue: !!o.blocking,
      clusterRetryStrategy: (n) => Math.min(100 * n, 1000),
      slotsRefreshTimeout: 1000,
      // Few, quick redirection retries: the caller has a deadline and a fallback.
      maxRedirections: 4,
      retryDelayOnFailover: 50,
      retryDelayOnClusterDown: 50,
      retryDelayOnTryAgain: 50,
      scaleReads: 'master',
    });
  }
  if (!o.url) throw new Error('createRedisClient needs a url or cluster nodes');
  const client = new Redis(o.url, baseOptions(o));
  return client;
}

/** Swallows connection errors (they are counted where commands fail) so they don't crash. */
export function quietErrors(client: RedisClient, onError?: (err: Error) => void): RedisClient {
  client.on('error', (err: Error) => onError?.(err));
  return client;
}
