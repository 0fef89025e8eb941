import { requireSignedIn, type Viewer } from '../auth/viewer.js';
import type { ImageRow } from '../db/types.js';
import { rateLimited } from '../errors/index.js';
import type { AccessChange, EventBus, SignedUrlEvent } from '../events/event-bus.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';

/** What decides whether a viewer may read an image: its owner and its visibility. */
type ImageAccess = Pick<ImageRow, 'ownerId' | 'visibility'>;

/** What a subscription needs of a row: its id, and whether it records the image as animated. */
export interface LiveRow {
  id: string;
  animated?: boolean | null;
}

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
 * Stream × id lookups of animation messages done in one turn of the event loop: mostly 2-8 ms
 * here (`bench/tools/animated-replan.ts`; 50,000 held it 8-18 ms).
 */
export const ANIMATED_LOOKUPS_PER_SLICE = 10_000;

/**
 * `signedUrlRefreshed`: a viewer listens to the re-signed URLs of the images it may see (ids it
 * cannot see deliver nothing, exactly like ids that do not exist). Each subscription is an
 * iterator with a bounded buffer — the newest URL per image, since an older one is useless once a
 * newer exists — so a client that stops reading holds at most one event per image, never slows
 * the fan-out to anyone else, and is ended after `stalledMs`. A subscription also ends when the
 * viewer's token does.
 */
export class LiveUrls<Row extends LiveRow = LiveRow> {
  private readonly open = new Map<string, number>();
  /** Every open (or opening) subscription of this node, to apply visibility changes to. */
  private readonly streams = new Set<LatestPerImage<SignedUrlEvent>>();
  /** The open (or opening) `preset` subscriptions, with what carries each image's events. */
  private readonly presetStreams = new Map<LatestPerImage<SignedUrlEvent>, VariantRoutes<Row>>();
  /** Messages of rows recorded as animated whose streams are not all re-planned yet. */
  private readonly animatedWalks: {
    imageIds: readonly string[];
    entries: [LatestPerImage<SignedUrlEvent>, VariantRoutes<Row>][];
    next: number;
  }[] = [];

  constructor(
    private readonly d: {
      /**
       * The images domain decides who sees what: the images of ids the viewer may see, and
       * whether a viewer may still read an image after a change of its owner or visibility.
       */
      images: {
        visible(viewer: Viewer, ids: readonly string[]): Promise<Row[]>;
        canRead(viewer: Viewer, image: ImageAccess): boolean;
      };
      events: Pick<EventBus, 'subscribe' | 'onAccessChange' | 'onAnimated'>;
      metrics: Pick<Metrics, 'sseSubscribers'>;
      limits: LiveUrlLimits;
      logger: Pick<Logger, 'error'>;
      now?: () => number;
    },
  ) {
    // One listener per node: a visibility change reaches every subscription here, whose viewer
    // keeps the image only if the rule still lets it read it (no SQL: the change carries the owner).
    this.d.events.onAccessChange((changes) => {
      for (const stream of this.streams) stream.revoke(changes);
    });
    // One listener per node: a row recorded as animated has the original for every variant from
    // now on, so a `preset` subscription holding it moves to the original's url id (no SQL: the
    // stream keeps its rows). Subscriptions without a preset listen to the original already.
    this.d.events.onAnimated((imageIds) => {
      // The streams open now; one opened since reads its rows after the change (or, from a
      // replica that has not replayed it yet, keeps the variant until reopened).
      // Walks left over mean a turn is queued for them, which takes this one too.
      const idle = this.animatedWalks.length === 0;
      this.animatedWalks.push({ imageIds, entries: [...this.presetStreams], next: 0 });
      if (idle) this.walkAnimated();
    });
  }

  /**
   * Re-plans the preset streams of the pending walks, oldest message first, up to
   * ANIMATED_LOOKUPS_PER_SLICE stream × id lookups a turn of the event loop, and queues the next
   * turn while any is left. Every stream is asked about every id of a message: no node-wide index
   * by image is kept, which would cost each held id of each subscription a map entry, for
   * messages that come only while rows from before migration 006 are recorded. 10,000 streams ×
   * 100 ids held the loop 57-77 ms in one go. Messages arriving while a walk waits join the queue,
   * so they share the turns rather than each taking its own slice of the same one.
   */
  private walkAnimated(): void {
    let budget = ANIMATED_LOOKUPS_PER_SLICE;
    while (budget > 0 && this.animatedWalks.length > 0) {
      const walk = this.animatedWalks[0]!;
      const cost = Math.max(1, walk.imageIds.length);
      while (budget > 0 && walk.next < walk.entries.length) {
        const [stream, routes] = walk.entries[walk.next++]!;
        budget -= cost;
        // Ended since the message came.
        if (!this.presetStreams.has(stream)) continue;
        try {
          const moved = routes.animated(walk.imageIds);
          if (moved.length > 0) stream.resubscribe(moved);
        } catch (err) {
          // One stream's failure is not the others': they are still walked (and off the bus's
          // own try, in a later turn, it would end the process).
          this.d.logger.error({ err }, 'an animation listener failed');
        }
      }
      if (walk.next >= walk.entries.length) this.animatedWalks.shift();
    }
    if (this.animatedWalks.length > 0) setImmediate(() => this.walkAnimated());
  }

