import { Cluster } from 'ioredis';
import { LogThrottle } from '../lib/log-throttle.js';
import type { Logger } from '../logger.js';
import type { RedisClient } from '../redis/connect.js';
import {
  type AccessChange,
  decodeAccessChanges,
  decodeAnimated,
  decodeEvents,
  decodeWritePins,
  type EventUrlOf,
  encodeAccessChanges,
  encodeAnimated,
  encodeEvents,
  encodeWritePins,
  FanoutBus,
  type SignedUrlEvent,
  type SignedUrlListener,
  type WritePin,
} from './event-bus.js';

const VISIBILITY_LOGS = {
  malformed: 'dropped a malformed visibility message',
  listenerFailed: 'a visibility-change listener failed',
};
const ANIMATION_LOGS = {
  malformed: 'dropped a malformed animation message',
  listenerFailed: 'an animation listener failed',
};
const PIN_LOGS = {
  malformed: 'dropped a malformed write-pin message',
  listenerFailed: 'a write-pin listener failed',
};

/**
 * Cross-node events on one Redis channel, visibility changes on a second one (`<channel>:access`,
 * rare, on the same subscribed connection), rows recorded as animated on a third
 * (`<channel>:animated`, rarer still: the `preset` subscriptions holding them re-plan), and write
 * pins on a fourth (`<channel>:pins`: a viewer who has just written reads from the primary on
 * every node, db/write-pins.ts). Pins have a channel of their own rather than riding on
 * `:access`: a worker hears visibility changes but serves no page, so it need not receive a
 * message per upload; and the message stays `[["<viewer>", <ms>]]`, which nodes of an earlier
 * version (not subscribed to it) never see.
 * `publisher` is the shared command connection; `subscriber` is a dedicated connection in
 * subscribe mode (one per node, whatever the number of SSE clients).
 *
 * `receivesUrlEvents: false` (a `SIGNET_ROLE=worker` node, which serves no subscription) publishes
 * URL events without subscribing to them: Redis would otherwise send every batch the node
 * publishes back to it, and the node would read and drop it (scenario 8 of docs/benchmarks.md:
 * ~10% of a refreshing worker's CPU, and one more copy of every batch per worker for Redis to
 * send). Nor does it subscribe to `<channel>:animated` (only subscriptions act on it) or
 * `<channel>:pins` (only page reads do); it still publishes pins for the writes it makes.
 *
 * `urlOf` builds the URLs of events that arrive in the compact wire form (their object key and
 * signature; `urls/event-urls.ts`), for the ids this node has listeners for.
 */
export class RedisEventBus extends FanoutBus {
  readonly kind = 'redis' as const;
  private readonly ready: Promise<unknown>;
  private readonly accessChannel: string;
  private readonly animatedChannel: string;
  private readonly pinsChannel: string;
  /** Set by `close`: a subscription that fails then failed because of it, not worth a warning. */
  private closed = false;

  constructor(
    private readonly publisher: RedisClient,
    private readonly subscriber: RedisClient,
    private readonly channel: string,
    private readonly logger: Logger,
    private readonly urlOf: EventUrlOf,
    private readonly receivesUrlEvents = true,
  ) {
    super();
    this.accessChannel = `${channel}:access`;
    this.animatedChannel = `${channel}:animated`;
    this.pinsChannel = `${channel}:pins`;
    this.subscriber.on('message', (ch: string, message: string) => {
      if (ch === this.pinsChannel) {
        this.onSideMessage(
          PIN_LOGS,
          () => decodeWritePins(message),
          (pins, onError) => this.deliverWritePins(pins, onError),
        );
        return;
      }
      if (ch === this.animatedChannel) {
        this.onSideMessage(
          ANIMATION_LOGS,
          () => decodeAnimated(message),
          (ids, onError) => this.deliverAnimated(ids, onError),
        );
        return;
      }
      if (ch === this.accessChannel) {
        this.onSideMessage(
          VISIBILITY_LOGS,
          () => decodeAccessChanges(message),
          (changes, onError) => this.deliverAccess(changes, onError),
        );
        return;
      }
      // A node without a single subscription (most API nodes between page loads, every worker)
      // has nobody to hand a batch to: decoding its JSON is waste.
      if (ch !== this.channel || this.fanout.count() === 0) return;
      try {
        let unbuilt = 0;
        const events = decodeEvents(
          message,
          (id, key, signature) => this.buildUrl(id, key, signature, () => unbuilt++),
          this.listened,
        );
        if (unbuilt > 0) this.reportUnbuilt(unbuilt);
        this.fanout.deliver(events, (err) => this.logger.error({ err }, 'a refresh-event listener failed'));
      } catch (err) {
        this.logger.warn({ err: (err as Error).message }, 'dropped a malformed event message');
      }
    });
    const channels = receivesUrlEvents
      ? [this.channel, this.accessChannel, this.animatedChannel, this.pinsChannel]
      : [this.accessChannel];
    this.ready = this.subscribeTo(channels);
    // A single Redis (or one behind Sentinel): the connection is opened with ioredis'
    // re-subscription off (redis/connect.ts, `resubscribedByOwner`) and the bus subscribes again
    // on each reconnect, with a promise it handles. ioredis' own re-subscription left one nobody
    // could catch, rejected when the node shut down while Redis was answering it (Redis just back).
    // A Cluster's subscriber connection re-subscribes by itself and handles its promise.
    if (!(subscriber instanceof Cluster)) {
      let lost = false;
      subscriber.on('close', () => {
        lost = true;
      });
      subscriber.on('ready', () => {
        if (!lost || this.closed) return;
        lost = false;
        void this.subscribeTo(channels);
      });
    }
  }

