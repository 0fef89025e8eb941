import { type EventBus, LocalFanout, type UrlEvent, type UrlEventListener } from './event-bus.js';

/** Embedded mode: one process, so publishing is delivering. */
export class MemoryEventBus implements EventBus {
  readonly kind = 'memory' as const;
  private readonly fanout = new LocalFanout();

  async publish(events: readonly UrlEvent[]): Promise<void> {
    this.fanout.deliver(events);
  }
  subscribe(ids: readonly string[], listener: UrlEventListener): () => void {
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
