import { randomUUID } from 'node:crypto';
import type { Config } from '../config.js';
import type { ImagesRepo, ImportedImage } from '../db/images-repo.js';
import type { ImageVisibility } from '../db/types.js';
import { AppError } from '../errors/index.js';
import { DERIVED_VARIANT_PREFIX, derivedOriginalOf } from '../storage/derived-variants.js';
import { type ListedObject, MAX_LIST_KEYS, type Storage, StorageError } from '../storage/storage.js';
import { hasDotSegment } from './dot-segments.js';
import { SWEEP_MARK_KEY } from './sweep-guard.js';
import { inspectUpload, isUploadKey, UPLOAD_KEY_PREFIX } from './upload.js';

/**
 * `signet import`: rows for the images already in a bucket, written before Signet existed
 * (README, "Import an existing bucket"). Each object is judged as an upload is — by
 * its first bytes, read with ranged GETs, never by its name or stored type — and gets a row of
 * the given owner. Rows are inserted per listing page with ON CONFLICT DO NOTHING on the unique
 * object key, so a second run adds nothing and a killed run picks up where it stopped.
 * Placeholders are not made here: the backfill job makes them for rows that have none. Whether
 * the image is animated is recorded from the same head.
 */
export interface BucketImportDeps {
  config: Pick<Config, 'uploadAllowSvg' | 'uploadMaxPixels' | 'uploadMaxBytes' | 'regions'>;
  storage: Pick<Storage, 'list' | 'get'>;
  images: Pick<ImagesRepo, 'keysWithRows' | 'insertImported'>;
}

/** What `--visibility` takes: the rows' `visibility` (GraphQL `ImageVisibility`, lower-case). */
export const IMPORT_VISIBILITIES: readonly ImageVisibility[] = ['private', 'public'];

export interface BucketImportOptions {
  ownerId: string;
  /** The imported rows' visibility (default private, as an upload's). */
  visibility?: ImageVisibility;
  prefix?: string;
  /** Read and judge every object, insert nothing. */
  dryRun?: boolean;
  /** Objects read at the same time (default 8). */
  concurrency?: number;
  /** Rows per insert statement (default 100). */
  batchSize?: number;
  /** Keys per listing page (default and bound: 1000). */
  pageSize?: number;
  /** After each page: what has been done so far. */
  onProgress?: (p: ImportProgress) => void;
}

/** Why an object did not get a row. */
export type SkipReason =
  | 'already-imported'
  /**
   * A row names the key, but it was deleted: the image's delete removed the object before it
   * marked the row, so what is there now was put back later (or is a leftover the orphan sweep
   * removes under `u/`). Not imported again, and the deleted row is not revived.
   */
  | 'deleted-row'
  /** A key Signet writes itself: an upload (`isUploadKey`) or a derived variant. */
  | 'signet-object'
  /**
   * Under a prefix Signet reserves (`u/`, `_signet/variants/`) but not of the shape Signet
   * writes there (`u/legacy/avatar.png`): not Signet's, so not imported (and under `u/` the
   * orphan sweep never deletes it); to import it, copy or move it under another prefix.
   */
  | 'reserved-prefix'
  /**
   * A `.` or `..` path segment in the key (hasDotSegment): URL parsers remove it, so no signed
   * URL of the object could ever be loaded.
   */
  | 'unaddressable'
  | 'empty'
  | 'too-large'
  | 'not-an-image'
  | 'bad-header'
  | 'too-many-pixels'
  | 'gone'
  /** Shorter when read than when listed (rewritten meanwhile): the next run judges it anew. */
  | 'changed'
  /**
   * The store refused to read this one object for good (a 4xx other than throttling: encrypted
   * with a customer key, an object-level deny): skipped, not the import's end.
   */
  | 'unreadable';

export interface ImportProgress {
  /** Objects listed so far. */
  seen: number;
  /** Rows inserted (in a dry run: rows that would be). */
  imported: number;
  skipped: Partial<Record<SkipReason, number>>;
  /** Bytes of the objects listed so far. */
  bytesSeen: number;
  /** The first few `reserved-prefix` keys (at most RESERVED_EXAMPLES), to name in the warning. */
  reservedExamples: string[];
  done: boolean;
}

const RESERVED_EXAMPLES = 3;

/**
 * The prefixes Signet writes under: uploads (`u/`) and derived variants (s3). Nothing under them
 * is imported; what has Signet's shape there is Signet's (`isSignetObject`), the rest is an
 * operator's object that only sits under the same prefix (`reserved-prefix`).
 */
export const SIGNET_PREFIXES: readonly string[] = [UPLOAD_KEY_PREFIX, DERIVED_VARIANT_PREFIX];

