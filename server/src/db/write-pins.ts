import type { EventBus } from '../events/event-bus.js';
import { withDeadline } from '../lib/late-timer.js';
import { LogThrottle, suppressedField } from '../lib/log-throttle.js';
import type { Logger } from '../logger.js';

const NO_ANSWER = 'no answer from Redis in time';

export interface WritePinsOptions {
  /** How long a viewer's reads stay on the primary after a write. */
  pinMs: number;
  /**
   * Shares pins between gateways (a viewer's next request may reach another node): the event bus,
   * and how long a write waits for its pin to be published.
   */
  bus?: { events: Pick<EventBus, 'publishWritePins' | 'onWritePins'>; timeoutMs: number };
  logger: Pick<Logger, 'warn'>;
}

/**
 * Pins held at most (a few MB): a pin lasts `pinMs` (seconds), so this many live ones take more
 * than 10 000 writes a second across the deployment. Past it the oldest pin, the nearest its end,
 * is dropped (logged): its viewer may read the replica, within its lag bound, on this node.
 */
const MAX_PINS = 100_000;

/**
 * Read-your-own-writes with a read replica: a viewer who has just uploaded, deleted or changed a
 * visibility reads from the primary for `pinMs` (the replica's lag bound plus two polls, so by
 * then any replica still in use has replayed the write). Pins are held in memory on every node
 * that serves pages: the writer's node sets its own and publishes it on the event bus
 * (`<channel>:pins`, a duration rather than a time, since clocks differ), and every node that
 * hears it pins the viewer from then on. So `pinned` is a lookup in this process, never a round
 * trip: a warm page stays one Redis command (docs/architecture.md, "The hot path").
 *
 * What a pin does not reach (pub/sub is at most once): a node that starts, or whose subscription
 * is reconnecting, after it was published; every other node when Redis is away (the writer's own
 * node still pins). There the viewer may read the replica, which is at most its lag bound behind,
 * for at most `pinMs`. See docs/operations.md, "PostgreSQL read replica".
 */
export class WritePins {
  /** Viewer -> end of the pin (epoch ms), oldest first: a pin set again moves to the end. */
  private readonly held = new Map<string, number>();
  private readonly warnings = new LogThrottle();

  constructor(private readonly o: WritePinsOptions) {
    o.bus?.events.onWritePins((pins) => {
      // No pin heard lasts longer than this node's own: a message from a node with another
      // bound, or from anyone else who can publish on Redis, cannot keep a viewer off the
      // replica for good.
      for (const p of pins) {
        // A viewer id is 1-128 characters (auth/viewer.ts); anything else is no viewer's pin.
        if (p.viewer.length === 0 || p.viewer.length > 128) continue;
        this.hold(p.viewer, Math.min(p.forMs, this.o.pinMs));
      }
    });
  }

  /**
   * The viewer has just written: pinned here at once, and on the other nodes once they hear it.
   * Resolves when the pin is published (or could not be, within the timeout: then logged, at most
   * once a minute), so that it normally reaches them before the write's answer reaches the client.
   */
  async pin(viewer: string): Promise<void> {
    this.hold(viewer, this.o.pinMs);
    const bus = this.o.bus;
    if (!bus) return;
    try {
      await withDeadline(
        bus.events.publishWritePins([{ viewer, forMs: this.o.pinMs }]),
        bus.timeoutMs,
        NO_ANSWER,
      );
    } catch (err) {
      this.warnings.run('publish', (suppressed) =>
        this.o.logger.warn(
          { err: (err as Error).message, ...suppressedField(suppressed) },
          'could not share a write pin: other gateways may read the viewer from the replica, within its lag bound',
        ),
      );
    }
  }

  /** Whether the viewer's reads go to the primary: in memory, no I/O. */
  pinned(viewer: string): boolean {
    const until = this.held.get(viewer);
    if (until === undefined) return false;
    if (until > Date.now()) return true;
    this.held.delete(viewer);
    return false;
  }

  /** Pins the viewer for `forMs` from now (or keeps a pin that lasts longer). */
  private hold(viewer: string, forMs: number): void {
    const now = Date.now();
    const until = now + forMs;
    const current = this.held.get(viewer);
    if (current !== undefined && current >= until) return;
    this.held.delete(viewer);
    this.held.set(viewer, until);
    // Ended pins leave from the front (pins mostly last the same `pinMs`, so the map is in order
    // of their ends: each is looked at about once). One out of order waits for those before it.
    for (const [v, u] of this.held) {
      if (u > now && this.held.size <= MAX_PINS) break;
      this.held.delete(v);
      if (u > now)
        this.warnings.run('full', (suppressed) =>
          this.o.logger.warn(
            { max: MAX_PINS, ...suppressedField(suppressed) },
            'write pins full: dropped the oldest (its viewer may read the replica, within its lag bound)',
          ),
        );
    }
  }
}
