import type { ImagesRepo, LiveKeyRow, ObjectKeyWalk } from '../db/images-repo.js';
import { compareKeys } from '../lib/key-order.js';
import { MAX_LIST_KEYS, type Storage } from '../storage/storage.js';

export interface MissingObjectsDeps {
  /** This region's bucket: listed for what is there, a HEAD for each key the listing lacks. */
  storage: Pick<Storage, 'list' | 'head'>;
  /** On the primary: a replica's past would report rows deleted since, or miss new ones. */
  images: Pick<ObjectKeyWalk, 'liveRowsByKey'> & Pick<ImagesRepo, 'keysWithLiveRows'>;
}

export interface MissingObjectsProgress {
  /** Live rows compared with the bucket so far. */
  rowsChecked: number;
  /** Rows reported: their object is in neither the listing nor a HEAD. */
  missing: number;
  /** Listing calls made (a page each). */
  listCalls: number;
  done: boolean;
}

export interface MissingObjectsResult extends MissingObjectsProgress {
  /** The walk stopped at `limit` with rows left to check: more may be missing. */
  stoppedAtLimit: boolean;
}

export interface MissingObjectsOptions {
  /** Only this owner's rows. */
  ownerId?: string | undefined;
  /** Stop once this many missing rows were reported. */
  limit?: number | undefined;
  /** Live rows per statement (default 1000). */
  rowPageSize?: number;
  /** Keys per listing call (default and bound 1000). */
  listPageSize?: number;
  /** HEADs at a time for the keys a listing lacks (default 8). */
  concurrency?: number;
  /** Each missing row, as soon as it is known, in byte order of its key within a page of rows. */
  onMissing: (row: LiveKeyRow) => void | Promise<void>;
  /** After each page of rows, and once at the end. */
  onProgress?: (p: MissingObjectsProgress) => void;
}

/**
 * A listing marker just before `key`: the key without its last character (a proper prefix sorts
 * before it in any order, and a listing from it reaches `key` after the few keys that extend the
 * prefix with something smaller). Undefined: from the bucket's first key.
 */
function markerBefore(key: string): string | undefined {
  let end = key.length - 1;
  const last = key.charCodeAt(end);
  // A character beyond U+FFFF is two units: cut before both, never leaving half of it.
  if (end > 0 && last >= 0xdc00 && last <= 0xdfff) {
    const high = key.charCodeAt(end - 1);
    if (high >= 0xd800 && high <= 0xdbff) end--;
  }
  return end > 0 ? key.slice(0, end) : undefined;
}

/**
 * One listing page held in memory: the originals it shows, and the span of keys it answers for,
 * (`from`, `to`]: after the marker it was asked with, up to where the next page would start
 * (its end: the bucket's last key when the page is the last).
 */
class ListingWindow {
  private keys: string[] = [];
  private loaded = false;
  private from: string | undefined;
  private to: string | undefined;
  calls = 0;

  constructor(
    private readonly storage: Pick<Storage, 'list'>,
    private readonly pageSize: number,
  ) {}

  /** Whether a listing shows `key`. Lists only when the page held does not answer for it. */
  async shows(key: string): Promise<boolean> {
    if (!this.covers(key)) {
      await this.load(this.markerFor(key));
      // A page cut short before the key: on from where the store says the next page starts.
      while (!this.covers(key)) await this.load(this.to);
    }
    let lo = 0;
    let hi = this.keys.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const c = compareKeys(this.keys[mid]!, key);
      if (c === 0) return true;
      if (c < 0) lo = mid + 1;
      else hi = mid - 1;
    }
    return false;
  }

  private covers(key: string): boolean {
    return (
      this.loaded &&
      (this.from === undefined || compareKeys(key, this.from) > 0) &&
      (this.to === undefined || compareKeys(key, this.to) <= 0)
    );
  }

  /**
   * Where the page for `key` starts: just before it, or where the page held ends when that is
   * closer (the next page of a walk through a dense stretch). Whatever lies between the rows'
   * keys is never listed: over a bucket whose keys are mostly not rows' (another owner's, the
   * derived variants), `--owner` costs about a call per stretch of its keys, not the bucket.
   */
  private markerFor(key: string): string | undefined {
    const before = markerBefore(key);
    const end = this.to;
    if (
      this.loaded &&
      end !== undefined &&
      compareKeys(end, key) < 0 &&
      (before === undefined || compareKeys(end, before) > 0)
    ) {
      return end;
    }
    return before;
  }

  private async load(marker: string | undefined): Promise<void> {
    const page = await this.storage.list('', {
      ...(marker !== undefined ? { marker } : {}),
      maxKeys: this.pageSize,
    });
    this.calls++;
    if (page.nextMarker !== undefined && page.nextMarker === marker) {
      // A page cut short that does not move on: going on from it would loop for ever.
      throw new Error(`the bucket's listing did not move past ${JSON.stringify(marker)}`);
    }
    this.from = marker;
    this.to = page.nextMarker;
    // In byte order, as every driver lists (ListPage; `local` too: lib/key-order.ts): the search
    // above relies on it.
    this.keys = page.objects.map((o) => o.key);
    this.loaded = true;
  }
}

