import type { Clock } from '../clock.js';
import type { Logger } from '../logger.js';
import { imageIdOf } from '../storage/variant.js';
import { type AccessCounters, type AccessDelta, UnknownOutcomeError } from './store.js';

/** Counters gathered in process between two flushes (URL stats are built from these). */
export interface UsageCounters {
  requests: number;
  cacheHits: number;
  cacheMisses: number;
  errors: number;
  resolveMsTotal: number;
  resolveBatches: number;
  refreshes: number;
  imageIds: Set<string>;
}

const emptyCounters = (): UsageCounters => ({
  requests: 0,
  cacheHits: 0,
  cacheMisses: 0,
  errors: 0,
  resolveMsTotal: 0,
  resolveBatches: 0,
  refreshes: 0,
  imageIds: new Set(),
});

export type UsageSink = (counters: UsageCounters) => Promise<void>;

export interface AccessTrackerDeps {
  counters: Pick<AccessCounters, 'recordAccess'>;
  logger: Logger;
  clock: Clock;
  /** Where each flush's usage counters go (the daily stats). */
  usage?: UsageSink;
  /** Ids that count as looked at (images someone is subscribed to). */
  liveIds?: () => Iterable<string>;
  /**
   * How often a subscribed id is marked as looked at again; an id newly subscribed is marked on
   * the next flush. Well inside the live window, so a subscribed image never leaves it.
   */
  liveMarkMs?: number;
}

/** A quarter of the default live window's floor (60 s). */
const LIVE_MARK_MS = 15_000;

/**
 * Ids per access-flush round trip (one script call, two commands an id). Each call holds Redis
 * for its whole length, and a page's read that arrives meanwhile waits behind it: 250 ids are
 * ~1.5 ms of Redis, where 1,000 were ~6 ms (docs/benchmarks.md, finding 26).
 */
const FLUSH_CHUNK_IDS = 250;

/**
 * Access tracking off the hot path: the resolve path only bumps in-memory counters; a timer
 * flushes them (per-image access counts and last-access times in chunks, and the usage counters)
 * once a second, so a request never costs a Redis write of its own.
 */
export class AccessTracker {
  private pending = new Map<string, AccessDelta>();
  private usage = emptyCounters();
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> | undefined;
  /** Subscribed ids marked since `liveMarkedAt`: each is written once a period, not every second. */
  private liveMarked = new Set<string>();
  private liveMarkedAt = Number.NEGATIVE_INFINITY;

  constructor(private readonly d: AccessTrackerDeps) {}

  record(ids: readonly string[], at: number, hits: number, misses: number): void {
    for (const id of ids) {
      const d = this.pending.get(id);
      if (d) {
        d.count++;
        d.lastAt = at;
      } else {
        this.pending.set(id, { count: 1, lastAt: at });
      }
    }
    this.usage.requests += ids.length;
    this.usage.cacheHits += hits;
    this.usage.cacheMisses += misses;
  }

  recordResolve(ms: number): void {
    this.usage.resolveMsTotal += ms;
    this.usage.resolveBatches++;
  }

  recordFallback(): void {
    this.usage.errors++;
  }

  recordRefreshes(n: number): void {
    this.usage.refreshes += n;
  }

  start(intervalMs = 1000): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.flush(), intervalMs);
    this.timer.unref();
  }

  /** Writes what has gathered; a failed write keeps the access counts for the next try. */
  async flush(): Promise<void> {
    if (this.flushing) return this.flushing;
    this.flushing = this.doFlush().finally(() => {
      this.flushing = undefined;
    });
    return this.flushing;
  }

  private async doFlush(): Promise<void> {
    const now = this.d.clock.now();
    // The distinct images asked for since the last flush are the pending ones (before the
    // subscribed ones join them below): taken here once, not kept in a set per URL served. A
    // pending id may be a variant's (`<image id>~<variant>`): it counts as its image, or a page
    // of thumbs and srcsets would count each image three times.
    const imageIds = new Set<string>();
    for (const id of this.pending.keys()) imageIds.add(imageIdOf(id));
    this.usage.imageIds = imageIds;
    // Every subscribed id every second was 10,000 meta writes and ZADD members a second for 10,000
    // subscriptions (Redis and this node share the cores with the fan-out): once a period is
    // enough to stay inside the live window. A failed write is kept in `pending` below.
    if (now - this.liveMarkedAt >= (this.d.liveMarkMs ?? LIVE_MARK_MS)) {
      this.liveMarked = new Set();
      this.liveMarkedAt = now;
    }
    for (const id of this.d.liveIds?.() ?? []) {
      if (this.liveMarked.has(id)) continue;
      this.liveMarked.add(id);
      if (!this.pending.has(id)) this.pending.set(id, { count: 0, lastAt: now });
    }
    const deltas = this.pending;
    const usage = this.usage;
    this.pending = new Map();
    this.usage = emptyCounters();
    // In chunks: one pipeline for tens of thousands of ids (a burst of never-seen pages) outlasts
    // the per-command timeout, fails, and is retried whole the next second — a loop that kept
    // Redis and this process busy long after the burst (found by the benchmark, scenario 4).
    const entries = [...deltas];
    for (let i = 0; i < entries.length; i += FLUSH_CHUNK_IDS) {
      try {
        await this.d.counters.recordAccess(new Map(entries.slice(i, i + FLUSH_CHUNK_IDS)));
      } catch (err) {
        // Redis away: nothing was added, this chunk and the rest wait for the next flush. No
        // reply in time: the chunk may have been added (a Redis busy under load), and sending it
        // again would count its accesses twice; it is let go, the rest wait.
        const kept = err instanceof UnknownOutcomeError ? i + FLUSH_CHUNK_IDS : i;
        for (const [id, d] of entries.slice(kept)) {
          const cur = this.pending.get(id);
          if (cur) {
            cur.count += d.count;
            cur.lastAt = Math.max(cur.lastAt, d.lastAt);
          } else this.pending.set(id, d);
        }
        this.d.logger.debug({ err: (err as Error).message }, 'access flush failed; kept for later');
        break;
      }
    }
    await this.d
      .usage?.(usage)
      .catch((err: Error) => this.d.logger.debug({ err: err.message }, 'usage flush failed'));
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    // A periodic flush in flight took only what was gathered when it began: wait for it, then
    // write what came after (the last counts of a shutting-down node).
    await this.flushing;
    await this.flush();
  }
}
