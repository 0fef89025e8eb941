import type { Clock } from '../clock.js';
import type { AnimationRecords, Cursor, ImagesRepo } from '../db/images-repo.js';
import type { ImageRow } from '../db/types.js';
import type { EventBus } from '../events/event-bus.js';
import { LogThrottle } from '../lib/log-throttle.js';
import { Slots } from '../lib/slots.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import { type Storage, StorageError } from '../storage/storage.js';
import { AnimationBackfill } from './animation-backfill.js';
import { thumbHashOf, UndecodableImage } from './thumbhash.js';

/**
 * What became of one image: `computed` (placeholder stored), `undecodable` (the object is corrupt,
 * missing, over the limits, or SVG: marked with '' and never tried again) or `failed` (storage or the
 * database failed: the row stays without a placeholder and the next backfill tries again).
 */
export type PlaceholderResult = 'computed' | 'undecodable' | 'failed';

/** The mark of an image whose object could not be decoded (docs/architecture.md, "Data"). */
export const UNDECODABLE_PLACEHOLDER = '';

export interface PlaceholderDeps {
  storage: Pick<Storage, 'get'>;
  /**
   * Several regions: the bucket known to hold a row's object (its home region's until this
   * region's has it), so another region's backfill never marks a not-yet-replicated upload as
   * missing. Absent: `storage`.
   */
  storageFor?: (row: ImageRow) => Pick<Storage, 'get'>;
  images: Pick<ImagesRepo, 'missingPlaceholders' | 'setPlaceholder'> &
    Pick<AnimationRecords, 'prepareAnimationWorkList' | 'animationUnknown' | 'recordAnimation'>;
  /** Where the animation backfill announces the rows it records as animated. */
  events: Pick<EventBus, 'publishAnimated'>;
  metrics: Pick<Metrics, 'placeholdersComputed' | 'animationChecked'>;
  logger: Logger;
  clock: Clock;
}

export interface PlaceholderOptions {
  /** Images decoded at once on this node (after-upload work and the backfill together). */
  concurrency: number;
  /** Objects larger than this are not read (UPLOAD_MAX_BYTES: no upload is larger). */
  maxBytes: number;
  /** Decoded pixels at most (UPLOAD_MAX_PIXELS). */
  maxPixels: number;
  /** Bound of one image: reading the object, and separately the decode. */
  timeoutSeconds: number;
  /** Rows one backfill statement reads (default 50). */
  batchSize?: number;
  /** A backfill run stops after this long and the next one goes on (default 60 s). */
  runBudgetMs?: number;
  /**
   * The node's budget of sharp work, shared with the variant renderer (Config.decodeBudget): a
   * decode holds one of it, the object's read does not.
   */
  decodes?: Slots;
  /** Images waiting for their after-upload turn at most; more are left to the backfill (default 256). */
  maxQueued?: number;
}

export interface BackfillResult {
  visited: number;
  computed: number;
  undecodable: number;
  failed: number;
  /** True when the run saw every row without a placeholder (the next run starts over). */
  complete: boolean;
}

/**
 * ThumbHash placeholders, computed from the stored object (never from the upload's own bytes, so
 * an upload is not held twice in memory while its request still holds it): right after each
 * upload on the node that took it, and by a backfill job for rows without one. Both share one
 * bound of concurrent decodes. Nothing here throws: every failure is a result and a log line.
 */
export class Placeholders {
  private readonly slots: Slots;
  /** A progress line at most every 10 s: a batch is 50 rows, a backfill of 100,000 rows 2,000 of them. */
  private readonly progress = new LogThrottle(10_000);
  private readonly queued = new Set<string>();
  private readonly inFlight = new Set<Promise<unknown>>();
  private closed = false;
  /**
   * Animation on the rows from before the column (images/animation-backfill.ts): run by this
   * job's backfill, first, since it reads only heads, on every driver. Public for tests and tools.
   */
  readonly animation: AnimationBackfill;

  constructor(
    private readonly d: PlaceholderDeps,
    private readonly o: PlaceholderOptions,
  ) {
    this.slots = new Slots(o.concurrency);
    this.animation = new AnimationBackfill(
      {
        storage: d.storage,
        storageFor: d.storageFor,
        images: d.images,
        events: d.events,
        metrics: d.metrics,
        logger: d.logger,
        clock: d.clock,
      },
      {
        timeoutSeconds: o.timeoutSeconds,
        ...(o.runBudgetMs !== undefined ? { runBudgetMs: o.runBudgetMs } : {}),
      },
    );
  }

  /**
   * Computes the placeholder of a freshly stored image soon, without holding up its upload. When
   * too many wait, it is left to the backfill.
   */
  enqueue(row: ImageRow): void {
    if (row.placeholder !== null || this.queued.has(row.id)) return;
    if (this.queued.size >= (this.o.maxQueued ?? 256)) {
      this.d.logger.debug({ imageId: row.id }, 'placeholder queue full; the backfill computes it');
      return;
    }
    this.queued.add(row.id);
    // Once closing, what has not started is left to the next backfill (on any node).
    const run = this.slots
      .run(async () => (this.closed ? undefined : this.compute(row)))
      .finally(() => {
        this.queued.delete(row.id);
        this.inFlight.delete(run);
      });
    this.inFlight.add(run);
  }

  /** Resolves when every after-upload computation queued so far has ended (tests). */
  async idle(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
  }

