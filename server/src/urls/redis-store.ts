import { Cluster } from 'ioredis';
import { fnv1a32 } from '../lib/hash.js';
import { CommandBatch } from '../redis/command-batch.js';
import type { RedisClient } from '../redis/connect.js';
import type { UrlSignature } from '../storage/storage.js';
import {
  type AccessDelta,
  type ClaimResult,
  decodeSignature,
  encodeSignature,
  type StoreEntry,
  type UrlStatusRecord,
  type UrlStore,
} from './store.js';

/** Key layout under one prefix (docs/architecture.md, "Data"). */
export function urlKeys(prefix: string) {
  return {
    // Per-image keys carry a shard hash tag: on a cluster a page's keys fall into at most
    // SHARDS slots, so reads are a few MGETs per node instead of one GET per key.
    shard: (id: string) => `${prefix}{u${shardOf(id)}}`,
    url: (id: string) => `${prefix}{u${shardOf(id)}}url:${id}`,
    meta: (id: string) => `${prefix}{u${shardOf(id)}}meta:${id}`,
    // One hash tag for the schedule's keys, so the claim script runs in one slot on a cluster.
    schedule: `${prefix}{refresh}:due`,
    live: `${prefix}{refresh}:live`,
    hot: `${prefix}{refresh}:hot`,
    /** Signed on demand and not refreshed since: recent uploads and newly viewed images. */
    fresh: `${prefix}{refresh}:new`,
  };
}

const CLAIM_COMMAND = 'signetClaimDue';
const WRITE_COMMAND = 'signetWriteUrls';

/**
 * The write-back of many signatures as one command (KEYS: url1, meta1, url2, meta2, …; ARGV:
 * counted (1: bump each meta's refresh count), value1, ttlMs1, value2, ttlMs2, …): a SET … PX per
 * URL and, for refreshes, an HINCRBY. As a hundred commands in a pipeline, each was a command
 * object, a command timer and its own reply for the client to make and parse: most of a cold
 * page's CPU after signing. The keys of one call share a slot on a cluster (one shard tag).
 */
const WRITE_SCRIPT = `
local counted = ARGV[1] == '1'
for i = 1, #KEYS, 2 do
  local a = i + 1
  redis.call('SET', KEYS[i], ARGV[a], 'PX', ARGV[a + 1])
  if counted then redis.call('HINCRBY', KEYS[i + 1], 'r', 1) end
end
return #KEYS / 2
`;

const ACCESS_META_COMMAND = 'signetAccessMeta';
/**
 * Access counts of many images (KEYS: their meta hashes, one shard tag; ARGV: count1, lastAt1,
 * count2, lastAt2, …): `a` += count when above zero, `l` = lastAt. One command per shard instead
 * of two per image (the flush writes every image a node served in the last second).
 */
const ACCESS_META_SCRIPT = `
for i = 1, #KEYS do
  local count = tonumber(ARGV[i * 2 - 1])
  if count > 0 then redis.call('HINCRBY', KEYS[i], 'a', count) end
  redis.call('HSET', KEYS[i], 'l', ARGV[i * 2])
end
return #KEYS
`;

const ACCESS_HOT_COMMAND = 'signetAccessHot';
/** ZINCRBY of many members (KEYS: the hot set; ARGV: count1, id1, …): one command, not one each. */
const ACCESS_HOT_SCRIPT = `
for i = 1, #ARGV, 2 do
  redis.call('ZINCRBY', KEYS[1], ARGV[i], ARGV[i + 1])
end
return #ARGV / 2
`;

/**
 * Atomic bulk claim (KEYS: due, live, hot, new; ARGV: now, limit, leaseMs, liveSince). Looks at
 * up to 4x limit due ids, drops the idle ones, takes `limit` of them — never-refreshed ones
 * (recent uploads) first, then the most accessed — and leases them.
 */
const CLAIM_SCRIPT = `
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]) * 4)
local limit = tonumber(ARGV[2])
local liveSince = tonumber(ARGV[4])
local leaseUntil = tonumber(ARGV[1]) + tonumber(ARGV[3])
local keep = {}
local dropped = 0
for _, id in ipairs(due) do
  local last = redis.call('ZSCORE', KEYS[2], id)
  if (not last) or tonumber(last) < liveSince then
    redis.call('ZREM', KEYS[1], id)
    redis.call('ZREM', KEYS[2], id)
    redis.call('ZREM', KEYS[3], id)
    redis.call('SREM', KEYS[4], id)
    dropped = dropped + 1
  else
    local score = tonumber(redis.call('ZSCORE', KEYS[3], id) or '0')
    if redis.call('SISMEMBER', KEYS[4], id) == 1 then score = score + 1e12 end
    keep[#keep + 1] = { id, score }
  end
end
if #keep > limit then
  table.sort(keep, function(a, b) return a[2] > b[2] end)
end
local claimed = {}
for i = 1, math.min(#keep, limit) do
  claimed[i] = keep[i][1]
  redis.call('ZADD', KEYS[1], leaseUntil, keep[i][1])
  redis.call('SREM', KEYS[4], keep[i][1])
end
return { dropped, claimed }
`;

