import type { Clock } from '../clock.js';
import type { AnimationRecords, Cursor } from '../db/images-repo.js';
import type { ImageRow } from '../db/types.js';
import { WorkListGate } from '../db/work-list-indexes.js';
import type { EventBus } from '../events/event-bus.js';
import { LogThrottle } from '../lib/log-throttle.js';
import { Slots } from '../lib/slots.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import { type Storage, StorageError } from '../storage/storage.js';
import { isAnimated } from '../uploads/dimensions.js';
import { SNIFF_FIRST_BYTES } from '../uploads/sniff.js';

/**
 * What became of one row: `animated` or `still` (recorded; never looked at again), or `failed`
 * (storage or the database failed, or the read ran out of time: the row stays null and the next
 * run looks again).
 */
export type AnimationCheckResult = 'animated' | 'still' | 'failed';

export interface AnimationBackfillResult {
  visited: number;
  animated: number;
  still: number;
  failed: number;
  /** True when the run saw every row whose animation was not known. */
  complete: boolean;
}

export interface AnimationBackfillDeps {
  storage: Pick<Storage, 'get'>;
  /** Several regions: the bucket known to hold a row's object (as the placeholders read it). */
  storageFor?: ((row: ImageRow) => Pick<Storage, 'get'>) | undefined;
  images: Pick<AnimationRecords, 'prepareAnimationWorkList' | 'animationUnknown' | 'recordAnimation'>;
  /**
   * Where the rows recorded as animated are announced, one message per batch: the `preset`
   * subscriptions holding them move to the original's URL (urls/live-urls.ts).
   */
  events: Pick<EventBus, 'publishAnimated'>;
  metrics: Pick<Metrics, 'animationChecked'>;
  logger: Logger;
  /** When a failed build of the work list's index may be tried again. */
  clock: Clock;
}

export interface AnimationBackfillOptions {
  /** Bound of reading one head. */
  timeoutSeconds: number;
  /** Heads read at once (default 8: a few KB each, no decoding). */
  concurrency?: number;
  /** Rows one statement reads (default 100). */
  batchSize?: number;
  /** A run stops after this long and the next one goes on (default 60 s). */
  runBudgetMs?: number;
  /**
   * After a failed build of the work list's index, the runs of the next this-many ms skip it;
   * doubled at each failure in a row, up to BUILD_RETRY_MAX_MS (default 5 min).
   */
  buildRetryMs?: number;
}

/** The formats a row of this type may be an animation of (the index's list). */
const FORMAT_OF: Readonly<Record<string, 'webp' | 'png' | 'avif'>> = {
  'image/webp': 'webp',
  'image/png': 'png',
  'image/avif': 'avif',
};

/**
 * Bytes read of an object: what `isAnimated` needs to answer as it answers an upload. A WebP says
 * it at byte 20 (VP8X flags) and an AVIF in its `ftyp` box (at most a few hundred bytes); a PNG's
 * `acTL` comes before its image data but may follow other chunks, so a PNG gets the upload's whole
 * first read.
 */
const HEAD_BYTES = { webp: 4096, avif: 4096, png: SNIFF_FIRST_BYTES } as const;

/**
 * Records animation on rows from before the column (migration 006 left them null): reads the head
 * of each live WebP, PNG and AVIF row that does not say, with one ranged GET, and records what
 * `isAnimated` finds there, as an upload would have. Run by the placeholder backfill job
 * (`Placeholders.backfill`: on a worker at its start and every PLACEHOLDER_BACKFILL_INTERVAL_SECONDS);
 * once every row is done its statement finds nothing on a partial index that is empty. Until a row
 * is done the catalog takes it for a still, and the renderer (`local`, `s3`) still serves an
 * animated original whole. See docs/architecture.md, "Variants".
 */
export class AnimationBackfill {
  private readonly slots: Slots;
  private readonly gate: WorkListGate;
  /** A progress line at most every 10 s: a batch is 50 rows, a backfill of 100,000 rows 2,000 of them. */
  private readonly progress = new LogThrottle(10_000);
  private closed = false;
  /** Stops a build of the work list's index in progress (shutdown). */
  private readonly stop = new AbortController();
  /**
   * Where the last run stopped early (its budget spent, a whole batch failed, closed): the next
   * run goes on from there and starts over from the oldest row only once a run reached the end.
   * Rows that fail every time (archived objects answering 403, say: the oldest rows are the ones
   * a lifecycle rule archives) would otherwise fill the first batch of every run, and the rows
   * after them would never be looked at.
   */
  private resumeAfter: Cursor | undefined;

  constructor(
    private readonly d: AnimationBackfillDeps,
    private readonly o: AnimationBackfillOptions,
  ) {
    this.slots = new Slots(o.concurrency ?? 8);
    this.gate = new WorkListGate({
      job: 'animation backfill',
      now: () => d.clock.now(),
      logger: d.logger,
      retryMs: o.buildRetryMs,
    });
  }

  /** A run in progress stops after its current batch. */
  close(): void {
    this.closed = true;
    this.stop.abort();
  }

