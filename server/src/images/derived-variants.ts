import type { AnimationRecords, Cursor, ImagesRepo } from '../db/images-repo.js';
import type { ImageRow } from '../db/types.js';
import type { EventBus } from '../events/event-bus.js';
import { LogThrottle } from '../lib/log-throttle.js';
import { Slots } from '../lib/slots.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import { derivedKeyOf } from '../storage/derived-variants.js';
import { VariantRenderError, type VariantRenderer } from '../storage/render-variant.js';
import { type Storage, StorageError } from '../storage/storage.js';
import { urlIdOf, type Variant } from '../storage/variant.js';
import type { UrlService } from '../urls/url-service.js';
import { announceAnimated } from './animation-backfill.js';
import type { VariantCatalog } from './variants.js';

/**
 * What became of one image: `made` (every preset's object exists), `unrenderable` (the original is
 * corrupt, missing or over the limits: its presets stay the original's, never tried again),
 * `failed` (storage, the database or the node's load: the next backfill tries again), `gone` (the
 * image was deleted meanwhile; what was written for it was removed).
 */
export type DerivedVariantsResult = 'made' | 'unrenderable' | 'failed' | 'gone';

export interface DerivedVariantsDeps {
  storage: Pick<Storage, 'get' | 'put' | 'head' | 'delete'>;
  images: Pick<
    ImagesRepo,
    'findLive' | 'missingVariants' | 'addVariantReady' | 'setVariantsOf' | 'resetVariantsOf'
  > &
    Pick<AnimationRecords, 'recordAnimation'>;
  catalog: Pick<VariantCatalog, 'presetVariants' | 'presetsTag'>;
  /** The shared bounded renderer (storage/render-variant.ts). */
  renderer: VariantRenderer;
  /** Drops a variant's cached URL once its object exists, so the next page signs that object. */
  urls: Pick<UrlService, 'purge'>;
  /**
   * Where a row this job records as animated is announced: the `preset` subscriptions holding it
   * move to the original's URL (urls/live-urls.ts).
   */
  events: Pick<EventBus, 'publishAnimated'>;
  metrics: Pick<Metrics, 'derivedVariantsMade'>;
  logger: Logger;
}

export interface DerivedVariantsOptions {
  /** Images worked on at once on this node (after-upload work and the backfill together). */
  concurrency: number;
  /** Originals larger than this are not read (UPLOAD_MAX_BYTES: no upload is larger). */
  maxBytes: number;
  /** Bound of reading one original. */
  timeoutSeconds: number;
  /** Rows one backfill statement reads (default 50). */
  batchSize?: number;
  /** A backfill run stops after this long and the next one goes on (default 60 s). */
  runBudgetMs?: number;
  /**
   * Several regions: SIGNET_REGION. Only rows homed here are made, into this region's bucket
   * (the home bucket, the one other regions sign derived objects for: urls/region-choice.ts);
   * rows of another home or none are left alone (docs/architecture.md, "Several regions and
   * derived variants").
   */
  homeRegion?: string | undefined;
}

export interface VariantsBackfillResult {
  visited: number;
  made: number;
  unrenderable: number;
  failed: number;
  gone: number;
  /** True when the run saw every row whose variants were not made. */
  complete: boolean;
}

/** The failures of a render that will not change on a retry (the original's fault). */
const PERMANENT = new Set(['unreadable', 'unsupported', 'too_large']);

/**
 * Variants as derived objects (the `s3` driver; docs/architecture.md, "Variants on s3"): a job
 * queued by each upload renders every preset's variant (1× and 2×) with the shared renderer, puts
 * it under the reserved prefix and notes it in the row (the signer reads that from the page row:
 * no I/O); a backfill job does the same for rows that have none (imported, older, or whose job was
 * lost). Until then a preset's URL is the original's. The storage's delete removes an image's
 * derived objects with it. Only reading the row by id may throw (the job is retried); every other
 * failure is a result and a log line.
 */