const SHARDS = 64;

function shardOf(id: string): number {
  return fnv1a32(id) % SHARDS;
}

/** Groups ids by their shard tag (one multi-key command per group never crosses slots). */
function byShard(ids: readonly string[], k: ReturnType<typeof urlKeys>): Map<string, string[]> {
  const groups = new Map<string, string[]>();
  for (const id of ids) {
    const tag = k.shard(id);
    const g = groups.get(tag);
    if (g) g.push(id);
    else groups.set(tag, [id]);
  }
  return groups;
}

function withDeadline<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`redis call exceeded its ${ms} ms deadline`)), ms);
  });
  p.catch(() => {}); // it may still fail after the deadline: nobody is listening then
  return Promise.race([p, deadline]).finally(() => clearTimeout(timer));
}

export class RedisUrlStore implements UrlStore {
  readonly kind = 'redis' as const;
  private readonly k: ReturnType<typeof urlKeys>;
  private readonly cluster: boolean;

  /**
   * @param deadlineMs bound on a whole call. ioredis applies its command timeout per command and
   * retries cluster redirections on its own, so a call during a failover could otherwise take
   * seconds; past the deadline the caller signs directly instead.
   */
  constructor(
    private readonly redis: RedisClient,
    prefix: string,
    private readonly deadlineMs = 500,
  ) {
    this.k = urlKeys(prefix);
    this.cluster = redis instanceof Cluster;
    // defineCommand sends EVALSHA and loads the script only when Redis does not know it yet.
    if (!(CLAIM_COMMAND in redis)) redis.defineCommand(CLAIM_COMMAND, { numberOfKeys: 4, lua: CLAIM_SCRIPT });
    // The number of keys varies per call: given as the first argument.
    if (!(WRITE_COMMAND in redis)) redis.defineCommand(WRITE_COMMAND, { lua: WRITE_SCRIPT });
    if (!(ACCESS_META_COMMAND in redis))
      redis.defineCommand(ACCESS_META_COMMAND, { lua: ACCESS_META_SCRIPT });
    if (!(ACCESS_HOT_COMMAND in redis))
      redis.defineCommand(ACCESS_HOT_COMMAND, { numberOfKeys: 1, lua: ACCESS_HOT_SCRIPT });
  }

  async read(ids: readonly string[]): Promise<(UrlSignature | null)[]> {
    if (ids.length === 0) return [];
    if (!this.cluster) return (await this.redis.mget(ids.map(this.k.url))).map(decodeSignature);
    return withDeadline(this.readCluster(ids), this.deadlineMs);
  }

  private async readCluster(ids: readonly string[]): Promise<(UrlSignature | null)[]> {
    // Cluster: one MGET per shard, one pipeline per node, all nodes in parallel.
    const batch = new CommandBatch(this.redis);
    const groups = [...byShard(ids, this.k)];
    for (const [tag, group] of groups) batch.add(tag, (p) => p.mget(group.map(this.k.url)));
    const results = (await batch.exec()) as (string | null)[][];
    const found = new Map<string, UrlSignature | null>();
    groups.forEach(([, group], i) => {
      group.forEach((id, j) => {
        found.set(id, decodeSignature(results[i]![j]));
      });
    });
    return ids.map((id) => found.get(id) ?? null);
  }

  async write(entries: readonly StoreEntry[], reason: 'miss' | 'refresh'): Promise<void> {
    if (entries.length === 0) return;
    const batch = new CommandBatch(this.redis);
    const schedule: (string | number)[] = [];
    // One script call per shard tag (a cluster slot), or one for all on a single Redis.
    const groups = new Map<string, { keys: string[]; args: (string | number)[] }>();
    const counted = reason === 'refresh' ? 1 : 0;
    for (const e of entries) {
      const tag = this.cluster ? this.k.shard(e.id) : '';
      let g = groups.get(tag);
      if (!g) {
        g = { keys: [], args: [counted] };
        groups.set(tag, g);
      }
      g.keys.push(this.k.url(e.id), this.k.meta(e.id));
      g.args.push(encodeSignature(e.sig), Math.max(1, Math.floor(e.ttlMs)));
      schedule.push(e.refreshAt, e.id);
    }
    for (const { keys, args } of groups.values()) {
      batch.add(keys[0]!, (p) =>
        (p as unknown as Record<string, (...a: (string | number)[]) => unknown>)[WRITE_COMMAND]!(
          keys.length,
          ...keys,
          ...args,
        ),
      );
    }
    batch.add(this.k.schedule, (p) => p.zadd(this.k.schedule, ...schedule));
    if (reason === 'miss') {
      batch.add(this.k.fresh, (p) => p.sadd(this.k.fresh, ...entries.map((e) => e.id)));
    }
    await withDeadline(batch.exec(), this.deadlineMs);
  }