/**
 * Of these rows' keys (those a listing did not show), the ones a HEAD does not find either, in
 * the rows' order; stops starting HEADs once `want` are found. Returns what it found and the rows
 * it did not get to.
 */
async function headAbsent(
  storage: Pick<Storage, 'head'>,
  rows: readonly LiveKeyRow[],
  want: number,
  concurrency: number,
): Promise<{ absent: LiveKeyRow[]; rest: LiveKeyRow[] }> {
  const found: (LiveKeyRow | undefined)[] = new Array(rows.length);
  let next = 0;
  let absent = 0;
  const worker = async () => {
    while (next < rows.length && absent < want) {
      const i = next++;
      const row = rows[i]!;
      if ((await storage.head(row.objectKey)) === null) {
        found[i] = row;
        absent++;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, rows.length) }, worker));
  return { absent: found.filter((r): r is LiveKeyRow => r !== undefined), rest: rows.slice(next) };
}

/**
 * `signet missing-objects` (docs/operations.md, "Backups and restores", a lost object): the live
 * rows whose original is not in this region's bucket, found without deleting or changing
 * anything.
 *
 * A merge join of the rows and the bucket's listing, in bounded memory whatever their size (one
 * page of rows, one listing page, the HEADs of one page): the rows are read a page at a time
 * (`liveRowsByKey`, one statement each, in the order of the unique index on object_key), each
 * page is put in byte order, and each key is looked up in the listing page that answers for it,
 * listed from just before the key when the page held does not (`ListingWindow`). Where the
 * database's collation agrees with byte order, consecutive pages are consecutive stretches of the
 * bucket and the listing is walked once; where it does not (en_US puts `a` before `B`, and
 * non-ASCII elsewhere), a page of rows spans a few stretches, each listed from its start.
 *
 * Only the row's own key in a listing counts: a derived variant (s3, `_signet/variants/<key>/…`)
 * or the orphan sweep's mark is never taken for an original, and no row names one (uploads write
 * under `u/`, `signet import` skips both), so they are passed over like any key without a row.
 *
 * A listing proves an object is there; its absence is only a candidate, confirmed by a HEAD: a
 * listing page read before an upload put its object (the row read after it), or a listing that
 * lags the store's writes, would otherwise report objects that are there. A row
 * still reported is then read again: one deleted through the API meanwhile (its object goes
 * first, its row after) is not reported.
 */
export async function findMissingObjects(
  d: MissingObjectsDeps,
  o: MissingObjectsOptions,
): Promise<MissingObjectsResult> {
  const rowPageSize = o.rowPageSize ?? 1000;
  const listing = new ListingWindow(
    d.storage,
    Math.min(MAX_LIST_KEYS, Math.max(1, o.listPageSize ?? MAX_LIST_KEYS)),
  );
  const concurrency = o.concurrency ?? 8;
  const limit = o.limit ?? Number.POSITIVE_INFINITY;
  let rowsChecked = 0;
  let missing = 0;
  let after: string | undefined;
  const progress = (done: boolean): MissingObjectsProgress => ({
    rowsChecked,
    missing,
    listCalls: listing.calls,
    done,
  });
  for (;;) {
    const rows = await d.images.liveRowsByKey(after, rowPageSize, o.ownerId);
    if (rows.length === 0) break;
    // The keyset goes on in the database's order; the merge works in byte order.
    after = rows.at(-1)!.objectKey;
    const sorted = [...rows].sort((a, b) => compareKeys(a.objectKey, b.objectKey));
    let unlisted: LiveKeyRow[] = [];
    for (const row of sorted) if (!(await listing.shows(row.objectKey))) unlisted.push(row);
    rowsChecked += rows.length;
    const lastPage = rows.length < rowPageSize;
    while (unlisted.length > 0) {
      const { absent, rest } = await headAbsent(d.storage, unlisted, limit - missing, concurrency);
      unlisted = rest;
      if (absent.length === 0) continue;
      const live = await d.images.keysWithLiveRows(absent.map((r) => r.objectKey));
      const reported = absent.filter((r) => live.has(r.objectKey));
      for (let i = 0; i < reported.length; i++) {
        if (missing === limit) {
          o.onProgress?.(progress(true));
          return { ...progress(true), stoppedAtLimit: true };
        }
        await o.onMissing(reported[i]!);
        missing++;
      }
      if (missing === limit && (unlisted.length > 0 || !lastPage)) {
        o.onProgress?.(progress(true));
        return { ...progress(true), stoppedAtLimit: true };
      }
    }
    if (lastPage) break;
    o.onProgress?.(progress(false));
  }
  o.onProgress?.(progress(true));
  return { ...progress(true), stoppedAtLimit: false };
}