  async listen(
    viewer: Viewer,
    ids: readonly string[],
    variant?: LiveVariant<Row>,
  ): Promise<AsyncIterableIterator<LiveUrlEvent<Row>>> {
    requireSignedIn(viewer);
    const held = this.open.get(viewer.id) ?? 0;
    if (held >= this.d.limits.perViewer) {
      throw rateLimited(`At most ${this.d.limits.perViewer} open subscriptions per viewer`, 5);
    }
    this.open.set(viewer.id, held + 1);
    const stream: LatestPerImage<LiveUrlEvent<Row>> = new LatestPerImage(
      (image) => this.d.images.canRead(viewer, image),
      this.d.limits.stalledMs,
      () => this.closed(stream, viewer.id),
    );
    // Registered before the check reads the rows: a change that lands while it runs is not lost.
    this.streams.add(stream);
    const routes = variant && new VariantRoutes(variant);
    if (routes) this.presetStreams.set(stream, routes);
    try {
      // One SQL statement for every id of the subscription, visibility included.
      const rows = await this.d.images.visible(viewer, ids);
      if (routes) {
        // The bus carries url ids: the preset variant's of each image (the original's for an
        // animated one). The client hears of the image, with that URL (and the row, for the
        // event's srcset). Both are read at each event: an animation change re-plans them.
        routes.plan(rows);
        const { urlIdOf, rowOf } = routes;
        const preset = routes.preset;
        stream.start(
          rows.map((r) => r.id),
          (allowed) =>
            this.d.events.subscribe(
              allowed.map((id) => urlIdOf.get(id)!),
              (e) => {
                const row = rowOf.get(e.imageId);
                if (!row) return;
                // Written out, not `{ ...e, … }` (V8's slow path for a spread with more properties).
                stream.offer({
                  imageId: row.id,
                  signedUrl: e.signedUrl,
                  variantOf: { row, preset },
                });
              },
            ),
        );
      } else {
        stream.start(
          rows.map((r) => r.id),
          (allowed) => this.d.events.subscribe(allowed, (e) => stream.offer(e)),
        );
      }
    } catch (err) {
      this.closed(stream, viewer.id);
      throw err;
    }
    this.d.metrics.sseSubscribers.inc();
    if (viewer.expiresAt !== undefined) stream.endAt(viewer.expiresAt - (this.d.now ?? Date.now)());
    return stream;
  }

  private closed(stream: LatestPerImage<SignedUrlEvent>, viewerId: string): void {
    if (!this.streams.delete(stream)) return;
    this.presetStreams.delete(stream);
    if (stream.counted) this.d.metrics.sseSubscribers.dec();
    const n = (this.open.get(viewerId) ?? 1) - 1;
    if (n <= 0) this.open.delete(viewerId);
    else this.open.set(viewerId, n);
  }
}

/**
 * Which url id carries each image's events in a `preset` subscription, and the row each event's
 * srcset is planned from. A row recorded as animated after the subscription read it (the backfill
 * of rows from before migration 006, or the s3 variants job) moves to the original's url id,
 * exactly as the subscription would have planned it when opened afterwards
 * (docs/architecture.md, "Variants").
 */
class VariantRoutes<Row extends LiveRow> {
  readonly preset: string;
  /** Image id -> the url id its events come on. */
  readonly urlIdOf = new Map<string, string>();
  /** That url id -> the image's row. */
  readonly rowOf = new Map<string, Row>();
  /**
   * Ids recorded as animated while the subscribe-time check ran: the rows it returns may have
   * been read before the change. Undefined once planned.
   */
  private early: Set<string> | undefined = new Set();

  constructor(private readonly variant: LiveVariant<Row>) {
    this.preset = variant.preset;
  }

