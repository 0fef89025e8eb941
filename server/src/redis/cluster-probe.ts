import { type Cluster, Redis } from 'ioredis';
import type { RedisAuth } from '../config.js';
import { keySlot } from './key-slot.js';
import { isClusterDown } from './unreachable.js';

/**
 * A Cluster's readiness, asked with keyed commands. PING is answered by any node whatever the
 * cluster's state, so a Cluster answering every keyed command with CLUSTERDOWN
 * (`cluster_state:fail`: a master lost with no replica, slots not covered) read as up on
 * `/readyz` and `signet_dependency_up{dependency="cache"}`. Here each master the client knows is
 * sent one `EXISTS` of one of `keys` (one its slot map puts there), on that master's own
 * connection: ioredis' retries of a CLUSTERDOWN (four, with slot refreshes) would outlast the
 * probe's deadline and hide the reason. A MOVED or ASK reply is an answer (a node in a failed
 * cluster answers CLUSTERDOWN first). A key whose slot no master holds in the map is sent through
 * the cluster. See docs/architecture.md, "Data".
 */
export async function probeCluster(cluster: Cluster, keys: readonly string[]): Promise<void> {
  const masters = cluster.nodes('master');
  if (masters.length === 0) throw new Error('no Redis Cluster master is known (slots not loaded)');
  const keyOf = new Map<string, string>();
  const unowned: string[] = [];
  for (const key of keys) {
    const master = cluster.slots[keySlot(key)]?.[0];
    if (master === undefined) unowned.push(key);
    else if (!keyOf.has(master)) keyOf.set(master, key);
  }
  const asked = masters.map(async (node) => {
    const key = keyOf.get(`${node.options.host}:${node.options.port}`) ?? keys[0]!;
    try {
      await node.exists(key);
    } catch (err) {
      if (err instanceof Error && /^(MOVED|ASK) /.test(err.message)) return;
      throw err;
    }
  });
  try {
    await Promise.all([...asked, ...unowned.slice(0, 1).map((key) => cluster.exists(key))]);
  } catch (err) {
    if (err instanceof Error && isClusterDown(err)) throw new ClusterDownError(err);
    throw err;
  }
}

/** The Cluster answers CLUSTERDOWN: it cannot serve (some of) Signet's slots. */
export class ClusterDownError extends Error {
  constructor(cause?: Error, detail = 'the cluster answers CLUSTERDOWN (cluster_state:fail)') {
    super(`CLUSTERDOWN: ${detail}`, cause ? { cause } : undefined);
    this.name = 'ClusterDownError';
  }
}

/**
 * `cluster_state` as the first of `nodes` that answers CLUSTER INFO sees it, or undefined when none
 * answers. ioredis keeps a Cluster client short of ready while the state is `fail` (its ready check
 * reads CLUSTER INFO), so a client that never gets ready does not say why: `signet check` asks.
 */
export async function clusterState(
  nodes: readonly { host: string; port: number }[],
  auth: RedisAuth | undefined,
  timeoutMs: number,
): Promise<{ node: string; state: string } | undefined> {
  for (const n of nodes) {
    const r = new Redis({
      host: n.host,
      port: n.port,
      lazyConnect: true,
      maxRetriesPerRequest: 0,
      enableOfflineQueue: false,
      retryStrategy: () => null,
      connectTimeout: timeoutMs,
      commandTimeout: timeoutMs,
      ...(auth?.username !== undefined ? { username: auth.username } : {}),
      ...(auth?.password !== undefined ? { password: auth.password } : {}),
      ...(auth?.tls ? { tls: {} } : {}),
    });
    r.on('error', () => {});
    try {
      await r.connect();
      const info = String(await r.cluster('INFO'));
      const state = /cluster_state:(\w+)/.exec(info)?.[1];
      if (state) return { node: `${n.host}:${n.port}`, state };
    } catch {
      // ask the next node
    } finally {
      r.disconnect();
    }
  }
  return undefined;
}
