import type { IncomingMessage } from 'node:http';

/** Seconds an upload's body may take before the rate floor applies (headers, a slow start). */
export const SLOW_BODY_GRACE_MS = 10_000;

/**
 * Cuts a request whose body arrives slower than `minBytesPerSecond`: it may take
 * `SLOW_BODY_GRACE_MS` plus a second for each `minBytesPerSecond` bytes received so far (Apache's
 * mod_reqtimeout rule), so a client that keeps to the floor is never cut, and one that trickles
 * a byte now and then (holding an upload slot, which other viewers then wait for) is cut within
 * seconds of the grace. Node's own `requestTimeout` (300 s) would hold the slot five minutes,
 * again at each reconnect.
 *
 * Bytes are read off the socket (`bytesRead`, headers and all; counted from the guard's start),
 * polled once a second: the body's own stream is the parser's. Returns the stop, which the caller
 * runs once the body is read (or failed); `onCut` is told before the connection is destroyed.
 */
export function guardSlowBody(
  req: IncomingMessage,
  minBytesPerSecond: number,
  onCut: (received: number, elapsedMs: number) => void,
  graceMs = SLOW_BODY_GRACE_MS,
): () => void {
  const socket = req.socket;
  const start = performance.now();
  const base = socket.bytesRead;
  const timer = setInterval(
    () => {
      const elapsed = performance.now() - start;
      const received = socket.bytesRead - base;
      if (elapsed <= graceMs + (received / minBytesPerSecond) * 1000) return;
      clearInterval(timer);
      onCut(received, elapsed);
      socket.destroy();
    },
    Math.min(1000, graceMs / 4),
  );
  timer.unref();
  return () => clearInterval(timer);
}
