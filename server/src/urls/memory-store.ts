import type { Clock } from '../clock.js';
import { BoundedMap } from '../lib/bounded-map.js';
import type { UrlSignature } from '../storage/storage.js';
import { imageIdOf } from '../storage/variant.js';
import type { AccessDelta, ClaimResult, StoreEntry, UrlStatusRecord, UrlStore } from './store.js';

interface Slot {
  sig: UrlSignature;
  expiresAtMs: number;
}

interface Counters {
  accessCount: number;
  refreshCount: number;
  lastAccessAt: number | null;
}

/** The embedded mode's URL cache: a bounded map (oldest entries go first) with per-entry TTL. */
export class MemoryUrlStore implements UrlStore {
  readonly kind = 'memory' as const;
  /** Insertion order is write order (a write deletes first): the least recently written go first. */
  private readonly slots: BoundedMap<string, Slot>;
  private readonly counters = new Map<string, Counters>();
  /** id -> when its refresh is due (epoch ms). */
  private readonly schedule = new Map<string, number>();

  constructor(
    private readonly clock: Clock,
    maxEntries: number,
  ) {
    this.slots = new BoundedMap(maxEntries, (id) => {
      this.counters.delete(id);
      this.schedule.delete(id);
    });
  }

  async read(ids: readonly string[]): Promise<(UrlSignature | null)[]> {
    const now = this.clock.now();
    return ids.map((id) => {
      const slot = this.slots.get(id);
      if (!slot) return null;
      if (slot.expiresAtMs <= now) {
        this.slots.delete(id);
        return null;
      }
      return slot.sig;
    });
  }

  async write(entries: readonly StoreEntry[], reason: 'miss' | 'refresh'): Promise<void> {
    const now = this.clock.now();
    for (const e of entries) {
      this.slots.delete(e.id);
      this.slots.set(e.id, { sig: e.sig, expiresAtMs: now + e.ttlMs });
      this.schedule.set(e.id, e.refreshAt);
      if (reason === 'refresh') this.counter(e.id).refreshCount++;
    }
  }

  async purge(ids: readonly string[]): Promise<void> {
    for (const id of ids) {
      this.slots.delete(id);
      this.counters.delete(id);
      this.schedule.delete(id);
    }
  }

  async forgetImages(imageIds: readonly string[]): Promise<number> {
    const images = new Set(imageIds);
    const gone = new Set<string>();
    for (const map of [this.slots, this.counters, this.schedule])
      for (const id of map.keys()) if (images.has(imageIdOf(id))) gone.add(id);
    await this.purge([...gone]);
    return gone.size;
  }

  async claimDue(now: number, limit: number, leaseMs: number, liveSince: number): Promise<ClaimResult> {
    const due: { id: string; hot: number }[] = [];
    let dropped = 0;
    for (const [id, at] of this.schedule) {
      if (at > now) continue;
      const c = this.counters.get(id);
      if (!c?.lastAccessAt || c.lastAccessAt < liveSince) {
        this.schedule.delete(id);
        // As the Redis store, whose access counts are the hot and live sets it drops the id from.
        if (c) {
          c.accessCount = 0;
          c.lastAccessAt = null;
        }
        dropped++;
        continue;
      }
      due.push({ id, hot: c.refreshCount === 0 ? Number.MAX_SAFE_INTEGER : c.accessCount });
    }
    due.sort((a, b) => b.hot - a.hot);
    const claimed = due.slice(0, limit).map((d) => d.id);
    for (const id of claimed) this.schedule.set(id, now + leaseMs);
    return { claimed, dropped };
  }

  async unschedule(ids: readonly string[]): Promise<void> {
    for (const id of ids) this.schedule.delete(id);
  }

  async reschedule(entries: readonly { id: string; refreshAt: number }[]): Promise<void> {
    for (const e of entries) if (this.schedule.has(e.id)) this.schedule.set(e.id, e.refreshAt);
  }

  async scheduleInfo(now: number): Promise<{ backlog: number; oldestDueAt: number | null }> {
    let backlog = 0;
    let oldest: number | null = null;
    for (const at of this.schedule.values()) {
      if (at > now) continue;
      backlog++;
      if (oldest === null || at < oldest) oldest = at;
    }
    return { backlog, oldestDueAt: oldest };
  }

  async recordAccess(deltas: ReadonlyMap<string, AccessDelta>): Promise<void> {
    for (const [id, d] of deltas) {
      const c = this.counter(id);
      c.accessCount += d.count;
      c.lastAccessAt = Math.max(c.lastAccessAt ?? 0, d.lastAt);
    }
  }

  async status(ids: readonly string[]): Promise<UrlStatusRecord[]> {
    const now = this.clock.now();
    return ids.map((id) => {
      const slot = this.slots.get(id);
      const live = slot && slot.expiresAtMs > now ? slot : undefined;
      const c = this.counters.get(id);
      return {
        sig: live?.sig ?? null,
        ttlMs: live ? live.expiresAtMs - now : null,
        accessCount: c?.accessCount ?? 0,
        refreshCount: c?.refreshCount ?? 0,
        lastAccessAt: c?.lastAccessAt ?? null,
      };
    });
  }

  async ping(): Promise<void> {}

  async close(): Promise<void> {
    this.slots.clear();
  }

  private counter(id: string): Counters {
    let c = this.counters.get(id);
    if (!c) {
      c = { accessCount: 0, refreshCount: 0, lastAccessAt: null };
      this.counters.set(id, c);
    }
    return c;
  }
}
