import type { ChainableCommander } from 'ioredis';
import { Cluster } from 'ioredis';
import type { RedisClient } from './connect.js';
import { keySlot } from './key-slot.js';

interface Queued {
  key: string;
  add: (p: ChainableCommander) => void;
}

/**
 * Commands sent as one round trip: one pipeline on a single Redis; on a cluster, one pipeline per
 * node involved, all in flight at once (each command's keys share one slot: callers use hash tags).
 */
export class CommandBatch {
  private readonly queued: Queued[] = [];

  constructor(private readonly redis: RedisClient) {}

  /** Queues a command routed by `key`; returns its index in the results. */
  add(key: string, add: (p: ChainableCommander) => void): number {
    this.queued.push({ key, add });
    return this.queued.length - 1;
  }

  get size(): number {
    return this.queued.length;
  }

  async exec(): Promise<unknown[]> {
    if (this.queued.length === 0) return [];
    if (!(this.redis instanceof Cluster)) return runPipeline(this.redis, this.queued);
    try {
      return await this.execOnCluster(this.redis);
    } catch (err) {
      // ioredis retries a pipeline only when every reply carries the same redirection, which a
      // pipeline of several slots never does. Refresh the slot map ourselves and retry once, so
      // a failover or a restarted master does not leave us routing to the wrong node forever.
      if (!/^(MOVED|ASK|CLUSTERDOWN|TRYAGAIN)\b/.test((err as Error).message)) throw err;
      await refreshSlots(this.redis);
      return this.execOnCluster(this.redis);
    }
  }

  private async execOnCluster(cluster: Cluster): Promise<unknown[]> {
    const byNode = new Map<string, { items: Queued[]; at: number[] }>();
    const slots = cluster.slots;
    this.queued.forEach((q, i) => {
      const node = slots[keySlot(q.key)]?.[0] ?? 'unknown';
      let g = byNode.get(node);
      if (!g) {
        g = { items: [], at: [] };
        byNode.set(node, g);
      }
      g.items.push(q);
      g.at.push(i);
    });
    const out: unknown[] = new Array(this.queued.length);
    await Promise.all(
      [...byNode.values()].map(async (g) => {
        const values = await runPipeline(cluster, g.items);
        values.forEach((v, j) => {
          out[g.at[j]!] = v;
        });
      }),
    );
    return out;
  }
}

async function runPipeline(redis: RedisClient, items: Queued[]): Promise<unknown[]> {
  const p = redis.pipeline();
  for (const q of items) q.add(p);
  return pipelineValues(await p.exec());
}

/** Throws unless every reply of a pipeline succeeded; returns the values. */
export function pipelineValues(results: [Error | null, unknown][] | null): unknown[] {
  if (!results) throw new Error('redis pipeline returned nothing');
  return results.map(([err, v]) => {
    if (err) throw err;
    return v;
  });
}

function refreshSlots(cluster: Cluster): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, 1000);
    cluster.refreshSlotsCache(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}