  async purge(ids: readonly string[]): Promise<void> {
    if (ids.length === 0) return;
    const batch = new CommandBatch(this.redis);
    for (const [tag, group] of byShard(ids, this.k)) {
      batch.add(tag, (p) => p.del(...group.map(this.k.url), ...group.map(this.k.meta)));
    }
    batch.add(this.k.schedule, (p) => p.zrem(this.k.schedule, ...ids));
    batch.add(this.k.schedule, (p) => p.zrem(this.k.live, ...ids));
    batch.add(this.k.schedule, (p) => p.zrem(this.k.hot, ...ids));
    batch.add(this.k.schedule, (p) => p.srem(this.k.fresh, ...ids));
    await batch.exec();
  }

  async recordAccess(deltas: ReadonlyMap<string, AccessDelta>): Promise<void> {
    if (deltas.size === 0) return;
    const batch = new CommandBatch(this.redis);
    const live: (string | number)[] = [];
    const hot: (string | number)[] = [];
    const metas = new Map<string, { keys: string[]; args: number[] }>();
    for (const [id, d] of deltas) {
      const tag = this.cluster ? this.k.shard(id) : '';
      let g = metas.get(tag);
      if (!g) {
        g = { keys: [], args: [] };
        metas.set(tag, g);
      }
      g.keys.push(this.k.meta(id));
      g.args.push(d.count, d.lastAt);
      if (d.count > 0) hot.push(d.count, id);
      live.push(d.lastAt, id);
    }
    const call = (p: unknown, cmd: string, ...a: (string | number)[]) =>
      (p as Record<string, (...x: (string | number)[]) => unknown>)[cmd]!(...a);
    for (const { keys, args } of metas.values()) {
      batch.add(keys[0]!, (p) => call(p, ACCESS_META_COMMAND, keys.length, ...keys, ...args));
    }
    if (hot.length > 0) batch.add(this.k.hot, (p) => call(p, ACCESS_HOT_COMMAND, this.k.hot, ...hot));
    // GT: a node flushing late never moves an image's last access backwards.
    batch.add(this.k.live, (p) => p.zadd(this.k.live, 'GT', ...live));
    await batch.exec();
  }

  async status(ids: readonly string[]): Promise<UrlStatusRecord[]> {
    if (ids.length === 0) return [];
    const batch = new CommandBatch(this.redis);
    for (const id of ids) {
      const url = this.k.url(id);
      batch.add(url, (p) => p.get(url));
      batch.add(url, (p) => p.pttl(url));
      batch.add(url, (p) => p.hmget(this.k.meta(id), 'a', 'r', 'l'));
    }
    const v = await withDeadline(batch.exec(), this.deadlineMs);
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

  async claimDue(now: number, limit: number, leaseMs: number, liveSince: number): Promise<ClaimResult> {
    const claim = (
      this.redis as unknown as Record<string, (...args: (string | number)[]) => Promise<unknown>>
    )[CLAIM_COMMAND]!.bind(this.redis);
    const [dropped, claimed] = (await claim(
      this.k.schedule,
      this.k.live,
      this.k.hot,
      this.k.fresh,
      now,
      limit,
      leaseMs,
      liveSince,
    )) as [number, string[]];
    return { claimed, dropped };
  }

  async unschedule(ids: readonly string[]): Promise<void> {
    if (ids.length === 0) return;
    await this.redis.zrem(this.k.schedule, ...ids);
  }

  async scheduleInfo(now: number): Promise<{ backlog: number; oldestDueAt: number | null }> {
    const batch = new CommandBatch(this.redis);
    batch.add(this.k.schedule, (p) => p.zcount(this.k.schedule, '-inf', now));
    batch.add(this.k.schedule, (p) => p.zrange(this.k.schedule, 0, 0, 'WITHSCORES'));
    const [count, oldest] = (await batch.exec()) as [number, string[]];
    const at = oldest[1] !== undefined ? Number(oldest[1]) : null;
    return { backlog: count, oldestDueAt: at !== null && at <= now ? at : null };
  }

  async ping(): Promise<void> {
    await this.redis.ping();
  }

  async close(): Promise<void> {}
}
