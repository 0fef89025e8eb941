import type { ServerResponse } from 'node:http';

/**
 * Ends responses whose client stopped reading: a response that has had output waiting for the
 * socket (`writableNeedDrain`) for longer than `stallMs` is destroyed. A subscriber that never
 * reads its event stream, or a download held open at zero bytes a second, would otherwise keep
 * its socket, its buffers and (for stream mode) an origin connection forever. One timer for all
 * responses; tracking a response is a Set insertion. A response that has ended needs no
 * tracking: Node reports `writableNeedDrain` false once it has (its last bytes are the socket's).
 */
export function createStallGuard(stallMs: number) {
  const open = new Map<ServerResponse, number>();
  const tick = Math.max(100, Math.min(1000, Math.floor(stallMs / 4)));
  const timer = setInterval(() => {
    const now = performance.now();
    for (const [res, since] of open) {
      if (!res.writableNeedDrain) {
        if (since !== 0) open.set(res, 0);
      } else if (since === 0) {
        open.set(res, now);
      } else if (now - since >= stallMs) {
        open.delete(res);
        res.destroy(new Error('the client stopped reading'));
      }
    }
  }, tick);
  timer.unref();
  return {
    track(res: ServerResponse): void {
      open.set(res, 0);
      res.once('close', () => open.delete(res));
    },
    stop(): void {
      clearInterval(timer);
      open.clear();
    },
  };
}
