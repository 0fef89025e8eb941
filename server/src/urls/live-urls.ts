import type { Viewer } from '../auth/viewer.js';
import { rateLimited } from '../errors/index.js';
import type { EventBus, SignedUrlEvent } from '../events/event-bus.js';
import type { Metrics } from '../metrics.js';

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
export class LiveUrls {
  private readonly open = new Map<string, number>();

  constructor(
    private readonly d: {
      /** The images of ids the viewer may see (the images domain decides). */
      images: { visible(viewer: Viewer, ids: readonly string[]): Promise<{ id: string }[]> };
      events: Pick<EventBus, 'subscribe'>;
      metrics: Pick<Metrics, 'sseSubscribers'>;
      limits: LiveUrlLimits;
      now?: () => number;
    },
  ) {}

  async listen(viewer: Viewer, ids: readonly string[]): Promise<AsyncIterableIterator<SignedUrlEvent>> {
    const held = this.open.get(viewer.id) ?? 0;
    if (held >= this.d.limits.perViewer) {
      throw rateLimited(`At most ${this.d.limits.perViewer} open subscriptions per viewer`, 5);
    }
    this.open.set(viewer.id, held + 1);
    let stream: LatestPerImage;
    try {
      const rows = await this.d.images.visible(viewer, ids);
      stream = new LatestPerImage(this.d.limits.stalledMs, () => this.closed(viewer.id));
      stream.attach(
        this.d.events.subscribe(
          rows.map((r) => r.id),
          (e) => stream.offer(e),
        ),
      );
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
class LatestPerImage implements AsyncIterableIterator<SignedUrlEvent> {
  private readonly pending = new Map<string, SignedUrlEvent>();
  private waiting: ((r: IteratorResult<SignedUrlEvent>) => void) | undefined;
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

  offer(e: SignedUrlEvent): void {
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

  next(): Promise<IteratorResult<SignedUrlEvent>> {
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

  return(): Promise<IteratorResult<SignedUrlEvent>> {
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