export function isUnderSignetPrefix(key: string): boolean {
  return SIGNET_PREFIXES.some((p) => key.startsWith(p));
}

/**
 * Keys Signet writes itself: an upload's key exactly as `objectKeyFor` writes it (it has its row
 * or is the orphan sweep's), a derived variant (s3), `_signet/variants/<object key>/<variant
 * key>` with a canonical variant key, which belongs to its original's row, and the orphan sweep's
 * mark (images/sweep-guard.ts).
 */
export function isSignetObject(key: string): boolean {
  return isUploadKey(key) || derivedOriginalOf(key) !== undefined || key === SWEEP_MARK_KEY;
}

export class BucketUnreachableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'BucketUnreachableError';
  }
}

export async function importBucket(
  deps: BucketImportDeps,
  opts: BucketImportOptions,
): Promise<ImportProgress> {
  const { storage, images, config } = deps;
  const prefix = opts.prefix ?? '';
  const concurrency = Math.max(1, opts.concurrency ?? 8);
  const pageSize = Math.min(MAX_LIST_KEYS, Math.max(1, opts.pageSize ?? MAX_LIST_KEYS));
  const visibility = opts.visibility ?? 'private';
  if (!IMPORT_VISIBILITIES.includes(visibility)) {
    throw new TypeError(`visibility must be one of ${IMPORT_VISIBILITIES.join(', ')}, got "${visibility}"`);
  }
  const progress: ImportProgress = {
    seen: 0,
    imported: 0,
    skipped: {},
    bytesSeen: 0,
    reservedExamples: [],
    done: false,
  };
  const batchSize = Math.max(1, opts.batchSize ?? 100);
  const report = () =>
    opts.onProgress?.({
      ...progress,
      skipped: { ...progress.skipped },
      reservedExamples: [...progress.reservedExamples],
    });
  const skip = (reason: SkipReason, n = 1) => {
    progress.skipped[reason] = (progress.skipped[reason] ?? 0) + n;
  };

  let marker: string | undefined;
  let first = true;
  for (;;) {
    let page: Awaited<ReturnType<Storage['list']>>;
    try {
      page = await storage.list(prefix, { ...(marker !== undefined ? { marker } : {}), maxKeys: pageSize });
    } catch (err) {
      // The first listing failing means the bucket is out of reach (or misnamed): say so at once.
      if (first) throw new BucketUnreachableError((err as Error).message, { cause: err });
      throw err;
    }
    first = false;
    progress.seen += page.objects.length;
    for (const o of page.objects) progress.bytesSeen += o.size;

    const candidates: ListedObject[] = [];
    for (const o of page.objects) {
      if (isSignetObject(o.key)) skip('signet-object');
      else if (isUnderSignetPrefix(o.key)) {
        skip('reserved-prefix');
        if (progress.reservedExamples.length < RESERVED_EXAMPLES) progress.reservedExamples.push(o.key);
      } else if (hasDotSegment(o.key)) skip('unaddressable');
      else if (o.size === 0) skip('empty');
      else if (o.size > config.uploadMaxBytes) skip('too-large');
      else candidates.push(o);
    }
    // A resumed run does not read again what an earlier one imported; a key whose row was deleted
    // is not imported again (nor its row revived). One statement per page.
    const known = await images.keysWithRows(candidates.map((o) => o.key));
    const fresh: ListedObject[] = [];
    for (const o of candidates) {
      const state = known.get(o.key);
      if (state === 'live') skip('already-imported');
      else if (state === 'deleted') skip('deleted-row');
      else fresh.push(o);
    }

    // In batches: what a killed run had inserted stays, and the progress line moves.
    for (let at = 0; at < fresh.length; at += batchSize) {
      const rows: ImportedImage[] = [];
      await eachLimited(fresh.slice(at, at + batchSize), concurrency, async (o) => {
        const judged = await judge(deps, o, opts.ownerId, visibility);
        if ('reason' in judged) skip(judged.reason);
        else rows.push(judged.row);
      });
      if (opts.dryRun) {
        progress.imported += rows.length;
      } else if (rows.length > 0) {
        const inserted = await images.insertImported(rows);
        progress.imported += inserted.length;
        // Another run importing the same keys at the same time got there first.
        skip('already-imported', rows.length - inserted.length);
      }
      if (at + batchSize < fresh.length) report();
    }
    marker = page.nextMarker;
    if (marker === undefined) {
      progress.done = true;
      report();
      return progress;
    }
    report();
  }
}