  /**
   * One run: the rows not known yet, oldest first from where the last run stopped early (or from
   * the oldest), each visited once, a bounded number at once; progress logged per batch. It stops
   * early when its budget is spent or a whole batch failed (storage or the database is down: the
   * next run tries again, from there). `complete` says the run started at the oldest row and
   * reached the end: every row not known was looked at.
   */
  async run(): Promise<AnimationBackfillResult> {
    const { images, logger } = this.d;
    const batchSize = this.o.batchSize ?? 100;
    const total: AnimationBackfillResult = { visited: 0, animated: 0, still: 0, failed: 0, complete: false };
    // Its index first (built by the first run, concurrently: db/work-list-indexes.ts). Without
    // it, each statement below would scan the whole table.
    if (!(await this.gate.open((o) => images.prepareAnimationWorkList(o), this.stop.signal))) return total;
    // The budget is the walk's: a first run may have spent minutes building the index.
    const deadline = Date.now() + (this.o.runBudgetMs ?? 60_000);
    const fromOldest = this.resumeAfter === undefined;
    let after = this.resumeAfter;
    let reachedEnd = false;
    for (;;) {
      const rows = await images.animationUnknown(after, batchSize);
      if (rows.length === 0) {
        reachedEnd = true;
        break;
      }
      const last = rows.at(-1)!;
      after = { createdAt: last.createdAt, id: last.id };
      const recorded = new Set<string>();
      const results = await Promise.all(rows.map((row) => this.slots.run(() => this.check(row, recorded))));
      for (const r of results) {
        total.visited++;
        total[r]++;
        this.d.metrics.animationChecked.inc({ result: r });
      }
      await announceAnimated(
        this.d,
        rows.filter((r) => recorded.has(r.id)).map((r) => r.id),
      );
      this.progress.run('progress', () => logger.info({ ...total }, 'animation backfill progress'));
      if (rows.length < batchSize) {
        reachedEnd = true;
        break;
      }
      if (results.every((r) => r === 'failed') || Date.now() > deadline || this.closed) break;
    }
    this.resumeAfter = reachedEnd ? undefined : after;
    total.complete = reachedEnd && fromOldest;
    if (total.visited > 0) logger.info({ ...total }, 'animation backfill run ended');
    return total;
  }

  /**
   * Reads one row's head and records what it shows. Never throws. The id of a row this changed
   * to animated is added to `recorded` (for the caller to announce).
   */
  async check(row: ImageRow, recorded?: Set<string>): Promise<AnimationCheckResult> {
    const { images, logger } = this.d;
    const format = FORMAT_OF[row.contentType];
    let animated = false;
    try {
      if (format && row.byteSize > 0) animated = isAnimated(format, await this.head(row, HEAD_BYTES[format]));
    } catch (err) {
      if (!(err instanceof StorageError && err.kind === 'not_found')) {
        logger.warn({ imageId: row.id, err: (err as Error).message }, 'animation not checked; retried later');
        return 'failed';
      }
      // A missing object has no variant to make: recorded as a still, so it is not read again
      // (the placeholder backfill marks it undecodable the same way).
      logger.warn({ imageId: row.id, key: row.objectKey }, 'animation check: the object is missing');
    }
    try {
      // False when the row changed meanwhile (deleted, or recorded by another node): then it is
      // not this run's to announce.
      if ((await images.recordAnimation(row.id, animated)) && animated) recorded?.add(row.id);
    } catch (err) {
      logger.warn({ imageId: row.id, err: (err as Error).message }, 'animation not recorded; retried later');
      return 'failed';
    }
    return animated ? 'animated' : 'still';
  }

  /**
   * The object's first `n` bytes (fewer when it is shorter), one ranged GET bounded by the
   * timeout, its body included. A store that ignores the range sends the object from its first
   * byte: the read stops after `n`.
   */
  private async head(row: ImageRow, n: number): Promise<Buffer> {
    const want = Math.min(n, row.byteSize);
    const signal = AbortSignal.timeout(this.o.timeoutSeconds * 1000);
    const storage = this.d.storageFor ? this.d.storageFor(row) : this.d.storage;
    const obj = await storage.get(row.objectKey, { range: { start: 0, end: want - 1 }, signal });
    const stalled = () => obj.body.destroy(new Error(`no head within ${this.o.timeoutSeconds} s`));
    signal.addEventListener('abort', stalled, { once: true });
    const chunks: Buffer[] = [];
    let got = 0;
    try {
      for await (const chunk of obj.body as AsyncIterable<Buffer>) {
        chunks.push(chunk);
        got += chunk.length;
        if (got >= want) break;
      }
    } finally {
      signal.removeEventListener('abort', stalled);
      obj.body.destroy();
    }
    return Buffer.concat(chunks, got).subarray(0, want);
  }
}

/**
 * Announces rows just recorded as animated (one message for what a caller recorded together):
 * the `preset` subscriptions holding them move to the original's URL (urls/live-urls.ts). Best
 * effort: the rows are recorded whatever happens here, a subscription that misses it keeps the
 * variant's URL until its client reconnects (as after any lost event: delivery is at most once),
 * and the publish goes on the command connection, whose commands fail within its timeout when
 * Redis is away. Used by this backfill and by the s3 variants job.
 */
export async function announceAnimated(
  d: { events: Pick<EventBus, 'publishAnimated'>; logger: Pick<Logger, 'warn'> },
  imageIds: readonly string[],
): Promise<void> {
  if (imageIds.length === 0) return;
  try {
    await d.events.publishAnimated(imageIds);
  } catch (err) {
    d.logger.warn(
      { images: imageIds.length, err: (err as Error).message },
      'could not announce rows recorded as animated; their preset subscriptions catch up on reconnect',
    );
  }
}
