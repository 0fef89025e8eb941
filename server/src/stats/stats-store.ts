import type { UsageCounters } from '../urls/access-tracker.js';

export const STATS_RETENTION_DAYS = 30;

export interface DailyStats {
  /** YYYY-MM-DD (UTC). */
  date: string;
  requests: number;
  cacheHits: number;
  cacheMisses: number;
  refreshes: number;
  errors: number;
  resolveMsTotal: number;
  resolveBatches: number;
  uniqueImages: number;
}

export interface WorkerBeat {
  id: string;
  role: string;
  /** Epoch ms of the last heartbeat. */
  lastBeatAt: number;
  startedAt: number;
  refreshed: number;
}

/** Daily URL statistics and worker heartbeats: Redis hashes + HyperLogLog, or memory. */
export interface StatsStore {
  /** Adds in-process counters to `date`'s row. One round trip. */
  add(date: string, usage: UsageCounters): Promise<void>;
  /** Rows for the dates, in order (zeros where nothing was recorded). */
  days(dates: readonly string[]): Promise<DailyStats[]>;
  /** Distinct images over all the dates (HyperLogLog union). */
  uniqueImages(dates: readonly string[]): Promise<number>;
  heartbeat(beat: WorkerBeat): Promise<void>;
  workers(): Promise<WorkerBeat[]>;
  /** Drops heartbeats older than `staleBefore` and days older than the retention. */
  rollup(today: string, staleBefore: number): Promise<void>;
}

export function dayOf(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

/** The `n` days ending with the day of `ms`, oldest first. */
export function lastDays(ms: number, n: number): string[] {
  const out: string[] = [];
  for (let i = n - 1; i >= 0; i--) out.push(dayOf(ms - i * 86_400_000));
  return out;
}

export const emptyDay = (date: string): DailyStats => ({
  date,
  requests: 0,
  cacheHits: 0,
  cacheMisses: 0,
  refreshes: 0,
  errors: 0,
  resolveMsTotal: 0,
  resolveBatches: 0,
  uniqueImages: 0,
});
