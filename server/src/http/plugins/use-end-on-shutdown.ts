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
 */
export function endOnAbort<T>(
  source: AsyncIterable<T>,
  signal: AbortSignal,
  waiters: AbortWaiters = abortWaiters(signal),
): AsyncIterableIterator<T> {
  const it = source[Symbol.asyncIterator]();
  let finished = false;
  let forget = () => {};
  const done = (): IteratorResult<T> => ({ done: true, value: undefined });
  const stopped = new Promise<IteratorResult<T>>((resolve) => {
    if (signal.aborted) resolve(done());
    else forget = waiters.add(() => resolve(done()));
  });
  const finish = () => {
    if (finished) return;
    finished = true;
    forget();
    void Promise.resolve(it.return?.()).catch(() => {});
  };
  return {
    [Symbol.asyncIterator]() {
      return this;
    },
    async next() {
      if (finished) return done();
      const r = await Promise.race([it.next(), stopped]);
      if (r.done) finish();
      return r;
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
export function useEndOnShutdown(signal: AbortSignal | undefined): Plugin {
  if (!signal) return {};
  const waiters = abortWaiters(signal);
  return {
    onSubscribe: () => ({
      onSubscribeResult({ result, setResult }) {
        if (isAsyncIterable(result)) setResult(endOnAbort(result, signal, waiters));
      },
    }),
  };
}
