import { isAsyncIterable, type Plugin } from 'graphql-yoga';

export interface AbortWaiters {
  /** Calls `wake` when the signal aborts; returns the function that forgets it. */
  add(wake: () => void): () => void;
}

/**
 * One 'abort' listener for any number of waiting subscriptions. A listener each made opening
 * subscriptions quadratic (EventTarget walks its listeners on every add: 10,000 subscriptions took
 * half a minute of CPU in the benchmark) and leaked one per subscription that ended on its own.
 */
export function abortWaiters(signal: AbortSignal): AbortWaiters {
  const waiting = new Set<() => void>();
  signal.addEventListener(
    'abort',
    () => {
      for (const wake of waiting) wake();
      waiting.clear();
    },
    { once: true },
  );
  return {
    add(wake) {
      waiting.add(wake);
      return () => waiting.delete(wake);
    },
  };
}

/**
 * Ends a subscription's stream when `signal` aborts: the pending `next()` settles as done, so
 * yoga sends the SSE `complete` event and closes the response cleanly. The source is told to
 * stop without waiting for it (an async generator would only return after its next event).
 *
 * The pending `next()` is woken directly, not raced against a promise of the abort: a
 * `Promise.race` with that long-lived promise left one reaction on it per event, kept until the
 * process shut down, and added a race's promises to every event of every subscriber.
 */
export function endOnAbort<T>(
  source: AsyncIterable<T>,
  signal: AbortSignal,
  waiters: AbortWaiters = abortWaiters(signal),
): AsyncIterableIterator<T> {
  const it = source[Symbol.asyncIterator]();
  let finished = false;
  let forget = () => {};
  /** Settles the `next()` in flight (at most one: yoga asks for the next event once it has sent one). */
  let wake: ((r: IteratorResult<T>) => void) | undefined;
  const done = (): IteratorResult<T> => ({ done: true, value: undefined });
  const finish = () => {
    if (finished) return;
    finished = true;
    forget();
    const w = wake;
    wake = undefined;
    w?.(done());
    void Promise.resolve(it.return?.()).catch(() => {});
  };
  // Already aborted: the source is stopped at once (a subscription holds a place on the bus).
  if (signal.aborted) finish();
  else forget = waiters.add(finish);
  return {
    [Symbol.asyncIterator]() {
      return this;
    },
    next() {
      if (finished) return Promise.resolve(done());
      return new Promise<IteratorResult<T>>((resolve, reject) => {
        wake = resolve;
        it.next().then(
          (r) => {
            // Already settled as done by an abort or return().
            if (wake !== resolve) return;
            wake = undefined;
            if (r.done) finish();
            resolve(r);
          },
          (err: unknown) => {
            if (wake !== resolve) return;
            wake = undefined;
            reject(err);
          },
        );
      });
    },
    async return() {
      finish();
      return done();
    },
    async throw(err) {
      finish();
      throw err;
    },
  };
}

/** Ends every open subscription when the process shuts down (graceful SIGTERM). */
export function useEndOnShutdown(
  signal: AbortSignal | undefined,
  waiters: AbortWaiters | undefined = signal && abortWaiters(signal),
): Plugin {
  if (!signal || !waiters) return {};
  return {
    onSubscribe: () => ({
      onSubscribeResult({ result, setResult }) {
        if (isAsyncIterable(result)) setResult(endOnAbort(result, signal, waiters));
      },
    }),
  };
}
