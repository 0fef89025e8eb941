import type { UsageCounters } from '../urls/access-tracker.js';
import {
  type DailyStats,
  emptyDay,
  lastDays,
  STATS_RETENTION_DAYS,
  type StatsStore,
  type WorkerBeat,
} from './stats-store.js';

/** Embedded mode: exact unique counts with sets (one process, bounded by retention). */
export class MemoryStatsStore implements StatsStore {
  private readonly rows = new Map<string, DailyStats>();
  private readonly uniques = new Map<string, Set<string>>();
  private readonly beats = new Map<string, WorkerBeat>();

  async add(date: string, u: UsageCounters): Promise<void> {
    const row = this.rows.get(date) ?? emptyDay(date);
    row.requests += u.requests;
    row.cacheHits += u.cacheHits;
    row.cacheMisses += u.cacheMisses;
    row.refreshes += u.refreshes;
    row.errors += u.errors;
    row.resolveMsTotal += u.resolveMsTotal;
    row.resolveBatches += u.resolveBatches;
    this.rows.set(date, row);
    let set = this.uniques.get(date);
    if (!set) {
      set = new Set();
      this.uniques.set(date, set);
    }
    for (const id of u.imageIds) set.add(id);
  }

  async days(dates: readonly string[]): Promise<DailyStats[]> {
    return dates.map((d) => ({
      ...(this.rows.get(d) ?? emptyDay(d)),
      uniqueImages: this.uniques.get(d)?.size ?? 0,
    }));
  }

  async uniqueImages(dates: readonly string[]): Promise<number> {
    const all = new Set<string>();
    for (const d of dates) for (const id of this.uniques.get(d) ?? []) all.add(id);
    return all.size;
  }

  async heartbeat(beat: WorkerBeat): Promise<void> {
    this.beats.set(beat.id, { ...beat });
  }

  async workers(): Promise<WorkerBeat[]> {
    return [...this.beats.values()];
  }

  async rollup(today: string, staleBefore: number): Promise<void> {
    const keep = new Set(lastDays(Date.parse(`${today}T00:00:00Z`), STATS_RETENTION_DAYS));
    for (const d of [...this.rows.keys()]) if (!keep.has(d)) this.rows.delete(d);
    for (const d of [...this.uniques.keys()]) if (!keep.has(d)) this.uniques.delete(d);
    for (const [id, b] of this.beats) if (b.lastBeatAt < staleBefore) this.beats.delete(id);
  }
}
