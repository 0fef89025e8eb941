/**
 * The URL an event carries: the schema's `SignedUrl`, as the URL service hands it out
 * (`ResolvedUrl` in urls/resolved-url.ts has the same shape). The bus names the shape itself
 * so that this port imports nothing from the domain above it (docs/architecture.md, "Layers").
 */
export interface EventSignedUrl {
  url: string;
  /** Epoch ms. */
  expiresAt: number;
  refreshAt: number;
  cached: boolean;
}

/**
 * A re-signed URL: the one shape from the signer through the bus to the `signedUrlRefreshed`
 * subscription (it is the schema's `SignedUrlEvent`).
 */
export interface SignedUrlEvent {
  imageId: string;
  signedUrl: EventSignedUrl;
  /**
   * What the URL was built from, when the publisher has it (the signer always does): the object
   * key and the signature in the URL store's text form (urls/store.ts). The Redis bus then sends
   * these instead of the URL, and each node builds the URL only for ids it has listeners for:
   * whoever sets them keeps them the origin of `signedUrl` (the URL the bus delivers is built
   * from them, not read from `signedUrl`).
   */
  objectKey?: string;
  signature?: string;
}

/**
 * Builds, on this node, the URL of an event that came as its url id, object key and signature
 * (`urls/event-urls.ts`); undefined when it cannot.
 */
export type EventUrlOf = (urlId: string, objectKey: string, signature: string) => EventSignedUrl | undefined;

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
 * A viewer has just written (an upload, a delete, a visibility change): every node that serves
 * pages reads that viewer's rows from the primary for `forMs` from when it hears this
 * (db/write-pins.ts). A duration, not a time of day: the nodes' clocks may differ, and the time
 * the message spent in flight only makes the pin last a little longer on the receiver.
 */
export interface WritePin {
  viewer: string;
  forMs: number;
}

export type WritePinListener = (pins: readonly WritePin[]) => void;

/**
 * Images whose rows now record them as animated (a change from null or false to true: the
 * animation backfill, or on `s3` the derived variants' job). Their variants are the original
 * from now on, so a `preset` subscription holding one re-plans it (urls/live-urls.ts). Recording
 * a still changes no URL and is not announced. See docs/architecture.md, "Variants".
 */
export type AnimatedListener = (imageIds: readonly string[]) => void;

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
  /**
   * Tells every node that serves subscriptions (this one included) that these images' rows now
   * record animation: one call per batch of rows.
   */
  publishAnimated(imageIds: readonly string[]): Promise<void>;
  /** Listens to animation being recorded on rows; returns the unsubscribe function. */
  onAnimated(listener: AnimatedListener): () => void;
  /**
   * Tells every node that serves pages (this one included) that these viewers have just written
   * (read-your-own-writes with a read replica: docs/operations.md, "PostgreSQL read replica").
   */
  publishWritePins(pins: readonly WritePin[]): Promise<void>;
  /** Listens to write pins on this node; returns the unsubscribe function. */
  onWritePins(listener: WritePinListener): () => void;
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

  has(id: string): boolean {
    return this.byId.has(id);
  }

  count(): number {
    return this.listeners;
  }
}

/*
 * The wire forms of a batch of URL events, one message per batch (docs/architecture.md, "Events
 * and subscriptions"):
 * - compact, when every event carries what its URL was built from: `{"v":2,"e":[id, objectKey,
 *   signature, …]}`, three strings an event. A cos URL is ~350 characters, its key and signature
 *   ~110: a cold page's batch is 15 KB instead of 49. Every node reads every batch, whether or not
 *   it has listeners for its ids, and Redis copies it to each (docs/benchmarks.md, finding 34). A
 *   receiver builds the URLs of the ids it has listeners for, and of no other.
 * - the URL form, `[[id, url, expiresAt, refreshAt], …]`, for events without their origin. Nodes
 *   of an earlier version read only this form, and drop a compact message whole (not an array).
 */
const COMPACT = 2;

export function encodeEvents(events: readonly SignedUrlEvent[]): string {
  const flat = new Array<string>(events.length * 3);
  for (let i = 0; i < events.length; i++) {
    const e = events[i]!;
    if (e.objectKey === undefined || e.signature === undefined) return encodeWithUrls(events);
    flat[3 * i] = e.imageId;
    flat[3 * i + 1] = e.objectKey;
    flat[3 * i + 2] = e.signature;
  }
  return `{"v":${COMPACT},"e":${JSON.stringify(flat)}}`;
}