  /** Ids with listeners on this node: a compact event's URL is built for these only. */
  private readonly listened = (id: string): boolean => this.fanout.has(id);

  /**
   * A side channel's message: decoded and handed to its listeners. A malformed one is dropped
   * with a warning and a failing listener logged, neither stopping the others.
   */
  private onSideMessage<T>(
    what: { malformed: string; listenerFailed: string },
    decode: () => T,
    deliver: (batch: T, onError: (err: unknown) => void) => void,
  ): void {
    let batch: T;
    try {
      batch = decode();
    } catch (err) {
      this.logger.warn({ err: (err as Error).message }, what.malformed);
      return;
    }
    deliver(batch, (err) => this.logger.error({ err }, what.listenerFailed));
  }

  /** One record's URL, or undefined (counted by `unbuilt`): one bad record must not cost the rest. */
  private buildUrl(id: string, key: string, signature: string, unbuilt: () => void) {
    try {
      const url = this.urlOf(id, key, signature);
      if (!url) unbuilt();
      return url;
    } catch {
      unbuilt();
      return undefined;
    }
  }

  private readonly unbuiltWarnings = new LogThrottle();

  /**
   * At most one warning a minute, counting what was dropped since the last one: a node that lacks
   * a region's bucket would otherwise log on every batch.
   */
  private reportUnbuilt(records: number): void {
    this.unbuiltWarnings.run(
      'unbuilt',
      (suppressed) =>
        this.logger.warn(
          { records: records + suppressed },
          'dropped URL events this node cannot build (a region whose bucket it does not know, or signed with other credentials during a key rotation?)',
        ),
      records,
    );
  }

  private subscribeTo(channels: string[]): Promise<unknown> {
    return this.subscriber.subscribe(...channels).catch((err: Error) => {
      if (this.closed) return;
      this.logger.warn(
        { err: err.message },
        'event subscription failed; subscribing again on the next reconnect',
      );
    });
  }

  /** Resolves once this node's subscription is in place. */
  async whenReady(): Promise<void> {
    await this.ready;
  }

  override subscribe(ids: readonly string[], listener: SignedUrlListener): () => void {
    if (!this.receivesUrlEvents)
      throw new Error('this node does not receive URL events (SIGNET_ROLE=worker)');
    return super.subscribe(ids, listener);
  }

  async publish(events: readonly SignedUrlEvent[]): Promise<void> {
    if (events.length === 0) return;
    await this.publisher.publish(this.channel, encodeEvents(events));
  }

  async publishAccessChanges(changes: readonly AccessChange[]): Promise<void> {
    if (changes.length === 0) return;
    await this.publisher.publish(this.accessChannel, encodeAccessChanges(changes));
  }

  async publishAnimated(imageIds: readonly string[]): Promise<void> {
    if (imageIds.length === 0) return;
    await this.publisher.publish(this.animatedChannel, encodeAnimated(imageIds));
  }

  async publishWritePins(pins: readonly WritePin[]): Promise<void> {
    if (pins.length === 0) return;
    await this.publisher.publish(this.pinsChannel, encodeWritePins(pins));
  }

  async close(): Promise<void> {
    this.closed = true;
    this.subscriber.disconnect();
  }
}
