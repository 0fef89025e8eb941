import type { Clock } from '../clock.js';
import type { ImagesRepo } from '../db/images-repo.js';
import type { ImageRow } from '../db/types.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import { splitUrlId, type Variant } from '../storage/variant.js';
import type { SignTarget } from './resolved-url.js';
import type { RefreshSchedule } from './store.js';
import type { UrlService } from './url-service.js';

export interface RefresherOptions {
  refreshAheadSeconds: number;
  liveWindowSeconds: number;
  /** Ids claimed per Redis round trip. */
  batchSize?: number;
}

export interface SweepResult {
  refreshed: number;
  dropped: number;
  batches: number;
  failedBatches: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Refresh-ahead: claims due URLs in bulk under a lease and re-signs them. Any number of nodes may
 * sweep at once: the claim is atomic, and a node that dies mid-batch only delays its batch by
 * the lease (it comes due again and another node takes it).
 */
export class Refresher {
  readonly leaseMs: number;
  readonly batchSize: number;

  constructor(
    private readonly d: {
      schedule: RefreshSchedule;
      images: Pick<ImagesRepo, 'findLive'>;
      urls: Pick<UrlService, 'refreshMany'>;
      clock: Clock;
      logger: Logger;
      metrics: Metrics;
      /**
       * The object a variant's URL signs (images/variants.ts `objectKeyFor`: its derived object
       * once made, on `s3`); default the original's.
       */
      objectKeyFor?: (row: ImageRow, variant: Variant | undefined) => string;
    },
    private readonly o: RefresherOptions,
  ) {
    // The lease must run out well before the URL does, even with TTLs of seconds.
    this.leaseMs = Math.max(1000, Math.min(30_000, Math.floor((o.refreshAheadSeconds * 1000) / 3)));
    this.batchSize = o.batchSize ?? 500;
  }

  /** Claims and refreshes batches until nothing is due or `budgetMs` has passed. */
  async sweep(budgetMs = 10_000): Promise<SweepResult> {
    const started = Date.now();
    const result: SweepResult = { refreshed: 0, dropped: 0, batches: 0, failedBatches: 0 };
    for (;;) {
      // What is due is due by this node's clock (it signs by it); on Redis the lease runs from
      // the later of this clock and Redis' own, so it holds for nodes whose clock is right when
      // this one's is behind (redis-store.ts, CLAIM_SCRIPT).
      const now = this.d.clock.now();
      const { claimed, dropped } = await this.d.schedule.claimDue(
        now,
        this.batchSize,
        this.leaseMs,
        now - this.o.liveWindowSeconds * 1000,
      );
      result.dropped += dropped;
      if (claimed.length === 0) break;
      result.batches++;
      const ok = await this.refreshBatch(claimed);
      if (ok >= 0) result.refreshed += ok;
      else result.failedBatches++;
      if (claimed.length < this.batchSize || Date.now() - started > budgetMs) break;
    }
    return result;
  }

  /**
   * Re-signs one claimed batch, retrying with backoff; -1 when it gave up (the lease will retry).
   * The schedule holds url ids: an image's original and each of its variants (`<id>~<variant>`)
   * are refreshed alike, from one row lookup.
   */
  private async refreshBatch(ids: string[]): Promise<number> {
    const targets = ids.map((id) => ({ id, parts: splitUrlId(id) }));
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        const imageIds = [...new Set(targets.flatMap((t) => (t.parts ? [t.parts.imageId] : [])))];
        const rows = imageIds.length > 0 ? await this.d.images.findLive(imageIds) : [];
        const byId = new Map(rows.map((r) => [r.id, r]));
        const items: SignTarget[] = [];
        const gone: string[] = [];
        for (const t of targets) {
          const row = t.parts && byId.get(t.parts.imageId);
          if (row) {
            const variant = t.parts!.variant;
            const key = this.d.objectKeyFor ? this.d.objectKeyFor(row, variant) : row.objectKey;
            items.push({ id: t.id, key, variant, placement: row });
          } else gone.push(t.id);
        }
        if (gone.length > 0) await this.d.schedule.unschedule(gone);
        if (items.length === 0) return 0;
        const current: { id: string; refreshAt: number }[] = [];
        await this.d.urls.refreshMany(items, {
          strict: true,
          onlyStale: true,
          onCurrent: (id, refreshAt) => current.push({ id, refreshAt }),
        });
        // Already this step's URL, with a schedule entry that did not follow (a write-back whose
        // URL landed and whose schedule part failed: another node of a cluster, or a timed-out
        // reply to an earlier attempt of this batch): due again when its step ends. Left to the
        // lease, it would be claimed, read and left alone every lease until then.
        if (current.length > 0) await this.d.schedule.reschedule(current);
        return items.length;
      } catch (err) {
        this.d.logger.warn({ err: (err as Error).message, attempt, ids: ids.length }, 'refresh batch failed');
        await sleep(100 * 2 ** attempt);
      }
    }
    return -1;
  }

  /** Feeds the backlog and lag gauges; returns them for stats. */
  async observe(): Promise<{ backlog: number; lagSeconds: number }> {
    const now = this.d.clock.now();
    const info = await this.d.schedule.scheduleInfo(now);
    const lagSeconds = info.oldestDueAt === null ? 0 : Math.max(0, (now - info.oldestDueAt) / 1000);
    this.d.metrics.refreshBacklog.set(info.backlog);
    this.d.metrics.refreshLagSeconds.set(lagSeconds);
    return { backlog: info.backlog, lagSeconds };
  }
}
