import type { UrlSignature } from '../storage/storage.js';

/** A signed URL to keep, with the moment its refresh falls due. */
export interface StoreEntry {
  id: string;
  sig: UrlSignature;
  /** How long the cache may hand it out (ms); ends before the URL does. */
  ttlMs: number;
  /** When the refresh schedule should re-sign it (epoch ms). */
  refreshAt: number;
}

/** What the cache knows about one image's URL, for `Image.urlStatus`. */
export interface UrlStatusRecord {
  sig: UrlSignature | null;
  /** Remaining cache lifetime, ms (null when not cached). */
  ttlMs: number | null;
  accessCount: number;
  refreshCount: number;
  lastAccessAt: number | null;
}

export interface AccessDelta {
  count: number;
  lastAt: number;
}

/**
 * The URL cache of the hot path: signed URLs kept between requests. Each method is at most one
 * round trip. `write` also schedules each entry's refresh (in the same round trip: a cold page
 * costs one write-back, not two).
 */
export interface UrlCache {
  readonly kind: 'redis' | 'memory';
  /** Cached signatures in the order of ids (null for a miss). One round trip. */
  read(ids: readonly string[]): Promise<(UrlSignature | null)[]>;
  /** Keeps the entries and schedules their refresh. One round trip. */
  write(entries: readonly StoreEntry[], reason: 'miss' | 'refresh'): Promise<void>;
  /** Forgets ids entirely: cache, schedule and counters (deleted images). */
  purge(ids: readonly string[]): Promise<void>;
  /**
   * Forgets every url id of these images (`<id>` and each `<id>~<variant>`, whichever variants were
   * asked for) from the schedule and the counters, walking all of them: for an erasure
   * (`signet erase-owner`), after `purge` has taken what the rows could name. A view counted just
   * before a delete is flushed after the delete's purge and puts its url id back in the counters;
   * the variants' ids cannot be named once the row's size is gone. Returns how many it removed.
   * Many round trips: not for the hot path.
   */
  forgetImages(imageIds: readonly string[]): Promise<number>;
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** The refresh-ahead schedule: which images fall due when, claimed in bulk under a lease. */
export interface RefreshSchedule {
  /**
   * Claims up to `limit` due refreshes (score <= now, the claimer's clock) atomically: each
   * claimed id is pushed `leaseMs` past the later of `now` and the store's own clock (Redis
   * TIME: a claimer whose clock is behind still leases for real), so it comes due again if the
   * claimer dies before re-signing it
   * (a successful refresh reschedules it properly). Ids not accessed since `liveSince` drop out
   * of the schedule instead. Hot ids (most accessed, or never refreshed yet) go first.
   */
  claimDue(now: number, limit: number, leaseMs: number, liveSince: number): Promise<ClaimResult>;
  /** Takes ids out of the refresh schedule (deleted images). */
  unschedule(ids: readonly string[]): Promise<void>;
  /**
   * Moves ids still in the schedule to new due times (a claimed id whose cached URL turned out
   * to be this step's already: due when that URL's step ends, not when its lease does). An id
   * no longer in the schedule (purged meanwhile) stays out.
   */
  reschedule(entries: readonly { id: string; refreshAt: number }[]): Promise<void>;
  /** Refreshes due at `now` and how late the oldest one is. */
  scheduleInfo(now: number): Promise<{ backlog: number; oldestDueAt: number | null }>;
}

/**
 * A write that was sent and not answered in time: it may have been applied. Retrying it could
 * apply it twice, so writes that add (access counts) are not retried after it.
 */
export class UnknownOutcomeError extends Error {
  constructor(cause: Error) {
    super(`${cause.message} (the write may have been applied)`, { cause });
    this.name = 'UnknownOutcomeError';
  }
}

/** Per-image access counters, written in bulk off the hot path, read for `Image.urlStatus`. */
export interface AccessCounters {
  /**
   * Adds access counts gathered in process (flushed periodically, never per request). Rejects
   * with `UnknownOutcomeError` when the counts may have been added all the same.
   */
  recordAccess(deltas: ReadonlyMap<string, AccessDelta>): Promise<void>;
  status(ids: readonly string[]): Promise<UrlStatusRecord[]>;
}

/** Redis in production, a bounded map in the embedded mode: one implementation of all three. */
export type UrlStore = UrlCache & RefreshSchedule & AccessCounters;

export interface ClaimResult {
  claimed: string[];
  /** Ids that fell out of the schedule because nobody looked at them recently. */
  dropped: number;
}

/**
 * The cache's text form of a signature: `start.end.sig`, the window in base 36 (e.g.
 * `t5x1c0.t5x4k0.<sig>`); a signature for another region's bucket is prefixed `~region.` (region
 * names are `[a-z0-9-]`, and a base-36 start never begins with `~`), and the whole is prefixed
 * `!by.` with its signer's fingerprint (`Storage.signedBy`: base64url, no `.`). A node of a
 * version without the signer's mark reads a marked value as no value (its start is not base 36):
 * during a rolling upgrade each version reads the other's entries as misses, never as a URL.
 */
export function encodeSignature(s: UrlSignature): string {
  const body = `${s.start.toString(36)}.${s.end.toString(36)}.${s.sig}`;
  const placed = s.region === undefined ? body : `~${s.region}.${body}`;
  return s.by === undefined ? placed : `!${s.by}.${placed}`;
}

export function decodeSignature(v: string | null | undefined): UrlSignature | null {
  if (!v) return null;
  let by: string | undefined;
  let region: string | undefined;
  let from = 0;
  if (v[0] === '!') {
    const b = v.indexOf('.');
    if (b <= 1) return null;
    by = v.slice(1, b);
    from = b + 1;
  }
  if (v[from] === '~') {
    const r = v.indexOf('.', from);
    if (r <= from + 1) return null;
    region = v.slice(from + 1, r);
    from = r + 1;
  }
  const a = v.indexOf('.', from);
  const b = v.indexOf('.', a + 1);
  if (a <= from || b <= a) return null;
  const start = Number.parseInt(v.slice(from, a), 36);
  const end = Number.parseInt(v.slice(a + 1, b), 36);
  const sig = v.slice(b + 1);
  if (!Number.isFinite(start) || !Number.isFinite(end) || sig === '') return null;
  // One shape for every signature read (the signer builds the same: urls/signer.ts).
  return { start, end, sig, by, region };
}