export class DerivedVariants {
  private readonly slots: Slots;
  /** A progress line at most every 10 s: a batch is 50 rows, a backfill of 100,000 rows 2,000 of them. */
  private readonly progress = new LogThrottle(10_000);
  /** Images being made on this node (an after-upload job and the backfill never both make one). */
  private readonly busy = new Set<string>();
  private readonly inFlight = new Set<Promise<unknown>>();
  private closed = false;
  private resetDone = false;
  /** The preset set the objects are made for: a change of IMAGE_PRESETS makes them again. */
  readonly tag: string;

  constructor(
    private readonly d: DerivedVariantsDeps,
    private readonly o: DerivedVariantsOptions,
  ) {
    this.tag = d.catalog.presetsTag();
    this.slots = new Slots(o.concurrency);
  }

  /**
   * The after-upload job (on any worker: jobs/job-engine.ts `enqueueVariants`): makes the image's
   * variants, within this node's bound of images at once. 'none' when the image is gone.
   */
  async makeById(imageId: string): Promise<DerivedVariantsResult | 'none'> {
    if (this.closed || this.busy.has(imageId)) return 'none';
    const [row] = await this.d.images.findLive([imageId]);
    if (!row || !this.homedHere(row)) return 'none';
    return (await this.tracked(row)) ?? 'none';
  }

  /** Resolves when every image being made on this node is done (tests, shutdown). */
  async idle(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
  }

  /**
   * Shutdown: images being made finish (each render bounded), waiting ones are left to the
   * backfill (their rows still have no variants_of), and a backfill run stops after its batch.
   */
  async close(): Promise<void> {
    this.closed = true;
    await this.idle();
  }

  /** Makes the variants of one image that its row does not list as made. */
  async make(row: ImageRow): Promise<DerivedVariantsResult> {
    const { images, logger } = this.d;
    const todo = this.d.catalog.presetVariants(row).filter((v) => !row.variantsReady.includes(v.key));
    let result: DerivedVariantsResult = 'made';
    if (todo.length > 0) {
      let original: Buffer;
      try {
        original = await this.read(row);
      } catch (err) {
        const missing = err instanceof StorageError && err.kind === 'not_found';
        const hopeless = err instanceof VariantRenderError && PERMANENT.has(err.reason);
        result = missing || hopeless ? 'unrenderable' : 'failed';
        return this.end(row, result, err);
      }
      for (const v of todo) {
        const r = await this.makeOne(row, v, original);
        // Recorded as animated: its variants are the original's URL, so none is left to make.
        if (r === 'animated') break;
        if (r !== 'made') {
          result = r;
          if (r !== 'unrenderable') break;
        }
      }
    }
    if (result === 'made' || result === 'unrenderable') {
      try {
        await images.setVariantsOf(row.id, this.tag);
      } catch (err) {
        logger.warn(
          { imageId: row.id, err: (err as Error).message },
          'variants made but not noted; retried later',
        );
        result = 'failed';
      }
    }
    return this.end(row, result);
  }

  private end(row: ImageRow, result: DerivedVariantsResult, err?: unknown): DerivedVariantsResult {
    this.d.metrics.derivedVariantsMade.inc({ result });
    if (result === 'failed' || result === 'unrenderable') {
      this.d.logger.warn(
        { imageId: row.id, key: row.objectKey, result, ...(err ? { err: (err as Error).message } : {}) },
        result === 'failed' ? 'variants not made; retried later' : 'variants cannot be made of this image',
      );
    }
    return result;
  }

  /**
   * Renders, stores and notes one variant; 'animated' when the renderer found the original
   * animated (a row that did not say so: from before the column, not backfilled yet): nothing is
   * stored (it would be a copy of the original) and the row records it, so from its next read the
   * catalog hands out the original's URL for every variant (docs/architecture.md, "Variants").
   */
  private async makeOne(
    row: ImageRow,
    v: Variant,
    original: Buffer,
  ): Promise<DerivedVariantsResult | 'animated'> {
    const { storage, images, renderer, urls, logger } = this.d;
    const key = derivedKeyOf(row.objectKey, v);
    try {
      const out = await renderer.render(async () => original, v);
      if (out.animated) {
        if (await images.recordAnimation(row.id, true)) {
          logger.info({ imageId: row.id, key: row.objectKey }, 'animated original recorded on its row');
          // One image at a time here: a row reaches this job unrecorded only when the animation
          // backfill has not looked at it yet (rare, and once per image).
          await announceAnimated(this.d, [row.id]);
        }
        return 'animated';
      }
      await storage.put(key, out.data, out.contentType);
      // A delete of the image lists its derived objects after deleting the original: an object
      // put before that listing is found by it, one put after it finds the original gone here.
      if (!(await storage.head(row.objectKey)) || !(await images.addVariantReady(row.id, v.key))) {
        await storage.delete(key);
        return 'gone';
      }
    } catch (err) {
      if (err instanceof VariantRenderError && PERMANENT.has(err.reason)) return 'unrenderable';
      logger.debug({ imageId: row.id, variant: v.key, err: (err as Error).message }, 'variant not made');
      return 'failed';
    }
    // The cached URL of this variant is the original's: dropped, the next page signs the object.
    await urls
      .purge([urlIdOf(row.id, v)])
      .catch((err: Error) =>
        logger.warn({ imageId: row.id, err: err.message }, 'could not drop a variant URL'),
      );
    return 'made';
  }

