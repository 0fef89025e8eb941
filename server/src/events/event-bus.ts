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
 * Refresh events across nodes. Each node holds ONE subscription to the shared channel and fans
 * events out to its own listeners by image id. Delivery is at-most-once (Redis pub/sub): a
 * client that reconnects must refetch its URLs.
 */
export interface EventBus {
  readonly kind: 'redis' | 'memory';
  publish(events: readonly SignedUrlEvent[]): Promise<void>;
  /** Listens to events of these ids on this node; returns the unsubscribe function. */
  subscribe(ids: readonly string[], listener: SignedUrlListener): () => void;
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

  abstract publish(events: readonly SignedUrlEvent[]): Promise<void>;
  abstract close(): Promise<void>;

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
