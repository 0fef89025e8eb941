import type { Clock } from '../clock.js';
import type { ImagesRepo } from '../db/images-repo.js';
import type { Logger } from '../logger.js';
import type { Storage } from '../storage/storage.js';

/** What one replication check did. */
export interface ReplicationCheckResult {
  /** Objects looked for (HEAD) in this region's bucket. */
  checked: number;
  /** Of those, found there and recorded (this region now signs its own bucket's URL). */
  replicated: number;
}

/** How often a region's workers run the check (docs/operations.md, "Several regions"). */
export const REPLICATION_CHECK_INTERVAL_MS = 5000;
/**
 * Rows older than this are not looked at again: an object still missing a day after its upload
 * waits for an operator (its URLs keep pointing at its home region's bucket, which has it).
 */
export const REPLICATION_CHECK_WINDOW_MS = 86_400_000;
const BATCH = 500;
const CONCURRENCY = 8;

/**
 * Several regions: finds the recent uploads of other regions that this region's bucket is not
 * known to hold yet, asks the bucket (HEAD) and records those it has. From the next page read of
 * such a row on, this region signs its own bucket's URL for it: a cached URL for the home
 * region's bucket no longer matches the row's placement and is re-signed (urls/region-choice.ts).
 */
export class ReplicationCheck {
  constructor(
    private readonly d: {
      /** This region's bucket. */
      storage: Pick<Storage, 'head'>;
      images: Pick<ImagesRepo, 'pendingReplicas' | 'markReplicated'>;
      region: string;
      clock: Clock;
      logger: Logger;
    },
  ) {}

  async run(): Promise<ReplicationCheckResult> {
    const { storage, images, region, clock, logger } = this.d;
    const since = new Date(clock.now() - REPLICATION_CHECK_WINDOW_MS);
    const rows = await images.pendingReplicas(region, since, BATCH);
    const found: string[] = [];
    let failed = 0;
    let next = 0;
    const worker = async () => {
      while (next < rows.length) {
        const row = rows[next++]!;
        try {
          if (await storage.head(row.objectKey)) found.push(row.id);
        } catch {
          failed++; // the next run asks again
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(CONCURRENCY, rows.length) }, worker));
    const replicated = await images.markReplicated(region, found);
    if (failed > 0) logger.warn({ region, failed, checked: rows.length }, 'replication check: HEAD failed');
    return { checked: rows.length, replicated };
  }
}
