import type { Redis } from 'ioredis';
import { decodeEvents, type EventUrlOf } from '../../src/events/event-bus.js';
import { decodeSignature } from '../../src/urls/store.js';

/** One refresh event as Redis delivered it: the window's end of the URL, and when it arrived. */
export interface HeardEvent {
  expiresAt: number;
  at: number;
}

/** What these tests read of an event in the compact form: its window's end (no URL is built). */
const windowEndOnly: EventUrlOf = (_id, _key, signature) => {
  const sig = decodeSignature(signature);
  return sig ? { url: '', expiresAt: sig.end * 1000, refreshAt: 0, cached: false } : undefined;
};

/**
 * Every refresh event published on a bus channel from now on, per image, heard by a subscriber of
 * the test's own (not through any node): what was published, whatever a node then delivered.
 * `client` becomes a subscriber connection; `close()` disconnects it.
 */
export async function listenToBus(
  client: Redis,
  channel: string,
): Promise<{ byImage: Map<string, HeardEvent[]>; close(): void }> {
  const byImage = new Map<string, HeardEvent[]>();
  client.on('message', (ch: string, message: string) => {
    if (ch !== channel) return;
    const at = Date.now();
    for (const e of decodeEvents(message, windowEndOnly)) {
      const list = byImage.get(e.imageId) ?? [];
      list.push({ expiresAt: e.signedUrl.expiresAt, at });
      byImage.set(e.imageId, list);
    }
  });
  await client.subscribe(channel);
  return { byImage, close: () => client.disconnect() };
}
