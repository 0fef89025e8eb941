import { Cluster } from 'ioredis';
import type { RedisClient } from './connect.js';

/** Runs `send`, and whatever commands it sends leave together. */
export type SendTogether = <T>(send: () => T) => T;

/** Without Redis (or on a Cluster): `send` runs as it is. */
export const sendAsIs: SendTogether = (send) => send();

/**
 * Runs `send` with the connection's socket corked, so the commands it sends are handed to the
 * socket in one `writev` instead of a write each. The signer sends a step's refresh event and its
 * write-back this way (urls/signer.ts): one write where there were two, so they share one round
 * trip on the wire and leave no gap between two writes in which this process could be
 * descheduled and killed. That gap is the only cause found for a CI failure of the three-node
 * test: a step stored in Redis and announced to nobody. What guarantees a stored step was
 * announced is the order, not this: the event goes first on the same connection and Redis runs a
 * connection's commands in order, even when the kernel sends one write in pieces. On a Cluster
 * the write-back spreads over several nodes' sockets, so there commands are sent as they come.
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
