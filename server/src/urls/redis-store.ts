import type { RedisClient } from '../redis/connect.js';
import type { UrlSignature } from '../storage/storage.js';
import {
  type AccessDelta,
  decodeSignature,
  encodeSignature,
  type StoreEntry,
  type UrlStatusRecord,
  type UrlStore,
} from './store.js';

/** Key layout under one prefix (DESIGN §5 "Data"). */
export function urlKeys(prefix: string) {
  return {
    url: (id: string) => `${prefix}url:${id}`,
    meta: (id: string) => `${prefix}meta:${id}`,
    schedule: `${prefix}refresh:due`,
    live: `${prefix}refresh:live`,
  };
}

/** Throws unless every reply of a pipeline succeeded; returns the values. */
export function pipelineValues(results: [Error | null, unknown][] | null): unknown[] {
  if (!results) throw new Error('redis pipeline returned nothing');
  return results.map(([err, v]) => {
    if (err) throw err;
    return v;
  });
}

export class RedisUrlStore implements UrlStore {
  readonly kind = 'redis' as const;
  private trips = 0;
  private readonly k: ReturnType<typeof urlKeys>;

  constructor(
    private readonly redis: RedisClient,
    prefix: string,
  ) {
    this.k = urlKeys(prefix);
  }

  async read(ids: readonly string[]): Promise<(UrlSignature | null)[]> {
    if (ids.length === 0) return [];
    this.trips++;
    const values = await this.redis.mget(ids.map(this.k.url));
    return values.map(decodeSignature);
  }

  async write(entries: readonly StoreEntry[], reason: 'miss' | 'refresh'): Promise<void> {
    if (entries.length === 0) return;
    this.trips++;
    const p = this.redis.pipeline();
    const schedule: (string | number)[] = [];
    for (const e of entries) {
      p.set(this.k.url(e.id), encodeSignature(e.sig), 'PX', Math.max(1, Math.floor(e.ttlMs)));
      if (reason === 'refresh') p.hincrby(this.k.meta(e.id), 'r', 1);
      schedule.push(e.refreshAt, e.id);
    }
    p.zadd(this.k.schedule, ...schedule);
    pipelineValues(await p.exec());
  }

  async purge(ids: readonly string[]): Promise<void> {
    if (ids.length === 0) return;
    this.trips++;
    const p = this.redis.pipeline();
    for (const id of ids) p.del(this.k.url(id), this.k.meta(id));
    p.zrem(this.k.schedule, ...ids);
    p.zrem(this.k.live, ...ids);
    pipelineValues(await p.exec());
  }

  async recordAccess(deltas: ReadonlyMap<string, AccessDelta>): Promise<void> {
    if (deltas.size === 0) return;
    this.trips++;
    const p = this.redis.pipeline();
    const live: (string | number)[] = [];
    for (const [id, d] of deltas) {
      p.hincrby(this.k.meta(id), 'a', d.count);
      p.hset(this.k.meta(id), 'l', d.lastAt);
      live.push(d.lastAt, id);
    }
    // GT: a node flushing late never moves an image's last access backwards.
    p.zadd(this.k.live, 'GT', ...live);
    pipelineValues(await p.exec());
  }

  async status(ids: readonly string[]): Promise<UrlStatusRecord[]> {
    if (ids.length === 0) return [];
    this.trips++;
    const p = this.redis.pipeline();
    for (const id of ids) {
      p.get(this.k.url(id));
      p.pttl(this.k.url(id));
      p.hmget(this.k.meta(id), 'a', 'r', 'l');
    }
    const v = pipelineValues(await p.exec());
    return ids.map((_, i) => {
      const sig = decodeSignature(v[i * 3] as string | null);
      const pttl = v[i * 3 + 1] as number;
      const [a, r, l] = v[i * 3 + 2] as (string | null)[];
      return {
        sig,
        ttlMs: sig && pttl > 0 ? pttl : null,
        accessCount: Number(a ?? 0),
        refreshCount: Number(r ?? 0),
        lastAccessAt: l ? Number(l) : null,
      };
    });
  }

  async ping(): Promise<void> {
    this.trips++;
    await this.redis.ping();
  }

  roundTrips(): number {
    return this.trips;
  }

  async close(): Promise<void> {}
}
