import type { DeletedRowPurgeResult } from '../images/deleted-row-purge.js';
import type { DerivedVariantsResult, VariantsBackfillResult } from '../images/derived-variants.js';
import type { ImageJobs } from '../images/image-jobs.js';
import type { OrphanSweepResult } from '../images/orphan-sweep.js';
import type { BackfillResult } from '../images/placeholders.js';
import type { ReplicationCheckResult } from '../images/replication-check.js';
import type { SweepResult } from '../urls/refresher.js';

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
  /**
   * Deletes uploaded objects no live image row names, the variants kept of them, and crashed
   * writes' files (all older than the grace period).
   */
  orphanSweep(): Promise<OrphanSweepResult>;
  /** Computes the placeholders of live rows that have none (bounded run; the next goes on). */
  placeholderBackfill(): Promise<BackfillResult>;
  /**
   * Makes the derived variants of one image (s3; docs/architecture.md, "Variants on s3"):
   * 'none' when the image is gone or variants are not derived objects.
   */
  makeVariants(imageId: string): Promise<DerivedVariantsResult | 'none'>;
  /** Makes the derived variants of live rows that have none (bounded run; the next goes on). */
  variantsBackfill(): Promise<VariantsBackfillResult | undefined>;
  /**
   * Several regions: records which recent uploads of other regions this region's bucket holds
   * now (images/replication-check.ts). Scheduled only when there is something to check.
   */
  replicationCheck(): Promise<ReplicationCheckResult>;
  /**
   * Removes the rows of images deleted more than DELETED_ROW_RETENTION_DAYS ago, in bounded
   * batches (images/deleted-row-purge.ts; the next run goes on).
   */
  deletedRowPurge(): Promise<DeletedRowPurgeResult>;
}

export interface JobEngine extends ImageJobs {
  readonly kind: 'bullmq' | 'timer';
  /**
   * Starts running the scheduled jobs on this node (workers only). Resolves without waiting for
   * Redis: a node started while it is down serves, and its workers come up once it answers.
   */
  startWorkers(): Promise<void>;
  /**
   * Runs a preload of a long id list as jobs of at most PRELOAD_JOB_IDS ids each and waits for
   * their results. Throws `PreloadQueueFull`, having queued nothing, when those jobs do not fit
   * in the preload wait list. Preloads never hold up refresh sweeps.
   */
  preload(ids: readonly string[]): Promise<number>;
  stop(): Promise<void>;
}

/**
 * Most ids one preload job carries: about 20 KB of JSON however long the call's list, and one
 * SQL statement and one cache round trip when it runs.
 */
export const PRELOAD_JOB_IDS = 500;

/** The jobs a preload of these ids becomes. */
export function preloadJobs(ids: readonly string[]): string[][] {
  const jobs: string[][] = [];
  for (let i = 0; i < ids.length; i += PRELOAD_JOB_IDS) jobs.push(ids.slice(i, i + PRELOAD_JOB_IDS));
  return jobs;
}

/** Sweeps run at least once a second, more often when URLs live only seconds. */
export function tickInterval(refreshAheadSeconds: number): number {
  return Math.max(100, Math.min(1000, Math.floor((refreshAheadSeconds * 1000) / 5)));
}
