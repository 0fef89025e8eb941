import { isAsyncIterable, type Plugin } from 'graphql-yoga';

/**
 * Ends a subscription's stream when `signal` aborts: the pending `next()` settles as done, so
 * yoga sends the SSE `complete` event and closes the response cleanly. The source is told to
 * stop without waiting for it (an async generator would only return after its next event).
 */
export function endOnAbort<T>(source: AsyncIterable<T>, signal: AbortSignal): AsyncIterableIterator<T> {
  const it = source[Symbol.asyncIterator]();
  let finished = false;
  const done = (): IteratorResult<T> => ({ done: true, value: undefined });
  const stopped = new Promise<IteratorResult<T>>((resolve) => {
    if (signal.aborted) resolve(done());
    else signal.addEventListener('abort', () => resolve(done()), { once: true });
  });
  const finish = () => {
    if (finished) return;
    finished = true;
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
  return {
    onSubscribe: () => ({
      onSubscribeResult({ result, setResult }) {
        if (isAsyncIterable(result)) setResult(endOnAbort(result, signal));
      },
    }),
  };
}