  /**
   * Shutdown: the images being decoded finish (each bounded by the timeouts), the ones waiting
   * are dropped (their rows keep no placeholder, so a backfill picks them up), and a backfill
   * run stops after its current batch.
   */
  async close(): Promise<void> {
    this.closed = true;
    this.animation.close();
    await this.idle();
  }

  /** Computes and stores one image's placeholder. */
  async compute(row: ImageRow): Promise<PlaceholderResult> {
    const { images, metrics, logger } = this.d;
    let result: PlaceholderResult;
    let value: string;
    try {
      // Client SVG is not rasterised on the server: librsvg would parse markup an attacker wrote,
      // for a vector image that loads fast anyway.
      if (row.contentType === 'image/svg+xml') throw new UndecodableImage('SVG gets no placeholder');
      const bytes = await this.read(row);
      const decode = () =>
        thumbHashOf(bytes, { maxPixels: this.o.maxPixels, timeoutSeconds: this.o.timeoutSeconds });
      value = await (this.o.decodes ? this.o.decodes.run(decode) : decode());
      result = 'computed';
    } catch (err) {
      if (!(err instanceof UndecodableImage)) {
        logger.warn(
          { imageId: row.id, err: (err as Error).message },
          'placeholder not computed; retried later',
        );
        metrics.placeholdersComputed.inc({ result: 'failed' });
        return 'failed';
      }
      logger.warn({ imageId: row.id, key: row.objectKey, err: err.message }, 'image has no placeholder');
      value = UNDECODABLE_PLACEHOLDER;
      result = 'undecodable';
    }
    try {
      await images.setPlaceholder(row.id, value);
    } catch (err) {
      logger.warn({ imageId: row.id, err: (err as Error).message }, 'placeholder not stored; retried later');
      result = 'failed';
    }
    metrics.placeholdersComputed.inc({ result });
    return result;
  }

  /**
   * One backfill run: first the animation of rows that do not record it (`animation`, its own
   * result logged; a failure of it never stops the placeholders), then the live rows without a
   * placeholder, oldest first, each visited once, a
   * bounded number decoded at once; progress logged per batch. It stops early when its time
   * budget is spent or when a whole batch failed (storage or the database is down: the next run
   * tries again rather than walking every row into the same failure).
   */
  async backfill(): Promise<BackfillResult> {
    const { images, logger } = this.d;
    await this.animation
      .run()
      .catch((err: Error) => logger.warn({ err: err.message }, 'animation backfill failed; retried later'));
    const batchSize = this.o.batchSize ?? 50;
    const deadline = Date.now() + (this.o.runBudgetMs ?? 60_000);
    const total: BackfillResult = { visited: 0, computed: 0, undecodable: 0, failed: 0, complete: false };
    let after: Cursor | undefined;
    for (;;) {
      const rows = await images.missingPlaceholders(after, batchSize);
      if (rows.length === 0) {
        total.complete = true;
        break;
      }
      const last = rows.at(-1)!;
      after = { createdAt: last.createdAt, id: last.id };
      const results = await Promise.all(
        rows.map((row) =>
          this.queued.has(row.id)
            ? undefined
            : this.slots.run(async () => (this.closed ? undefined : this.compute(row))),
        ),
      );
      for (const r of results) {
        if (!r) continue;
        total.visited++;
        total[r]++;
      }
      this.progress.run('progress', () => logger.info({ ...total }, 'placeholder backfill progress'));
      if (rows.length < batchSize) {
        total.complete = true;
        break;
      }
      if (results.every((r) => r === 'failed') || Date.now() > deadline || this.closed) break;
    }
    if (total.visited > 0) logger.info({ ...total }, 'placeholder backfill run ended');
    return total;
  }

  /** The object's bytes in one buffer of its size (bounded by maxBytes and the timeout). */
  private async read(row: ImageRow): Promise<Buffer> {
    const signal = AbortSignal.timeout(this.o.timeoutSeconds * 1000);
    let obj: Awaited<ReturnType<Storage['get']>>;
    try {
      const storage = this.d.storageFor ? this.d.storageFor(row) : this.d.storage;
      obj = await storage.get(row.objectKey, { signal });
    } catch (err) {
      if (err instanceof StorageError && err.kind === 'not_found') {
        throw new UndecodableImage('the object is missing', { cause: err });
      }
      throw err;
    }
    if (obj.size > this.o.maxBytes) {
      obj.body.destroy();
      throw new UndecodableImage(`the object is ${obj.size} bytes, over ${this.o.maxBytes}`);
    }
    const out = Buffer.allocUnsafe(obj.size);
    let at = 0;
    // The deadline covers the body too: a body that stalls after its headers is cut off.
    const stalled = () => obj.body.destroy(new Error(`no object within ${this.o.timeoutSeconds} s`));
    signal.addEventListener('abort', stalled, { once: true });
    try {
      for await (const chunk of obj.body as AsyncIterable<Buffer>) {
        if (at + chunk.length > out.length) throw new UndecodableImage('the object is longer than its size');
        chunk.copy(out, at);
        at += chunk.length;
      }
    } finally {
      signal.removeEventListener('abort', stalled);
      obj.body.destroy();
    }
    if (at !== out.length) throw new Error(`the object ended after ${at} of ${out.length} bytes`);
    return out;
  }
}
