import type { Redis } from 'ioredis';
import { decodeEvents } from '../../src/events/event-bus.js';

/** One refresh event as Redis delivered it: the window's end of the URL, and when it arrived. */
export interface HeardEvent {
  expiresAt: number;
  at: number;
}

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
    for (const e of decodeEvents(message)) {
      const list = byImage.get(e.imageId) ?? [];
      list.push({ expiresAt: e.signedUrl.expiresAt, at });
      byImage.set(e.imageId, list);
    }
  });
  await client.subscribe(channel);
  return { byImage, close: () => client.disconnect() };
}
