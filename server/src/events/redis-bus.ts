import type { Logger } from '../logger.js';
import type { RedisClient } from '../redis/connect.js';
import { decodeEvents, encodeEvents, FanoutBus, type SignedUrlEvent } from './event-bus.js';

/**
 * Cross-node events on one Redis channel. `publisher` is the shared command connection;
 * `subscriber` is a dedicated connection in subscribe mode (one per node, whatever the number
 * of SSE clients).
 */
export class RedisEventBus extends FanoutBus {
  readonly kind = 'redis' as const;
  private readonly ready: Promise<unknown>;

  constructor(
    private readonly publisher: RedisClient,
    private readonly subscriber: RedisClient,
    private readonly channel: string,
    private readonly logger: Logger,
  ) {
    super();
    this.subscriber.on('message', (ch: string, message: string) => {
      if (ch !== this.channel) return;
      try {
        this.fanout.deliver(decodeEvents(message), (err) =>
          this.logger.error({ err }, 'a refresh-event listener failed'),
        );
      } catch (err) {
        this.logger.warn({ err: (err as Error).message }, 'dropped a malformed event message');
      }
    });
    // ioredis re-subscribes by itself after a reconnect.
    this.ready = this.subscriber.subscribe(this.channel).catch((err: Error) => {
      this.logger.warn({ err: err.message }, 'event subscription failed; retrying on reconnect');
    });
  }

  /** Resolves once this node's subscription is in place. */
  async whenReady(): Promise<void> {
    await this.ready;
  }

  async publish(events: readonly SignedUrlEvent[]): Promise<void> {
    if (events.length === 0) return;
    await this.publisher.publish(this.channel, encodeEvents(events));
  }

  async close(): Promise<void> {
    this.subscriber.disconnect();
  }
}
