import type { Clock } from '../clock.js';
import type { DeletedRowRecords } from '../db/images-repo.js';
import { WorkListGate } from '../db/work-list-indexes.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';

/** How often the workers run the purge (one run per interval across the deployment on BullMQ). */
export const DELETED_ROW_PURGE_INTERVAL_MS = 3_600_000;

export interface DeletedRowPurgeResult {
  /** Rows removed by this run. */
  purged: number;
  /** True when the run removed every row past the retention (it did not stop at its budget). */
  complete: boolean;
}

export interface DeletedRowPurgeDeps {
  images: Pick<DeletedRowRecords, 'prepareDeletedWorkList' | 'purgeDeleted'>;
  metrics: Pick<Metrics, 'deletedRowsPurged'>;
  clock: Clock;
  logger: Logger;
}

export interface DeletedRowPurgeOptions {
  /** DELETED_ROW_RETENTION_DAYS: rows deleted longer ago than this are removed (0: all of them). */
  retentionDays: number;
  /** Rows one statement removes (default 500). */
  batchSize?: number;
  /** A run stops after this many batches and the next run goes on (default 40: 20,000 rows). */
  maxBatches?: number;
  /** After a failed build of the work list's index, runs skip it this long, doubled per failure (default 5 min). */
  buildRetryMs?: number;
}

/**
 * Removes the rows of deleted images once they were deleted more than DELETED_ROW_RETENTION_DAYS
 * ago (docs/architecture.md, "Deleting an image"). A soft-deleted row keeps its object key, owner
 * and time of deletion (the photo's placeholder, size and ETag are cleared by the delete) for the
 * orphan sweep and `signet import`, which tell a deleted row's key from an unknown one; past the
 * retention nothing needs it, and a user's erasure must not wait for ever. Bounded statements of
 * `batchSize` rows on a partial index of the deleted rows (built by the first run, concurrently:
 * db/work-list-indexes.ts), at most `maxBatches` a run.
 */
export class DeletedRowPurge {
  private readonly stop = new AbortController();
  private readonly gate: WorkListGate;

  constructor(
    private readonly d: DeletedRowPurgeDeps,
    private readonly o: DeletedRowPurgeOptions,
  ) {
    this.gate = new WorkListGate({
      job: 'deleted-row purge',
      now: () => d.clock.now(),
      logger: d.logger,
      retryMs: o.buildRetryMs,
    });
  }

  /** A run in progress stops after its current statement. */
  close(): void {
    this.stop.abort();
  }

  async run(): Promise<DeletedRowPurgeResult> {
    const { images, logger, clock } = this.d;
    const total: DeletedRowPurgeResult = { purged: 0, complete: false };
    if (!(await this.gate.open((o) => images.prepareDeletedWorkList(o), this.stop.signal))) return total;
    const batchSize = this.o.batchSize ?? 500;
    const maxBatches = this.o.maxBatches ?? 40;
    const before = new Date(clock.now() - this.o.retentionDays * 86_400_000);
    for (let batch = 0; batch < maxBatches && !this.stop.signal.aborted; batch++) {
      const n = await images.purgeDeleted(before, batchSize);
      total.purged += n;
      if (n > 0) this.d.metrics.deletedRowsPurged.inc(n);
      if (n < batchSize) {
        total.complete = true;
        break;
      }
    }
    if (total.purged > 0) logger.info({ ...total }, 'deleted image rows purged');
    return total;
  }
}
