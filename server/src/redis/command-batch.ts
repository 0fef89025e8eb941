import type { ChainableCommander } from 'ioredis';
import { Cluster } from 'ioredis';
import type { RedisClient } from './connect.js';
import { keySlot } from './key-slot.js';
import { isClusterDown, isClusterRedirection } from './unreachable.js';

interface Queued {
  key: string;
  add: (p: ChainableCommander) => void;
}

/** One command's outcome: its error, or null and its value (ioredis' pipeline form). */
export type Settled = [Error | null, unknown];

/**
 * Commands sent as one round trip: one pipeline on a single Redis; on a cluster, one pipeline per
 * node involved, all in flight at once (each command's keys share one slot: callers use hash tags).
 *
 * On a cluster the commands are grouped as ioredis groups them (`_groupsBySlot`, the node list of
 * each slot), not by the slot's master alone: `Pipeline.exec` refuses a pipeline whose keys its
 * own map puts in different groups. The two views part during a reshard: a MOVED makes ioredis
 * rewrite that one slot's entry (its master, or its whole node list), whose group then matches
 * no other until the next full slot refresh, and a pipeline grouped by master alone was refused
 * with "All keys in the pipeline should belong to the same slots allocation group" for as long
 * as slots kept moving. Commands a redirection still failed (MOVED, ASK, TRYAGAIN, that refusal)
 * or CLUSTERDOWN are sent once more after a slot refresh, one pipeline per slot: ioredis follows
 * a redirection only for a pipeline whose commands all got the same one, which a pipeline of one
 * slot's commands always does. Only those commands: the others ran. See docs/architecture.md,
 * "Data" (resharding).
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

  /** Every command's value, in order; rejects with the first command's error there is. */
  async exec(): Promise<unknown[]> {
    return (await this.settle()).map(([err, v]) => {
      if (err) throw err;
      return v;
    });
  }

  /** Every command's outcome, in order (a caller can use the commands that succeeded). */
  async settle(): Promise<Settled[]> {
    if (this.queued.length === 0) return [];
    if (!(this.redis instanceof Cluster)) return runPipeline(this.redis, this.queued);
    const cluster = this.redis;
    const all = this.queued.map((_, i) => i);
    const out = await this.runGroups(cluster, groupAsIoredis(cluster, this.queued, all));
    const again = all.filter((i) => {
      const err = out[i]![0];
      return err !== null && (isClusterRedirection(err) || isClusterDown(err));
    });
    if (again.length === 0) return out;
    // The slot map is stale (or half-updated by ioredis after a MOVED): refresh it, then send
    // the failed commands again, one pipeline per slot. ASK and TRYAGAIN alone say a slot is
    // migrating, not that the map is wrong: no refresh for them (every page that met a moving
    // slot would pay a CLUSTER SLOTS).
    if (again.some((i) => !/^(ASK|TRYAGAIN)\b/.test(out[i]![0]!.message))) await refreshSlots(cluster);
    const retried = await this.runGroups(cluster, groupBySlot(this.queued, again));
    for (const i of again) out[i] = retried[i]!;
    return out;
  }

  /** Runs each group as one pipeline, all at once; the outcome of each index it ran. */
  private async runGroups(cluster: Cluster, groups: number[][]): Promise<Settled[]> {
    const out: Settled[] = [];
    await Promise.all(
      groups.map(async (at) => {
        const results = await runPipeline(
          cluster,
          at.map((i) => this.queued[i]!),
        );
        results.forEach((r, j) => {
          out[at[j]!] = r;
        });
      }),
    );
    return out;
  }
}

/**
 * Indices grouped the way `Pipeline.exec` checks them: by ioredis' node group of the slot, and by
 * the slot's master (a slot whose group ioredis no longer knows after a MOVED has none; such slots
 * go together only when their master is the same).
 */
function groupAsIoredis(cluster: Cluster, queued: readonly Queued[], at: readonly number[]): number[][] {
  const groups = new Map<number | string, number[]>();
  for (const i of at) {
    const slot = keySlot(queued[i]!.key);
    // A group id stands for one node list, so for one master.
    const id = cluster._groupsBySlot[slot] ?? `- ${cluster.slots[slot]?.[0] ?? '?'}`;
    const g = groups.get(id);
    if (g) g.push(i);
    else groups.set(id, [i]);
  }
  return [...groups.values()];
}

function groupBySlot(queued: readonly Queued[], at: readonly number[]): number[][] {
  const groups = new Map<number, number[]>();
  for (const i of at) {
    const slot = keySlot(queued[i]!.key);
    const g = groups.get(slot);
    if (g) g.push(i);
    else groups.set(slot, [i]);
  }
  return [...groups.values()];
}

/** A pipeline's outcomes; a pipeline refused as a whole is that error for each of its commands. */
async function runPipeline(redis: RedisClient, items: readonly Queued[]): Promise<Settled[]> {
  const p = redis.pipeline();
  for (const q of items) q.add(p);
  try {
    const results = await p.exec();
    if (!results) throw new Error('redis pipeline returned nothing');
    return results as Settled[];
  } catch (err) {
    const e = err instanceof Error ? err : new Error(String(err));
    return items.map(() => [e, undefined]);
  }
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
