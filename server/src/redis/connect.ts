import { Cluster, type Command, Redis, type RedisOptions } from 'ioredis';
import type { RedisAuth } from '../config.js';
import { armCommandTimeout } from './command-timeout.js';

export type RedisClient = Redis | Cluster;

export interface RedisConnectOptions {
  url: string | undefined;
  clusterNodes: { host: string; port: number }[];
  /** Sentinels to ask for the primary of `sentinelName` (empty: not in Sentinel mode). */
  sentinels?: { host: string; port: number }[];
  sentinelName?: string;
  /**
   * Sentinel and Cluster: the data nodes' user, password and TLS, and the sentinels' own
   * (REDIS_USERNAME…, config.ts). Unused with `url`, which carries its own.
   */
  auth?: RedisAuth;
  commandTimeoutMs: number;
  /** For blocking users such as BullMQ workers and subscribers (no command timeout). */
  blocking?: boolean;
  /**
   * A blocking connection in subscribe mode whose owner subscribes again after each reconnect
   * (ioredis' own re-subscription is off). ioredis re-subscribes with a promise nobody holds: a
   * shutdown while Redis answers it rejected that promise, unhandled.
   */
  resubscribedByOwner?: boolean;
}

/**
 * Options that make a dead Redis cost milliseconds: no offline queue (commands fail at once while
 * disconnected), a quick, capped reconnect loop in the background, and (not here: the clients
 * below) a per-command timeout.
 */
function baseOptions(o: RedisConnectOptions): RedisOptions {
  return o.blocking
    ? {
        maxRetriesPerRequest: null,
        enableReadyCheck: true,
        retryStrategy: (n) => Math.min(n * 100, 1000),
        ...(o.resubscribedByOwner ? { autoResubscribe: false } : {}),
      }
    : {
        enableOfflineQueue: false,
        maxRetriesPerRequest: 0,
        // ioredis' own commandTimeout is left unset: it blames this process's busy turns on Redis
        // (command-timeout.ts). The clients below time each command out themselves.
        connectTimeout: Math.max(500, o.commandTimeoutMs * 4),
        retryStrategy: (n) => Math.min(50 * 2 ** Math.min(n, 5), 1000),
        enableReadyCheck: true,
      };
}

/**
 * Sentinel mode: each (re)connect asks the sentinels, in turn, for the current primary and checks
 * its role, so after a failover the reconnect loop lands on the promoted replica by itself. A
 * planned switchover leaves the old primary up and taking writes for ~10 s after the promotion:
 * the node's SentinelSwitchWatch (sentinel-switch.ts) reconnects its connections when the
 * promotion is announced. Once demoted, the old primary answers writes with READONLY, which
 * reconnects too (a connection the watch missed).
 *
 * ioredis' failover detector is off: it drops a connection when a sentinel announces
 * +switch-master, and when that lands while the connection is already reconnecting (the primary
 * was killed: every client is reconnecting when the promotion is announced) ioredis ends the client
 * for good ("Connection is closed."). A BullMQ queue client lost that way stopped every refresh
 * tick of the node after a failover (the Sentinel fault test failed on it). See
 * docs/operations.md, "Redis behind Sentinel".
 */
function sentinelOptions(o: RedisConnectOptions): RedisOptions {
  return {
    ...baseOptions(o),
    ...nodeAuth(o.auth),
    ...sentinelAuth(o.auth),
    // TLS to the primary needs both: ioredis ignores `tls` in Sentinel mode without the flag.
    ...(o.auth?.tls ? { enableTLSForSentinelMode: true } : {}),
    sentinels: o.sentinels,
    name: o.sentinelName ?? 'mymaster',
    role: 'master',
    failoverDetector: false,
    // Sentinels answer from memory: a slow one is skipped for the next, not waited on.
    sentinelCommandTimeout: Math.max(250, o.commandTimeoutMs * 2),
    sentinelRetryStrategy: (n) => Math.min(100 * n, 1000),
    // A demoted primary refuses writes with READONLY before its connection drops: reconnect
    // (through the sentinels) rather than keep failing.
    reconnectOnError: (err) => err.message.startsWith('READONLY'),
  };
}

/**
 * The data nodes' user, password and TLS (REDIS_USERNAME, REDIS_PASSWORD, REDIS_TLS): nothing
 * when unset, so a connection without them gets the very options it had before they existed.
 * TLS checks the server's certificate against Node's CAs (NODE_EXTRA_CA_CERTS adds a private one).
 */
function nodeAuth(a: RedisAuth | undefined): RedisOptions {
  return {
    ...(a?.username !== undefined ? { username: a.username } : {}),
    ...(a?.password !== undefined ? { password: a.password } : {}),
    ...(a?.tls ? { tls: {} } : {}),
  };
}

/**
 * The sentinels' own user, password and TLS (REDIS_SENTINEL_USERNAME, REDIS_SENTINEL_PASSWORD,
 * REDIS_TLS), for ioredis' questions to them (the SentinelSwitchWatch connects with the same:
 * sentinel-switch.ts).
 */
function sentinelAuth(
  a: RedisAuth | undefined,
): Pick<RedisOptions, 'sentinelUsername' | 'sentinelPassword' | 'sentinelTLS'> {
  return {
    ...(a?.sentinelUsername !== undefined ? { sentinelUsername: a.sentinelUsername } : {}),
    ...(a?.sentinelPassword !== undefined ? { sentinelPassword: a.sentinelPassword } : {}),
    ...(a?.tls ? { sentinelTLS: {} } : {}),
  };
}

/** A client whose commands time out after `ms` of Redis' lateness (command-timeout.ts). */
function timedRedis(ms: number): typeof Redis {
  return class TimedRedis extends Redis {
    override sendCommand(command: Command, stream?: Parameters<Redis['sendCommand']>[1]): unknown {
      armCommandTimeout(command, ms);
      return super.sendCommand(command, stream);
    }
  };
}

/** The same for a cluster: armed once where a command enters, before it is routed to a node. */
function timedCluster(ms: number): typeof Cluster {
  return class TimedCluster extends Cluster {
    override sendCommand(
      command: Command,
      stream?: Parameters<Cluster['sendCommand']>[1],
      node?: Parameters<Cluster['sendCommand']>[2],
    ): unknown {
      armCommandTimeout(command, ms);
      return super.sendCommand(command, stream, node);
    }
  };
}

export function createRedisClient(o: RedisConnectOptions): RedisClient {
  const RedisClass = o.blocking ? Redis : timedRedis(o.commandTimeoutMs);
  if (o.sentinels && o.sentinels.length > 0) return new RedisClass(sentinelOptions(o));
  if (o.clusterNodes.length > 0) {
    const ClusterClass = o.blocking ? Cluster : timedCluster(o.commandTimeoutMs);
    // Every node the Cluster names (CLUSTER SLOTS, MOVED) is connected to with these.
    const redisOptions = { ...baseOptions(o), ...nodeAuth(o.auth) };
    return new ClusterClass(o.clusterNodes, {
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
  if (!o.url) throw new Error('createRedisClient needs a url, cluster nodes or sentinels');
  const client = new RedisClass(o.url, baseOptions(o));
  return client;
}

/** Swallows connection errors (they are counted where commands fail) so they don't crash. */
export function quietErrors(client: RedisClient, onError?: (err: Error) => void): RedisClient {
  client.on('error', (err: Error) => onError?.(err));
  return client;
}
