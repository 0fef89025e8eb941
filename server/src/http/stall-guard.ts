import type { ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

/** What the guard knows of a response it has seen waiting. */
interface Waiting {
  /** When it was first seen waiting with no byte sent since (performance.now()); 0: not waiting. */
  since: number;
  /** Its socket's `sentToKernel` then. */
  sent: number;
}

/**
 * Responses the guard cut. A response cut after `end()` reports `writableFinished` at 'close'
 * (its socket's buffer is gone), so the access log and the request counters ask here to count it
 * as `aborted`, not as its status. Weak: an entry lives no longer than its response.
 */
const cut = new WeakSet<ServerResponse>();

/** Whether the stall guard destroyed `res` because its client stopped reading. */
export function wasCut(res: ServerResponse): boolean {
  return cut.has(res);
}

/** libuv's side of a TCP socket: undocumented, hence each field checked before use. */
type Handle = { bytesWritten?: unknown; writeQueueSize?: unknown };

/**
 * How many bytes `socket` has handed to the kernel so far; it grows whenever the client reads.
 * Node's own counters do not show that within one large write: `bytesWritten` counts queued bytes
 * as well, and `writableLength` holds a write's whole size until libuv has written its last byte
 * (a 64 MB `end()` is one write). libuv's TCP handle does: `bytesWritten` (all it was given) less
 * `writeQueueSize` (what it still holds). This server's sockets are plain TCP; on TLS either
 * figure moves only as whole writes complete.
 */
function sentToKernel(socket: Socket): number {
  const handle = (socket as Socket & { _handle?: Handle | null })._handle;
  const given = handle?.bytesWritten;
  const held = handle?.writeQueueSize;
  if (typeof given === 'number' && typeof held === 'number') return given - held;
  return (socket.bytesWritten ?? 0) - socket.writableLength;
}

/**
 * Ends responses whose client stopped reading: a response whose output has waited for the client
 * for `stallMs` with no byte of it taken meanwhile is destroyed. A subscriber that never reads
 * its event stream, or a download held open at zero bytes a second, would otherwise keep its
 * socket, its buffers and (for stream mode) an origin connection forever: the server sets no
 * socket timeout, and keep-alive's only starts once a response has finished.
 *
 * Waiting is output Node holds for the socket: above the high-water mark while the response is
 * written (`writableNeedDrain`), or any of it once the response has ended (`end()` with a body
 * too big for the socket's buffers, such as GraphiQL's page or a large GraphQL answer, reports
 * `writableNeedDrain` false at once but is not `writableFinished` until its last byte reached the
 * kernel). The clock restarts whenever the socket sent bytes since the last tick, so a client
 * that reads slowly but steadily keeps its download; sampling `writableNeedDrain` alone cut it,
 * as a piped body refills the buffer at each drain.
 *
 * One timer for all responses, a few property reads per tracked response per tick; tracking a
 * response is a Map insertion and a 'close' listener, and state is allocated only for one seen
 * waiting at a tick. A response ended at once by its route (`app.ts` does not track those) is a
 * small one whose bytes fit the socket's buffers.
 */
export function createStallGuard(stallMs: number) {
  const open = new Map<ServerResponse, Waiting | null>();
  const tick = Math.max(100, Math.min(1000, Math.floor(stallMs / 4)));
  const timer = setInterval(() => {
    const now = performance.now();
    for (const [res, waiting] of open) {
      const socket = res.socket;
      // Without a socket a response waits its turn behind a pipelined one, which is tracked.
      const waits =
        socket !== null && (res.writableNeedDrain || (res.writableEnded && !res.writableFinished));
      if (!waits) {
        if (waiting) waiting.since = 0;
        continue;
      }
      const sent = sentToKernel(socket);
      if (!waiting) {
        open.set(res, { since: now, sent });
      } else if (waiting.since === 0 || sent !== waiting.sent) {
        waiting.since = now;
        waiting.sent = sent;
      } else if (now - waiting.since >= stallMs) {
        open.delete(res);
        cut.add(res);
        res.destroy(new Error('the client stopped reading'));
      }
    }
  }, tick);
  timer.unref();
  return {
    track(res: ServerResponse): void {
      open.set(res, null);
      res.once('close', () => open.delete(res));
    },
    stop(): void {
      clearInterval(timer);
      open.clear();
    },
  };
}
