import { Cluster } from 'ioredis';
import type { RedisClient } from './connect.js';

/** Runs `send`, and whatever commands it sends leave together. */
export type SendTogether = <T>(send: () => T) => T;

/** Without Redis (or on a Cluster): `send` runs as it is. */
export const sendAsIs: SendTogether = (send) => send();

/**
 * Runs `send` with the connection's socket corked, so the commands it sends are handed to the
 * socket in one `writev` instead of a write each. The signer sends a step's refresh event and its
 * write-back this way (urls/signer.ts): one round trip on the wire, and no gap between two writes
 * in which a descheduled process could be killed. The guarantee that a stored step was announced
 * is the order (the event first; Redis runs a connection's commands in order), not this. On a
 * Cluster the write-back spreads over several nodes' sockets: there commands go as they come.
 * See docs/architecture.md, "Freshness".
 */
export function sendTogether(client: RedisClient): SendTogether {
  if (client instanceof Cluster) return sendAsIs;
  return (send) => {
    // Read at each call: a reconnect replaces the socket.
    const socket = client.stream;
    if (!socket?.writable) return send();
    socket.cork();
    try {
      return send();
    } finally {
      socket.uncork();
    }
  };
}
