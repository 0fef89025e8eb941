import type { Viewer } from '../auth/viewer.js';
import { rateLimited } from '../errors/index.js';
import type { EventBus, SignedUrlEvent } from '../events/event-bus.js';
import type { Metrics } from '../metrics.js';

/**
 * A subscription to one variant of each image (`signedUrlRefreshed(ids, preset)`): which url id
 * carries an image's events (its preset variant's), and the preset, for the event's srcset.
 */
export interface LiveVariant<Row> {
  preset: string;
  urlIdOf(row: Row): string;
}

/** An event as a subscription delivers it: for a variant, keyed by the image and with its row. */
export interface LiveUrlEvent<Row = unknown> extends SignedUrlEvent {
  variantOf?: { row: Row; preset: string };
}

export interface LiveUrlLimits {
  /** Open subscriptions one viewer may hold on this node. */
  perViewer: number;
  /** A subscription whose client has not taken an event for this long while some wait is ended. */
  stalledMs: number;
}

/**
 * `signedUrlRefreshed`: a viewer listens to the re-signed URLs of the images it may see (ids it
 * cannot see deliver nothing, exactly like ids that do not exist). Each subscription is an
 * iterator with a bounded buffer — the newest URL per image, since an older one is useless once a
 * newer exists — so a client that stops reading holds at most one event per image, never slows
 * the fan-out to anyone else, and is ended after `stalledMs`. A subscription also ends when the
 * viewer's token does.
 */
export class LiveUrls<Row extends { id: string } = { id: string }> {
  private readonly open = new Map<string, number>();

  constructor(
    private readonly d: {
      /** The images of ids the viewer may see (the images domain decides). */
      images: { visible(viewer: Viewer, ids: readonly string[]): Promise<Row[]> };
      events: Pick<EventBus, 'subscribe'>;
      metrics: Pick<Metrics, 'sseSubscribers'>;
      limits: LiveUrlLimits;
      now?: () => number;
    },
  ) {}

  async listen(
    viewer: Viewer,
    ids: readonly string[],
    variant?: LiveVariant<Row>,
  ): Promise<AsyncIterableIterator<LiveUrlEvent<Row>>> {
    const held = this.open.get(viewer.id) ?? 0;
    if (held >= this.d.limits.perViewer) {
      throw rateLimited(`At most ${this.d.limits.perViewer} open subscriptions per viewer`, 5);
    }
    this.open.set(viewer.id, held + 1);
    let stream: LatestPerImage<LiveUrlEvent<Row>>;
    try {
      const rows = await this.d.images.visible(viewer, ids);
      stream = new LatestPerImage(this.d.limits.stalledMs, () => this.closed(viewer.id));
      if (variant) {
        // The bus carries url ids; the client hears of the image, with its variant's URL.
        const byUrlId = new Map(rows.map((r) => [variant.urlIdOf(r), r]));
        stream.attach(
          this.d.events.subscribe([...byUrlId.keys()], (e) => {
            const row = byUrlId.get(e.imageId);
            if (row) stream.offer({ ...e, imageId: row.id, variantOf: { row, preset: variant.preset } });
          }),
        );
      } else {
        stream.attach(
          this.d.events.subscribe(
            rows.map((r) => r.id),
            (e) => stream.offer(e),
          ),
        );
      }
    } catch (err) {
      this.closed(viewer.id);
      throw err;
    }
    this.d.metrics.sseSubscribers.inc();
    if (viewer.expiresAt !== undefined) stream.endAt(viewer.expiresAt - (this.d.now ?? Date.now)());
    return stream;
  }

  private closed(viewerId: string): void {
    this.d.metrics.sseSubscribers.dec();
    const n = (this.open.get(viewerId) ?? 1) - 1;
    if (n <= 0) this.open.delete(viewerId);
    else this.open.set(viewerId, n);
  }
}

/** The newest event per image, in arrival order of images; ends on return(), a stall or a deadline. */
class LatestPerImage<E extends SignedUrlEvent> implements AsyncIterableIterator<E> {
  private readonly pending = new Map<string, E>();
  private waiting: ((r: IteratorResult<E>) => void) | undefined;
  private unsubscribe: (() => void) | undefined;
  private stallTimer: NodeJS.Timeout | undefined;
  private endTimer: NodeJS.Timeout | undefined;
  private done = false;

  constructor(
    private readonly stalledMs: number,
    private readonly onClose: () => void,
  ) {}

  attach(unsubscribe: () => void): void {
    this.unsubscribe = unsubscribe;
  }

  endAt(inMs: number): void {
    if (inMs <= 0) {
      this.end();
      return;
    }
    this.endTimer = setTimeout(() => this.end(), Math.min(inMs, 2 ** 31 - 1));
    this.endTimer.unref();
  }

  offer(e: E): void {
    if (this.done) return;
    if (this.waiting) {
      const w = this.waiting;
      this.waiting = undefined;
      w({ value: e, done: false });
      return;
    }
    const held = this.pending.get(e.imageId);
    // Clients treat an event not later than theirs as a no-op: keep only the newest.
    if (!held || e.signedUrl.expiresAt >= held.signedUrl.expiresAt) {
      this.pending.delete(e.imageId);
      this.pending.set(e.imageId, e);
    }
    // The client has not asked for the next event: it gets `stalledMs` to come back.
    this.stallTimer ??= setTimeout(() => this.end(), this.stalledMs);
    this.stallTimer.unref();
  }

  next(): Promise<IteratorResult<E>> {
    if (this.stallTimer) {
      clearTimeout(this.stallTimer);
      this.stallTimer = undefined;
    }
    const first = this.pending.entries().next();
    if (!first.done) {
      this.pending.delete(first.value[0]);
      return Promise.resolve({ value: first.value[1], done: false });
    }
    if (this.done) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve) => {
      this.waiting = resolve;
    });
  }

  return(): Promise<IteratorResult<E>> {
    this.end();
    this.pending.clear();
    return Promise.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  private end(): void {
    if (this.done) return;
    this.done = true;
    clearTimeout(this.stallTimer);
    clearTimeout(this.endTimer);
    this.unsubscribe?.();
    this.onClose();
    const w = this.waiting;
    this.waiting = undefined;
    w?.({ value: undefined, done: true });
  }
}
