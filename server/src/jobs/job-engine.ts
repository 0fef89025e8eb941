import type { SweepResult } from '../urls/refresher.js';

/** What one orphan sweep did. */
export interface OrphanSweepResult {
  listed: number;
  deleted: number;
  /** True when the run reached the end of the upload keys (the next one starts over). */
  complete: boolean;
}

/** The background work itself; engines only decide when and where it runs. */
export interface Processors {
  /** Claims and re-signs due URLs until none are due (or a time budget passes). */
  refreshSweep(): Promise<SweepResult>;
  /** Reads the backlog and lag (and feeds their gauges). */
  observe(): Promise<{ backlog: number; lagSeconds: number }>;
  /** Daily stats roll-up: retention and stale heartbeats. */
  statsRollup(): Promise<void>;
  /** Signs the URLs of these images that the cache does not hold; returns how many it signed. */
  preload(ids: readonly string[]): Promise<number>;
  /** Deletes uploaded objects no image row names (older than the grace period). */
  orphanSweep(): Promise<OrphanSweepResult>;
}

export interface JobEngine {
  readonly kind: 'bullmq' | 'timer';
  /** Starts running the scheduled jobs on this node (workers only). */
  startWorkers(): Promise<void>;
  /** Runs a preload of a large id list as a job and waits for its result. */
  preload(ids: readonly string[]): Promise<number>;
  stop(): Promise<void>;
}

/** Sweeps run at least once a second, more often when URLs live only seconds. */
export function tickInterval(refreshAheadSeconds: number): number {
  return Math.max(100, Math.min(1000, Math.floor((refreshAheadSeconds * 1000) / 5)));
}
