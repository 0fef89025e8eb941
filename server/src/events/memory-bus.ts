import { type AccessChange, FanoutBus, type SignedUrlEvent, type WritePin } from './event-bus.js';

/** Embedded mode: one process, so publishing is delivering. */
export class MemoryEventBus extends FanoutBus {
  readonly kind = 'memory' as const;

  constructor(private readonly onListenerError: (err: unknown) => void = () => {}) {
    super();
  }

  async publish(events: readonly SignedUrlEvent[]): Promise<void> {
    this.fanout.deliver(events, this.onListenerError);
  }

  async publishAccessChanges(changes: readonly AccessChange[]): Promise<void> {
    this.deliverAccess(changes, this.onListenerError);
  }

  async publishAnimated(imageIds: readonly string[]): Promise<void> {
    this.deliverAnimated(imageIds, this.onListenerError);
  }

  async publishWritePins(pins: readonly WritePin[]): Promise<void> {
    this.deliverWritePins(pins, this.onListenerError);
  }

  async close(): Promise<void> {}
}
