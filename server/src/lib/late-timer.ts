/**
 * Runs `fn` once the I/O that is already waiting has been read: in this turn of the event loop's
 * check phase, which comes after its poll phase. A deadline timer fires in the timers phase,
 * before that turn's poll: when this process has been busy for longer than the deadline, the
 * answer it is waiting for may be sitting unread in a socket. Deadlines look again here, so they
 * measure the other side's lateness, not this process's own.
 */
export function afterPendingIo(fn: () => void): void {
  setImmediate(fn);
}

/**
 * `p`, or a rejection with `message` if it has not settled `ms` after the call (counting what
 * arrived while this process was busy as on time, see `afterPendingIo`).
 */
export function withDeadline<T>(p: Promise<T>, ms: number, message: string): Promise<T> {
  // A promise settles once: a rejection after `p` has settled (it was read in the poll phase
  // before the check) is a no-op, so no flag is needed to tell which came first.
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => afterPendingIo(() => reject(new Error(message))), ms);
    p.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (err: unknown) => {
        clearTimeout(timer);
        reject(err);
      },
    );
  });
}
