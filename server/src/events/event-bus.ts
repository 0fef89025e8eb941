import type { ResolvedUrl } from '../urls/resolved-url.js';

/**
 * A re-signed URL: the one shape from the signer through the bus to the `signedUrlRefreshed`
 * subscription (it is the schema's `SignedUrlEvent`).
 */
export interface SignedUrlEvent {
  imageId: string;
  signedUrl: ResolvedUrl;
}

export type SignedUrlListener = (event: SignedUrlEvent) => void;

/**
 * An image's visibility changed (or it was deleted: `visibility: null`). Every node hears it: its
 * subscriptions drop the image for viewers who may no longer see it, and its proxy forgets the
 * remembered row. See docs/architecture.md, "Who sees what".
 */
export interface AccessChange {
  imageId: string;
  ownerId: string;
  visibility: 'private' | 'public' | null;
}

export type AccessChangeListener = (changes: readonly AccessChange[]) => void;

/**
 * Refresh events across nodes. Each node holds ONE subscription to the shared channel and fans
 * events out to its own listeners by image id. Delivery is at-most-once (Redis pub/sub): a
 * client that reconnects must refetch its URLs.
 */
export interface EventBus {
  readonly kind: 'redis' | 'memory';
  publish(events: readonly SignedUrlEvent[]): Promise<void>;
  /** Listens to events of these ids on this node; returns the unsubscribe function. */
  subscribe(ids: readonly string[], listener: SignedUrlListener): () => void;
  /** Tells every node (this one included) that images' visibility changed. */
  publishAccessChanges(changes: readonly AccessChange[]): Promise<void>;
  /** Listens to visibility changes on this node; returns the unsubscribe function. */
  onAccessChange(listener: AccessChangeListener): () => void;
  /** Ids someone on this node listens to (they count as looked at: refresh keeps them fresh). */
  subscribedIds(): string[];
  listenerCount(): number;
  close(): Promise<void>;
}

/** The per-node fan-out by image id, shared by both bus kinds. */
export class LocalFanout {
  private readonly byId = new Map<string, Set<SignedUrlListener>>();
  private listeners = 0;

  add(ids: readonly string[], listener: SignedUrlListener): () => void {
    const unique = [...new Set(ids)];
    for (const id of unique) {
      let set = this.byId.get(id);
      if (!set) {
        set = new Set();
        this.byId.set(id, set);
      }
      set.add(listener);
    }
    this.listeners++;
    let active = true;
    return () => {
      if (!active) return;
      active = false;
      this.listeners--;
      for (const id of unique) {
        const set = this.byId.get(id);
        set?.delete(listener);
        if (set?.size === 0) this.byId.delete(id);
      }
    };
  }

  /** Each listener is isolated: one that throws does not cost the others their events. */
  deliver(events: readonly SignedUrlEvent[], onListenerError: (err: unknown) => void = () => {}): void {
    for (const e of events) {
      const set = this.byId.get(e.imageId);
      if (!set) continue;
      for (const l of set) {
        try {
          l(e);
        } catch (err) {
          onListenerError(err);
        }
      }
    }
  }

  ids(): string[] {
    return [...this.byId.keys()];
  }

  count(): number {
    return this.listeners;
  }
}

/** Compact wire form: one message per batch, `[[id, url, expiresAt, refreshAt], …]`. */
export function encodeEvents(events: readonly SignedUrlEvent[]): string {
  return JSON.stringify(
    events.map((e) => [e.imageId, e.signedUrl.url, e.signedUrl.expiresAt, e.signedUrl.refreshAt]),
  );
}

/** Wire form of visibility changes: `[[id, ownerId, 'private' | 'public' | null], …]`. */
export function encodeAccessChanges(changes: readonly AccessChange[]): string {
  return JSON.stringify(changes.map((c) => [c.imageId, c.ownerId, c.visibility]));
}

export function decodeAccessChanges(message: string): AccessChange[] {
  const raw = JSON.parse(message) as unknown;
  if (!Array.isArray(raw)) return [];
  const out: AccessChange[] = [];
  for (const r of raw) {
    if (!Array.isArray(r) || typeof r[0] !== 'string' || typeof r[1] !== 'string') continue;
    const v = r[2];
    if (v !== 'private' && v !== 'public' && v !== null) continue;
    out.push({ imageId: r[0], ownerId: r[1], visibility: v });
  }
  return out;
}

export function decodeEvents(message: string): SignedUrlEvent[] {
  const raw = JSON.parse(message) as unknown;
  if (!Array.isArray(raw)) return [];
  const out: SignedUrlEvent[] = [];
  for (const r of raw) {
    if (Array.isArray(r) && typeof r[0] === 'string' && typeof r[1] === 'string') {
      out.push({
        imageId: r[0],
        signedUrl: { url: r[1], expiresAt: Number(r[2]), refreshAt: Number(r[3]), cached: false },
      });
    }
  }
  return out;
}

/**
 * What both buses share: listeners on this node, fanned out by image id. A bus adds how events
 * travel between nodes (or not, in one process).
 */
export abstract class FanoutBus implements EventBus {
  abstract readonly kind: EventBus['kind'];
  protected readonly fanout = new LocalFanout();
  private readonly accessListeners = new Set<AccessChangeListener>();

  abstract publish(events: readonly SignedUrlEvent[]): Promise<void>;
  abstract publishAccessChanges(changes: readonly AccessChange[]): Promise<void>;
  abstract close(): Promise<void>;

  onAccessChange(listener: AccessChangeListener): () => void {
    this.accessListeners.add(listener);
    return () => this.accessListeners.delete(listener);
  }

  /** Each listener is isolated, as with URL events. */
  protected deliverAccess(changes: readonly AccessChange[], onError: (err: unknown) => void): void {
    if (changes.length === 0) return;
    for (const l of this.accessListeners) {
      try {
        l(changes);
      } catch (err) {
        onError(err);
      }
    }
  }

  subscribe(ids: readonly string[], listener: SignedUrlListener): () => void {
    return this.fanout.add(ids, listener);
  }

  subscribedIds(): string[] {
    return this.fanout.ids();
  }

  listenerCount(): number {
    return this.fanout.count();
  }
}
