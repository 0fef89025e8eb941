import { type EventBus, LocalFanout, type SignedUrlEvent, type SignedUrlListener } from './event-bus.js';

/** Embedded mode: one process, so publishing is delivering. */
export class MemoryEventBus implements EventBus {
  readonly kind = 'memory' as const;
  private readonly fanout = new LocalFanout();

  constructor(private readonly onListenerError: (err: unknown) => void = () => {}) {}

  async publish(events: readonly SignedUrlEvent[]): Promise<void> {
    this.fanout.deliver(events, this.onListenerError);
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
  async close(): Promise<void> {}
}
