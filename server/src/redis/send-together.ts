import { Cluster } from 'ioredis';
import type { RedisClient } from './connect.js';

/** Runs `send`, and whatever commands it sends leave together. */
export type SendTogether = <T>(send: () => T) => T;

/** Without Redis (or on a Cluster): `send` runs as it is. */
export const sendAsIs: SendTogether = (send) => send();

/**
 * Runs `send` with the connection's socket corked, so every command it sends leaves in one
 * `writev`: one system call. Sent as two writes, a signing's write-back and its refresh event were
 * two system calls, and a node killed between them (descheduled there, then SIGKILLed: the only
 * cause found for a CI failure of the three-node test) left a grid step stored in Redis and
 * announced to nobody: every other node read it as current, so no one signed or published it
 * again, and subscribers kept the old URL until it expired. One system call leaves whole or not
 * at all. On a Cluster the write-back
 * spreads over several nodes' sockets, so there it is sent as before. See docs/architecture.md,
 * "Freshness".
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
