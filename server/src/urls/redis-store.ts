import { Cluster } from 'ioredis';
import { fnv1a32 } from '../lib/hash.js';
import { withDeadline } from '../lib/late-timer.js';
import { probeCluster } from '../redis/cluster-probe.js';
import { CommandBatch } from '../redis/command-batch.js';
import { CommandTimeoutError } from '../redis/command-timeout.js';
import type { RedisClient } from '../redis/connect.js';
import { isClusterRedirection } from '../redis/unreachable.js';
import type { UrlSignature } from '../storage/storage.js';
import { imageIdOf } from '../storage/variant.js';
import {
  type AccessDelta,
  type ClaimResult,
  decodeSignature,
  encodeSignature,
  type StoreEntry,
  UnknownOutcomeError,
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

/*
 * The bulk scripts below take their entries as ONE JSON argument (decoded by Redis' bundled
 * cjson) and build the per-image key names themselves, from the prefix and the shard tag. As
 * hundreds of separate arguments (two key names per image, each a RESP bulk string), the
 * client's command building, its string concatenation and the socket write of ~30 KB were most of
 * a cold page's CPU after signing (found by the benchmark, scenario 4). The keys a call touches
 * share the slot of the key it declares (one shard tag per call on a cluster), so a cluster
 * routes it right. See docs/architecture.md, "Data".
 */

/**
 * The write-back of many signatures (KEYS[1]: a key of the call's shard slot, for routing; on a
 * single Redis also KEYS[2], the schedule, and KEYS[3], the never-refreshed set; ARGV: counted
 * ('1': bump each meta's refresh count), the key prefix, fresh ('1': the images join the
 * never-refreshed set), JSON `[shard, id, value, ttlMs, refreshAt, windowEnd, …]`): a SET … PX
 * per URL and, for refreshes, an HINCRBY; given the schedule's keys, it also puts each image in
 * the schedule at its refresh time (and, when fresh, in the never-refreshed set), so a write-back
 * is one call. As two calls (the URLs, then the schedule from a second JSON of the same ids), the
 * pipeline, the second command and the second JSON cost the gateway ~0.1 ms more a cold page
 * (docs/benchmarks.md, finding 38). On a Cluster the schedule is in another slot than the URLs:
 * there each shard's call stores its URLs only. ZADD/SADD in chunks of 500 members: Lua's unpack
 * has a bounded stack.
 *
 * A stored URL whose window ends later than the one written is kept (each entry carries its
 * window's end, in seconds, and the stored value's end is read from its text form: urls/store.ts,
 * `encodeSignature`), and the entry is then left out altogether: no refresh count, no schedule
 * (the later window's write-back set its due time, which must not move back), no never-refreshed
 * set. Nodes whose clocks differ step at different moments: for the seconds of skew after every
 * boundary the node behind is still in the older step, and an unconditional SET had the two
 * nodes overwrite each other's URL, each signing and announcing it again (two nodes 30 s apart:
 * 120 events per image and boundary instead of 1). The same window (a re-sign, a key rotation, a
 * region chosen anew) is written as before. Returns how many entries were stored.
 */
const WRITE_SCRIPT = `
local counted = ARGV[1] == '1'
local prefix = ARGV[2]
local e = cjson.decode(ARGV[4])
local scheduled = #KEYS == 3
local find, sub, byte = string.find, string.sub, string.byte
-- The window end of a stored value ([!by.][~region.]start.end.sig, base 36), or nil.
local function endOf(v)
  local from = 1
  if byte(v, 1) == 33 then
    local b = find(v, '.', 1, true)
    if not b then return nil end
    from = b + 1
  end
  if byte(v, from) == 126 then
    local r = find(v, '.', from, true)
    if not r then return nil end
    from = r + 1
  end
  local a = find(v, '.', from, true)
  if not a then return nil end
  local b = find(v, '.', a + 1, true)
  if not b then return nil end
  return tonumber(sub(v, a + 1, b - 1), 36)
end
local due, ids, n, stored = {}, {}, 0, 0
for i = 1, #e, 6 do
  local tag = prefix .. '{u' .. e[i] .. '}'
  local id = e[i + 1]
  local key = tag .. 'url:' .. id
  local old = redis.call('GET', key)
  local later = old and endOf(old)
  if not (later and later > e[i + 5]) then
    stored = stored + 1
    redis.call('SET', key, e[i + 2], 'PX', e[i + 3])
    if counted then redis.call('HINCRBY', tag .. 'meta:' .. id, 'r', 1) end
    if scheduled then
      n = n + 1
      due[2 * n - 1] = e[i + 4]
      due[2 * n] = id
      ids[n] = id
    end
  end
end
for i = 1, n, 500 do
  local j = math.min(i + 499, n)
  redis.call('ZADD', KEYS[2], unpack(due, 2 * i - 1, 2 * j))
  if ARGV[3] == '1' then redis.call('SADD', KEYS[3], unpack(ids, i, j)) end
end
return stored
`;
/** The same script, called with the schedule's keys (a single Redis). */
const WRITE_AND_SCHEDULE_COMMAND = 'signetWriteAndScheduleUrls';

const ACCESS_SETS_COMMAND = 'signetAccessSets';
/**
 * Access counts of many images (KEYS: hot, live, schedule; ARGV: JSON `[count, id, lastAt, …]`):
 * ZINCRBY hot by count when above zero, ZADD live GT lastAt (a node flushing late never moves an
 * image's last access backwards). The two sets are all there is of an image's accesses: its
 * access count is its hot score and its last access its live score (`status`). A per-image hash
 * repeating both cost Redis two more writes and a key for every image a page showed for the
 * first time, ~40% of the flush (docs/benchmarks.md, finding 26).
 *
 * A count of 0 is a subscribed image's periodic mark (urls/access-tracker.ts): it also goes into
 * the schedule, due at once, unless it is there already (NX). A Redis that lost its data (a
 * restart without persistence, a failover that dropped the last writes) loses the schedule too,
 * and an image that is only subscribed to, never asked for again, would never be refreshed: its
 * subscribers' URLs would run out. The sweep that claims it finds the URL current or signs it.
 */
const ACCESS_SETS_SCRIPT = `
local e = cjson.decode(ARGV[1])
local live, marked = {}, {}
for i = 1, #e, 3 do
  if e[i] > 0 then
    redis.call('ZINCRBY', KEYS[1], e[i], e[i + 1])
  else
    marked[#marked + 1] = e[i + 2]
    marked[#marked + 1] = e[i + 1]
  end
  live[#live + 1] = e[i + 2]
  live[#live + 1] = e[i + 1]
end
for i = 1, #live, 1000 do
  redis.call('ZADD', KEYS[2], 'GT', unpack(live, i, math.min(i + 999, #live)))
end
for i = 1, #marked, 1000 do
  redis.call('ZADD', KEYS[3], 'NX', unpack(marked, i, math.min(i + 999, #marked)))
end
return #e / 3
`;

/**
 * Atomic bulk claim (KEYS: due, live, hot, new; ARGV: now, limit, leaseMs, liveSince). Looks at
 * up to 4x limit due ids, drops the idle ones, takes `limit` of them — never-refreshed ones
 * (recent uploads) first, then the most accessed, and among equals the longest due — and leases
 * them.
 *
 * What is due is what is due by the claimer's clock (`now`): due times are grid boundaries, and
 * the claimer signs by its own clock, so an id it took before its clock reached the boundary
 * would read as current still and be put back at that boundary, due again at once. The lease
 * ends `leaseMs` after the later of `now` and Redis' `TIME` (scripts replicate by their effects,
 * Redis 7): until 2026-12-07 it ended `leaseMs` after `now`, so a claimer whose clock was 60 s
 * behind leased ids until 30 s in the past, and a claimer with the right clock took them again
 * at once (both signed and announced them). A claimer whose clock is ahead keeps its own lease
 * (it holds longer for everyone else).
 *
 * Built for a backlog of 100,000 (scenario 8 of docs/benchmarks.md), where it was most of Redis'
 * time: every lookup and change is one command per chunk of ids (ZMSCORE, SMISMEMBER, variadic
 * ZREM, ZADD, SREM; Redis 6.2, as the access scripts' ZADD GT) instead of three per id looked
 * at, and the `limit` best are found by sorting the bare scores (compared in C) for the
 * threshold, not by sorting entries with a Lua comparator. Chunks of 500 ids: Lua's unpack has a
 * bounded stack.
 */
const CLAIM_SCRIPT = `
local limit = tonumber(ARGV[2])
if limit <= 0 then return { 0, {} } end
local liveSince = tonumber(ARGV[4])
-- Ids that left the live window without coming due leave the live and hot sets too, 500 a claim:
-- a deleted image's access count flushed after its purge put it back in both, for good.
local stale = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', '(' .. ARGV[4], 'LIMIT', 0, 500)
if #stale > 0 then
  redis.call('ZREM', KEYS[2], unpack(stale))
  redis.call('ZREM', KEYS[3], unpack(stale))
end
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, limit * 4)
-- The lease runs from the later of the claimer's clock and Redis' own: from a claimer whose clock
-- is behind it would already be over for the others, who would claim the ids again at once.
local t = redis.call('TIME')
local leaseUntil = math.max(tonumber(ARGV[1]), tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000))
  + tonumber(ARGV[3])
local ids, scores, idle = {}, {}, {}
for i = 1, #due, 500 do
  local j = math.min(i + 499, #due)
  local last = redis.call('ZMSCORE', KEYS[2], unpack(due, i, j))
  local hot = redis.call('ZMSCORE', KEYS[3], unpack(due, i, j))
  local new = redis.call('SMISMEMBER', KEYS[4], unpack(due, i, j))
  for k = 1, j - i + 1 do
    local id = due[i + k - 1]
    if (not last[k]) or tonumber(last[k]) < liveSince then
      idle[#idle + 1] = id
    else
      local score = tonumber(hot[k] or '0')
      if new[k] == 1 then score = score + 1e12 end
      ids[#ids + 1] = id
      scores[#scores + 1] = score
    end
  end
end
for i = 1, #idle, 500 do
  local j = math.min(i + 499, #idle)
  redis.call('ZREM', KEYS[1], unpack(idle, i, j))
  redis.call('ZREM', KEYS[2], unpack(idle, i, j))
  redis.call('ZREM', KEYS[3], unpack(idle, i, j))
  redis.call('SREM', KEYS[4], unpack(idle, i, j))
end
local claimed = {}
if #ids <= limit then
  claimed = ids
else
  -- The limit-th best score; all above it are taken, then ties at it in due order.
  local sorted = {}
  for i = 1, #scores do sorted[i] = scores[i] end
  table.sort(sorted)
  local t = sorted[#sorted - limit + 1]
  local ties = limit
  for i = 1, #scores do
    if scores[i] > t then ties = ties - 1 end
  end
  for i = 1, #ids do
    if scores[i] > t then
      claimed[#claimed + 1] = ids[i]
    elseif scores[i] == t and ties > 0 then
      claimed[#claimed + 1] = ids[i]
      ties = ties - 1
    end
  end
end
local leases = {}
for i = 1, #claimed do
  leases[2 * i - 1] = leaseUntil
  leases[2 * i] = claimed[i]
end
for i = 1, #claimed, 500 do
  local j = math.min(i + 499, #claimed)
  redis.call('ZADD', KEYS[1], unpack(leases, 2 * i - 1, 2 * j))
  redis.call('SREM', KEYS[4], unpack(claimed, i, j))
end
return { #idle, claimed }
`;

const SHARDS = 64;

/**
 * A key in each slot the store uses (each shard tag's, the schedule's): the cluster probe asks
 * one of them per master (`ping`, and `signet check`).
 */
export function clusterProbeKeys(prefix: string): string[] {
  const k = urlKeys(prefix);
  const keys = [k.schedule];
  for (let n = 0; n < SHARDS; n++) keys.push(`${prefix}{u${n}}`);
  return keys;
}

function shardOf(id: string): number {
  return fnv1a32(id) % SHARDS;
}

/** An entry of WRITE_SCRIPT's JSON: shard, id, value, TTL, refresh time and window end. */
function pushEntry(to: (string | number)[], e: StoreEntry): void {
  // Epoch milliseconds and TTLs as strings: Lua would hand numbers on as it formats them (Redis
  // 7.2.0-7.2.4 wrote some whole numbers in exponent notation, which PX refuses). The window end
  // is only compared, so a number.
  to.push(
    shardOf(e.id),
    e.id,
    encodeSignature(e.sig),
    String(Math.max(1, Math.floor(e.ttlMs))),
    String(e.refreshAt),
    e.sig.end,
  );
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

/** Calls a command defined with defineCommand (ioredis types do not know it) on a client or pipeline. */
function call(on: unknown, command: string, ...args: (string | number)[]): unknown {
  return (on as Record<string, (...a: (string | number)[]) => unknown>)[command]!(...args);
}

export class RedisUrlStore implements UrlStore {
  readonly kind = 'redis' as const;
  private readonly k: ReturnType<typeof urlKeys>;
  private readonly cluster: boolean;
  /** The error message of a call past its deadline. */
  private readonly late: string;

  /**
   * @param deadlineMs bound on a whole call. ioredis applies its command timeout per command and
   * retries cluster redirections on its own, so a call during a failover could otherwise take
   * seconds; past the deadline the caller signs directly instead.
   */
  constructor(
    private readonly redis: RedisClient,
    private readonly prefix: string,
    private readonly deadlineMs = 500,
  ) {
    this.late = `redis call exceeded its ${deadlineMs} ms deadline`;
    this.k = urlKeys(prefix);
    this.cluster = redis instanceof Cluster;
    // defineCommand sends EVALSHA and loads the script only when Redis does not know it yet.
    const define = (name: string, numberOfKeys: number, lua: string) => {
      if (!(name in redis)) redis.defineCommand(name, { numberOfKeys, lua });
    };
    define(CLAIM_COMMAND, 4, CLAIM_SCRIPT);
    define(WRITE_COMMAND, 1, WRITE_SCRIPT);
    define(WRITE_AND_SCHEDULE_COMMAND, 3, WRITE_SCRIPT);
    define(ACCESS_SETS_COMMAND, 3, ACCESS_SETS_SCRIPT);
  }

  async read(ids: readonly string[]): Promise<(UrlSignature | null)[]> {
    if (ids.length === 0) return [];
    if (!this.cluster) return (await this.redis.mget(ids.map(this.k.url))).map(decodeSignature);
    return withDeadline(this.readCluster(ids), this.deadlineMs, this.late);
  }

  private async readCluster(ids: readonly string[]): Promise<(UrlSignature | null)[]> {
    // Cluster: one MGET per shard, one pipeline per node, all nodes in parallel.
    const batch = new CommandBatch(this.redis);
    const groups = [...byShard(ids, this.k)];
    for (const [tag, group] of groups) batch.add(tag, (p) => p.mget(group.map(this.k.url)));
    const results = await batch.settle();
    // A slot still moving after CommandBatch's retry (a reshard's slot caught mid-migration)
    // leaves its ids unread: they count as misses and are signed directly (the same URLs), the
    // rest are hits. Not a cache that is away, so this read does not fail and the breaker stays
    // closed: a failed read would have every page signed directly for a second, for each slot
    // moved. Any other failure fails the read (docs/architecture.md, "Data": resharding).
    for (const [err] of results) if (err && !isClusterRedirection(err)) throw err;
    const found = new Map<string, UrlSignature | null>();
    groups.forEach(([, group], i) => {
      const [err, values] = results[i]!;
      if (err) return;
      group.forEach((id, j) => {
        found.set(id, decodeSignature((values as (string | null)[])[j]));
      });
    });
    return ids.map((id) => found.get(id) ?? null);
  }

  async write(entries: readonly StoreEntry[], reason: 'miss' | 'refresh'): Promise<void> {
    if (entries.length === 0) return;
    const counted = reason === 'refresh' ? '1' : '0';
    // Misses are new to the schedule: they also join the never-refreshed set (claimed first).
    const fresh = reason === 'miss' ? '1' : '0';
    if (!this.cluster) {
      // One script call stores and schedules them all (WRITE_SCRIPT).
      const all: (string | number)[] = [];
      for (const e of entries) pushEntry(all, e);
      const key = this.k.url(entries[0]!.id);
      const sent = call(
        this.redis,
        WRITE_AND_SCHEDULE_COMMAND,
        key,
        this.k.schedule,
        this.k.fresh,
        counted,
        this.prefix,
        fresh,
        JSON.stringify(all),
      ) as Promise<unknown>;
      await withDeadline(sent, this.deadlineMs, this.late);
      return;
    }
    // A Cluster: one script call per shard slot, and the schedule as plain commands in its own
    // slot (a cluster's write-back is a pipeline per node whatever it holds).
    const batch = new CommandBatch(this.redis);
    const groups = new Map<number, { key: string; entries: (string | number)[] }>();
    for (const e of entries) {
      const shard = shardOf(e.id);
      let g = groups.get(shard);
      if (!g) {
        g = { key: this.k.url(e.id), entries: [] };
        groups.set(shard, g);
      }
      pushEntry(g.entries, e);
    }
    for (const g of groups.values()) {
      batch.add(g.key, (p) =>
        call(p, WRITE_COMMAND, g.key, counted, this.prefix, fresh, JSON.stringify(g.entries)),
      );
    }
    // GT: this pipeline does not know which URLs their shard's script kept, and an entry it did
    // not keep (a later window is stored) must not move back the due time that window set. A new
    // id is added as before; a step's due time only ever moves forward.
    batch.add(this.k.schedule, (p) =>
      p.zadd(this.k.schedule, 'GT', ...entries.flatMap((e) => [String(e.refreshAt), e.id])),
    );
    if (fresh === '1') batch.add(this.k.fresh, (p) => p.sadd(this.k.fresh, ...entries.map((e) => e.id)));
    await withDeadline(batch.exec(), this.deadlineMs, this.late);
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

  async forgetImages(imageIds: readonly string[]): Promise<number> {
    if (imageIds.length === 0) return 0;
    const images = new Set(imageIds);
    let removed = 0;
    // One walk of each set (in the {refresh} slot on a Cluster), whatever the number of images.
    for (const [key, sorted] of [
      [this.k.schedule, true],
      [this.k.live, true],
      [this.k.hot, true],
      [this.k.fresh, false],
    ] as const) {
      let cursor = '0';
      do {
        const [next, page] = sorted
          ? await this.redis.zscan(key, cursor, 'COUNT', 1000)
          : await this.redis.sscan(key, cursor, 'COUNT', 1000);
        cursor = next;
        const gone: string[] = [];
        // ZSCAN pages alternate member and score.
        for (let i = 0; i < page.length; i += sorted ? 2 : 1) {
          if (images.has(imageIdOf(page[i]!))) gone.push(page[i]!);
        }
        if (gone.length > 0)
          removed += sorted ? await this.redis.zrem(key, ...gone) : await this.redis.srem(key, ...gone);
      } while (cursor !== '0');
    }
    return removed;
  }

  async recordAccess(deltas: ReadonlyMap<string, AccessDelta>): Promise<void> {
    if (deltas.size === 0) return;
    const sets: (string | number)[] = [];
    for (const [id, d] of deltas) sets.push(d.count, id, String(d.lastAt));
    try {
      await call(
        this.redis,
        ACCESS_SETS_COMMAND,
        this.k.hot,
        this.k.live,
        this.k.schedule,
        JSON.stringify(sets),
      );
    } catch (err) {
      // Sent, then no reply in time: Redis may have added the counts (a busy Redis, not a gone one).
      throw err instanceof CommandTimeoutError ? new UnknownOutcomeError(err) : err;
    }
  }

  async status(ids: readonly string[]): Promise<UrlStatusRecord[]> {
    if (ids.length === 0) return [];
    const batch = new CommandBatch(this.redis);
    for (const id of ids) {
      const url = this.k.url(id);
      batch.add(url, (p) => p.get(url));
      batch.add(url, (p) => p.pttl(url));
      batch.add(url, (p) => p.hget(this.k.meta(id), 'r'));
    }
    batch.add(this.k.hot, (p) => p.zmscore(this.k.hot, ...ids));
    batch.add(this.k.live, (p) => p.zmscore(this.k.live, ...ids));
    const v = await withDeadline(batch.exec(), this.deadlineMs, this.late);
    const hot = v[ids.length * 3] as (string | null)[];
    const live = v[ids.length * 3 + 1] as (string | null)[];
    return ids.map((_, i) => {
      const sig = decodeSignature(v[i * 3] as string | null);
      const pttl = v[i * 3 + 1] as number;
      return {
        sig,
        ttlMs: sig && pttl > 0 ? pttl : null,
        accessCount: Number(hot[i] ?? 0),
        refreshCount: Number((v[i * 3 + 2] as string | null) ?? 0),
        lastAccessAt: live[i] ? Number(live[i]) : null,
      };
    });
  }

  async claimDue(now: number, limit: number, leaseMs: number, liveSince: number): Promise<ClaimResult> {
    const [dropped, claimed] = (await call(
      this.redis,
      CLAIM_COMMAND,
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

  async reschedule(entries: readonly { id: string; refreshAt: number }[]): Promise<void> {
    if (entries.length === 0) return;
    // XX: only ids still in the schedule (a purge meanwhile must not put one back).
    await this.redis.zadd(this.k.schedule, 'XX', ...entries.flatMap((e) => [String(e.refreshAt), e.id]));
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
    if (this.redis instanceof Cluster) {
      // A node answers PING whatever the cluster's state: ask the slots (redis/cluster-probe.ts).
      await probeCluster(this.redis, clusterProbeKeys(this.prefix));
      return;
    }
    await this.redis.ping();
  }

  async close(): Promise<void> {}
}