/** Type and size of one object from its head, or why it gets no row. */
async function judge(
  deps: BucketImportDeps,
  o: ListedObject,
  ownerId: string,
  visibility: ImageVisibility,
): Promise<{ row: ImportedImage } | { reason: SkipReason }> {
  const head = new RangedHead(deps.storage, o.key, o.size);
  try {
    // Pixels are checked here rather than by the inspector, to tell that reason apart.
    const image = await inspectUpload(head, {
      uploadAllowSvg: deps.config.uploadAllowSvg,
      uploadMaxPixels: Number.MAX_SAFE_INTEGER,
    });
    if (image.width !== null && image.height !== null) {
      if (image.width * image.height > deps.config.uploadMaxPixels) return { reason: 'too-many-pixels' };
    }
    return {
      row: {
        id: randomUUID(),
        ownerId,
        visibility,
        objectKey: o.key,
        contentType: image.contentType,
        byteSize: o.size,
        width: image.width,
        height: image.height,
        // From the head read for the type (an animated WebP, APNG or AVIF sequence): its variants
        // are the original's URL (docs/architecture.md, "Variants").
        animated: image.animated,
        etag: head.etag ?? null,
        // The gallery lists newest first: an imported image takes its place by when it was stored.
        createdAt: o.lastModified,
        // Several regions: only this region's bucket is known to hold it (replication rules
        // often copy new objects only); other regions sign this bucket's URL until told.
        homeRegion: deps.config.regions?.self ?? null,
      },
    };
  } catch (err) {
    if (err instanceof AppError) {
      return { reason: err.failure === 'UNSUPPORTED_MEDIA_TYPE' ? 'not-an-image' : 'bad-header' };
    }
    if (err instanceof StorageError && err.kind === 'not_found') return { reason: 'gone' };
    // An object rewritten shorter since it was listed (RangedHead): skipped like a gone one, not
    // the import's end.
    if (err instanceof ObjectChangedError) return { reason: 'changed' };
    if (err instanceof StorageError && refusedForGood(err.status)) return { reason: 'unreadable' };
    throw err;
  }
}

/**
 * A store's refusal of one object's read that another try will not change: a 4xx, but not a
 * timeout (408) or throttling (429), which are the store's load, nor a denial of every request
 * (401, 403: the credentials), which stops the run on its first object rather than skip them all.
 */
function refusedForGood(status: number | undefined): boolean {
  return status !== undefined && status >= 400 && status < 500 && ![401, 403, 408, 429].includes(status);
}

/** The object is shorter than when it was listed. */
export class ObjectChangedError extends Error {
  constructor(key: string, size: number, got: number) {
    super(`object "${key}" ended after ${got} bytes; it was listed with ${size}`);
    this.name = 'ObjectChangedError';
  }
}

/**
 * The head of an object as the upload inspector reads it: the first n bytes, fetched with a
 * ranged GET when first asked for and extended by another one when a reader needs more (JPEG's
 * frame header may sit behind a large EXIF block). Only a GIF is read whole, a window per GET
 * (its frames may lie anywhere: docs/architecture.md, "The upload pipeline").
 */
export class RangedHead {
  private bytes = Buffer.alloc(0);
  etag: string | undefined;

  constructor(
    private readonly storage: Pick<Storage, 'get'>,
    private readonly key: string,
    readonly size: number,
  ) {}

  async head(n: number): Promise<Buffer> {
    const want = Math.min(n, this.size);
    if (want > this.bytes.length) {
      const got = await this.fetch(this.bytes.length, want);
      this.bytes = Buffer.concat([this.bytes, got]);
    }
    return this.bytes.subarray(0, want);
  }

  async range(start: number, end: number): Promise<Buffer> {
    return this.fetch(start, Math.min(end, this.size));
  }

  /** Bytes start..end; an object that ends before `end` has changed since it was listed. */
  private async fetch(start: number, end: number): Promise<Buffer> {
    let got: Awaited<ReturnType<Storage['get']>>;
    try {
      got = await this.storage.get(this.key, { range: { start, end: end - 1 } });
    } catch (err) {
      // A range inside the listed size refused as out of range: the object is shorter now.
      if (err instanceof StorageError && err.kind === 'rejected') {
        throw new ObjectChangedError(this.key, this.size, start);
      }
      throw err;
    }
    this.etag ??= got.etag;
    // A store that ignored the range sends the whole object, from its first byte.
    const from = got.range ? start : 0;
    const chunks: Buffer[] = [];
    let total = from;
    for await (const chunk of got.body) {
      chunks.push(chunk as Buffer);
      total += (chunk as Buffer).length;
      if (total >= end) break;
    }
    got.body.destroy();
    if (total < end) throw new ObjectChangedError(this.key, this.size, total);
    return Buffer.concat(chunks).subarray(start - from, end - from);
  }
}

/** Runs fn over items, at most `limit` at a time. */
async function eachLimited<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>) {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}