  /**
   * One backfill run: live rows whose variants were never made (for this preset set), oldest
   * first, each visited once, a bounded number at once. It stops early when its budget is spent or
   * a whole batch failed (storage or the database is down: the next run tries again).
   */
  async backfill(): Promise<VariantsBackfillResult> {
    const { images, logger } = this.d;
    const total: VariantsBackfillResult = {
      visited: 0,
      made: 0,
      unrenderable: 0,
      failed: 0,
      gone: 0,
      complete: false,
    };
    if (!this.resetDone) {
      // Once per process: rows made for another IMAGE_PRESETS are made again (the config is read
      // at start, so it cannot change while this process runs).
      const reset = await images.resetVariantsOf(this.tag);
      if (reset > 0) logger.info({ rows: reset }, 'presets changed: variants are made again');
      this.resetDone = true;
    }
    const batchSize = this.o.batchSize ?? 50;
    const deadline = Date.now() + (this.o.runBudgetMs ?? 60_000);
    let after: Cursor | undefined;
    for (;;) {
      const rows = await images.missingVariants(after, batchSize, this.o.homeRegion);
      if (rows.length === 0) {
        total.complete = true;
        break;
      }
      const last = rows.at(-1)!;
      after = { createdAt: last.createdAt, id: last.id };
      const results = await Promise.all(
        rows.map((row) => (this.busy.has(row.id) ? undefined : this.tracked(row))),
      );
      for (const r of results) {
        if (!r) continue;
        total.visited++;
        total[r]++;
      }
      this.progress.run('progress', () => logger.info({ ...total }, 'variants backfill progress'));
      if (rows.length < batchSize) {
        total.complete = true;
        break;
      }
      if (results.every((r) => r === 'failed') || Date.now() > deadline || this.closed) break;
    }
    if (total.visited > 0) logger.info({ ...total }, 'variants backfill run ended');
    return total;
  }

  /** With several regions, whether this region is the row's home (else: always). */
  private homedHere(row: ImageRow): boolean {
    return this.o.homeRegion === undefined || row.homeRegion === this.o.homeRegion;
  }

  /** The original's bytes (bounded by maxBytes and the timeout, the body included). */
  private async read(row: ImageRow): Promise<Buffer> {
    const signal = AbortSignal.timeout(this.o.timeoutSeconds * 1000);
    const obj = await this.d.storage.get(row.objectKey, { signal });
    if (obj.size > this.o.maxBytes) {
      obj.body.destroy();
      throw new VariantRenderError('too_large', `the original is ${obj.size} bytes, over ${this.o.maxBytes}`);
    }
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of obj.body as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > this.o.maxBytes) {
        obj.body.destroy();
        throw new VariantRenderError('too_large', 'the original is longer than its size');
      }
      chunks.push(chunk);
    }
    return Buffer.concat(chunks, size);
  }

  /** One image made within the bound, counted in flight (close waits for it). */
  private tracked(row: ImageRow): Promise<DerivedVariantsResult | undefined> {
    this.busy.add(row.id);
    const run = this.slots
      .run(async () => (this.closed ? undefined : this.make(row)))
      .finally(() => {
        this.busy.delete(row.id);
        this.inFlight.delete(run);
      });
    this.inFlight.add(run);
    return run;
  }
}