  plan(rows: readonly Row[]): void {
    const early = this.early!;
    this.early = undefined;
    for (const row of rows) this.route(early.has(row.id) ? asAnimated(row) : row);
  }

  /** Re-plans the images among `imageIds` held here; returns those whose url id changed. */
  animated(imageIds: readonly string[]): string[] {
    const moved: string[] = [];
    if (this.early) {
      for (const id of imageIds) this.early.add(id);
      return moved;
    }
    for (const id of imageIds) {
      const urlId = this.urlIdOf.get(id);
      if (urlId === undefined) continue;
      const row = this.rowOf.get(urlId)!;
      if (row.animated === true) continue;
      this.rowOf.delete(urlId);
      if (this.route(asAnimated(row)) !== urlId) moved.push(id);
    }
    return moved;
  }

  private route(row: Row): string {
    const urlId = this.variant.urlIdOf(row);
    this.urlIdOf.set(row.id, urlId);
    this.rowOf.set(urlId, row);
    return urlId;
  }
}

/** The row as it is once its animation is recorded (the catalog reads only `animated` of it). */
function asAnimated<Row extends LiveRow>(row: Row): Row {
  return row.animated === true ? row : { ...row, animated: true };
}

/** node's longest timer: a longer one fires at once. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** The newest event per image, in arrival order of images; ends on return(), a stall or a deadline. */
class LatestPerImage<E extends SignedUrlEvent> implements AsyncIterableIterator<E> {
  private readonly pending = new Map<string, E>();
  private waiting: ((r: IteratorResult<E>) => void) | undefined;
  private unsubscribe: (() => void) | undefined;
  private subscribe: ((ids: readonly string[]) => () => void) | undefined;
  /** The ids this viewer may see and listens to; a visibility change can only shrink it. */
  private allowed = new Set<string>();
  /** Ids whose access was revoked before the subscribe-time check returned. */
  private readonly revokedEarly = new Set<string>();
  private stallTimer: NodeJS.Timeout | undefined;
  private endTimer: NodeJS.Timeout | undefined;
  private done = false;
  /** Counted in signet_sse_subscribers (once started). */
  counted = false;

  constructor(
    /** Whether this stream's viewer may read an image with this owner and visibility. */
    private readonly mayRead: (image: ImageAccess) => boolean,
    private readonly stalledMs: number,
    private readonly onClose: () => void,
  ) {}

  start(ids: readonly string[], subscribe: (ids: readonly string[]) => () => void): void {
    this.subscribe = subscribe;
    this.allowed = new Set(ids.filter((id) => !this.revokedEarly.has(id)));
    this.revokedEarly.clear();
    this.unsubscribe = subscribe([...this.allowed]);
    this.counted = true;
  }

  /**
   * Drops the images this viewer may no longer read: no event of theirs is delivered from now on,
   * and none still waiting in the buffer either. The stream itself carries on for its other ids.
   */
  revoke(changes: readonly AccessChange[]): void {
    if (this.done) return;
    let dropped = false;
    for (const c of changes) {
      const still = c.visibility !== null && this.mayRead({ ownerId: c.ownerId, visibility: c.visibility });
      if (still) continue;
      if (!this.subscribe) {
        this.revokedEarly.add(c.imageId);
        continue;
      }
      if (this.allowed.delete(c.imageId)) dropped = true;
      this.pending.delete(c.imageId);
    }
    // Re-subscribe with what is left, so the node stops counting the image as looked at by us.
    if (dropped) this.resubscribe();
  }

  /**
   * Subscribes again to the ids still allowed, through the url ids `subscribe` maps them to now
   * (a `preset` stream's, after an animation change). An event still waiting for one of `moved`
   * is dropped: it carries the variant's URL and the srcset of the row as it was, and, its
   * expiry being later, would win over the original's next event.
   */
  resubscribe(moved: readonly string[] = []): void {
    if (this.done || !this.subscribe) return;
    for (const id of moved) this.pending.delete(id);
    this.unsubscribe?.();
    this.unsubscribe = this.subscribe([...this.allowed]);
  }

  endAt(inMs: number): void {
    if (inMs <= 0) {
      this.end();
      return;
    }
    // Past node's longest timer (~24.8 days) a timer fires at that: it is armed again for the
    // rest then, so a token valid for longer does not end its stream early.
    const step = Math.min(inMs, MAX_TIMER_MS);
    this.endTimer = setTimeout(() => (step < inMs ? this.endAt(inMs - step) : this.end()), step);
    this.endTimer.unref();
  }

  offer(e: E): void {
    if (this.done || !this.allowed.has(e.imageId)) return;
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
