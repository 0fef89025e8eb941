import { pipelineValues } from '../redis/command-batch.js';
import type { RedisClient } from '../redis/connect.js';
import type { UsageCounters } from '../urls/access-tracker.js';
import {
  type DailyStats,
  emptyDay,
  STATS_RETENTION_DAYS,
  type StatsStore,
  type WorkerBeat,
} from './stats-store.js';

const FIELDS = [
  'requests',
  'cacheHits',
  'cacheMisses',
  'refreshes',
  'errors',
  'resolveMsTotal',
  'resolveBatches',
] as const;
const RETENTION_SECONDS = (STATS_RETENTION_DAYS + 1) * 86_400;

/**
 * Per-day hashes and HyperLogLogs under one hash tag (so PFCOUNT over many days works on a
 * cluster); keys expire after the retention, so old days clean themselves up.
 */
export class RedisStatsStore implements StatsStore {
  private readonly day: (d: string) => string;
  private readonly uniq: (d: string) => string;
  private readonly workersKey: string;

  constructor(
    private readonly redis: RedisClient,
    prefix: string,
  ) {
    this.day = (d) => `${prefix}{stats}:day:${d}`;
    this.uniq = (d) => `${prefix}{stats}:uniq:${d}`;
    this.workersKey = `${prefix}{stats}:workers`;
  }

  async add(date: string, u: UsageCounters): Promise<void> {
    const p = this.redis.pipeline();
    const key = this.day(date);
    for (const f of FIELDS) {
      const v = u[f];
      if (v === 0) continue;
      if (Number.isInteger(v)) p.hincrby(key, f, v);
      else p.hincrbyfloat(key, f, v);
    }
    p.expire(key, RETENTION_SECONDS);
    if (u.imageIds.size > 0) {
      p.pfadd(this.uniq(date), ...u.imageIds);
      p.expire(this.uniq(date), RETENTION_SECONDS);
    }
    pipelineValues(await p.exec());
  }

  async days(dates: readonly string[]): Promise<DailyStats[]> {
    if (dates.length === 0) return [];
    const p = this.redis.pipeline();
    for (const d of dates) {
      p.hgetall(this.day(d));
      p.pfcount(this.uniq(d));
    }
    const v = pipelineValues(await p.exec());
    return dates.map((date, i) => {
      const h = v[i * 2] as Record<string, string>;
      const row = emptyDay(date);
      for (const f of FIELDS) row[f] = Number(h[f] ?? 0);
      row.uniqueImages = v[i * 2 + 1] as number;
      return row;
    });
  }

  async uniqueImages(dates: readonly string[]): Promise<number> {
    if (dates.length === 0) return 0;
    return this.redis.pfcount(...dates.map(this.uniq));
  }

  async heartbeat(beat: WorkerBeat): Promise<void> {
    await this.redis.hset(this.workersKey, beat.id, JSON.stringify(beat));
  }

  async workers(): Promise<WorkerBeat[]> {
    const all = await this.redis.hgetall(this.workersKey);
    return Object.values(all).flatMap((v) => {
      try {
        return [JSON.parse(v) as WorkerBeat];
      } catch {
        return [];
      }
    });
  }

  async rollup(_today: string, staleBefore: number): Promise<void> {
    const stale = (await this.workers()).filter((b) => b.lastBeatAt < staleBefore).map((b) => b.id);
    if (stale.length > 0) await this.redis.hdel(this.workersKey, ...stale);
  }
}