function encodeWithUrls(events: readonly SignedUrlEvent[]): string {
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

/** Wire form of rows recorded as animated: `["<image id>", …]`. */
export function encodeAnimated(imageIds: readonly string[]): string {
  return JSON.stringify(imageIds);
}

/** The image ids of such a message; anything but a string is left out. */
export function decodeAnimated(message: string): string[] {
  const raw = JSON.parse(message) as unknown;
  if (!Array.isArray(raw)) return [];
  return raw.filter((id): id is string => typeof id === 'string');
}

/** Wire form of write pins: `[["<viewer>", <ms>], …]` (one pin is ~20 bytes). */
export function encodeWritePins(pins: readonly WritePin[]): string {
  return JSON.stringify(pins.map((p) => [p.viewer, p.forMs]));
}

/** The pins of such a message; a record without a viewer or a positive finite duration is left out. */
export function decodeWritePins(message: string): WritePin[] {
  const raw = JSON.parse(message) as unknown;
  if (!Array.isArray(raw)) return [];
  const out: WritePin[] = [];
  for (const r of raw) {
    // What a viewer id may be is WritePins' to judge: it hears the in-process bus too.
    if (!Array.isArray(r) || typeof r[0] !== 'string') continue;
    const forMs: unknown = r[1];
    if (typeof forMs !== 'number' || !Number.isFinite(forMs) || forMs <= 0) continue;
    out.push({ viewer: r[0], forMs });
  }
  return out;
}

/**
 * The events of a message, in either wire form. A compact one's URLs are built with `urlOf`, and
 * only for ids `wanted` (all when absent); records `urlOf` cannot build are left out, as are
 * malformed ones.
 */
export function decodeEvents(
  message: string,
  urlOf: EventUrlOf,
  wanted?: (id: string) => boolean,
): SignedUrlEvent[] {
  const raw = JSON.parse(message) as unknown;
  const out: SignedUrlEvent[] = [];
  if (Array.isArray(raw)) {
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
  const e = (raw as { v?: unknown; e?: unknown } | null)?.e;
  if ((raw as { v?: unknown } | null)?.v !== COMPACT || !Array.isArray(e)) return out;
  for (let i = 0; i + 2 < e.length; i += 3) {
    const id: unknown = e[i];
    const key: unknown = e[i + 1];
    const signature: unknown = e[i + 2];
    if (typeof id !== 'string' || typeof key !== 'string' || typeof signature !== 'string') continue;
    if (wanted && !wanted(id)) continue;
    const signedUrl = urlOf(id, key, signature);
    if (signedUrl) out.push({ imageId: id, signedUrl });
  }
  return out;
}

/**
 * The listeners of a side channel (visibility changes, rows recorded as animated, write pins):
 * every one hears every non-empty batch, each isolated from the others' failures.
 */
class SideListeners<T extends readonly unknown[]> {
  private readonly listeners = new Set<(batch: T) => void>();

  /** Returns the function that removes it. */
  add(listener: (batch: T) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  deliver(batch: T, onError: (err: unknown) => void): void {
    if (batch.length === 0) return;
    for (const l of this.listeners) {
      try {
        l(batch);
      } catch (err) {
        onError(err);
      }
    }
  }
}

/**
 * What both buses share: listeners on this node, fanned out by image id. A bus adds how events
 * travel between nodes (or not, in one process).
 */
export abstract class FanoutBus implements EventBus {
  abstract readonly kind: EventBus['kind'];
  protected readonly fanout = new LocalFanout();
  private readonly accessListeners = new SideListeners<readonly AccessChange[]>();
  private readonly animatedListeners = new SideListeners<readonly string[]>();
  private readonly pinListeners = new SideListeners<readonly WritePin[]>();

  abstract publish(events: readonly SignedUrlEvent[]): Promise<void>;
  abstract publishAccessChanges(changes: readonly AccessChange[]): Promise<void>;
  abstract publishAnimated(imageIds: readonly string[]): Promise<void>;
  abstract publishWritePins(pins: readonly WritePin[]): Promise<void>;
  abstract close(): Promise<void>;

  onAccessChange(listener: AccessChangeListener): () => void {
    return this.accessListeners.add(listener);
  }

  /** Each listener is isolated, as with URL events. */
  protected deliverAccess(changes: readonly AccessChange[], onError: (err: unknown) => void): void {
    this.accessListeners.deliver(changes, onError);
  }

  onAnimated(listener: AnimatedListener): () => void {
    return this.animatedListeners.add(listener);
  }

  /** Each listener is isolated, as with URL events. */
  protected deliverAnimated(imageIds: readonly string[], onError: (err: unknown) => void): void {
    this.animatedListeners.deliver(imageIds, onError);
  }

  onWritePins(listener: WritePinListener): () => void {
    return this.pinListeners.add(listener);
  }

  /** Each listener is isolated, as with URL events. */
  protected deliverWritePins(pins: readonly WritePin[], onError: (err: unknown) => void): void {
    this.pinListeners.deliver(pins, onError);
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
