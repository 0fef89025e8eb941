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
  return new EndOnAbort(source[Symbol.asyncIterator](), signal, waiters);
}

/**
 * A class, not an object literal of closures: it is held for as long as its subscription is
 * open, and as closures each one cost six functions, their contexts and a name string built for
 * its computed `[Symbol.asyncIterator]` key (a heap snapshot of 5,000 open subscriptions;
 * docs/benchmarks.md, finding 42).
 */
class EndOnAbort<T> implements AsyncIterableIterator<T> {
  private finished = false;
  private forget: (() => void) | undefined;
  /** Settles the `next()` in flight (at most one: yoga asks for the next event once it has sent one). */
  private wake: ((r: IteratorResult<T>) => void) | undefined;
  /** Bound once: the waiter set holds it. */
  private readonly finishNow = () => this.finish();

  constructor(
    private readonly it: AsyncIterator<T>,
    signal: AbortSignal,
    waiters: AbortWaiters,
  ) {
    // Already aborted: the source is stopped at once (a subscription holds a place on the bus).
    if (signal.aborted) this.finish();
    else this.forget = waiters.add(this.finishNow);
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  next(): Promise<IteratorResult<T>> {
    if (this.finished) return Promise.resolve(done<T>());
    return new Promise<IteratorResult<T>>((resolve, reject) => {
      this.wake = resolve;
      this.it.next().then(
        (r) => {
          // Already settled as done by an abort or return().
          if (this.wake !== resolve) return;
          this.wake = undefined;
          if (r.done) this.finish();
          resolve(r);
        },
        (err: unknown) => {
          if (this.wake !== resolve) return;
          this.wake = undefined;
          reject(err);
        },
      );
    });
  }

  async return(): Promise<IteratorResult<T>> {
    this.finish();
    return done<T>();
  }

  async throw(err: unknown): Promise<IteratorResult<T>> {
    this.finish();
    throw err;
  }

  private finish(): void {
    if (this.finished) return;
    this.finished = true;
    this.forget?.();
    const w = this.wake;
    this.wake = undefined;
    w?.(done<T>());
    void Promise.resolve(this.it.return?.()).catch(() => {});
  }
}

function done<T>(): IteratorResult<T> {
  return { done: true, value: undefined };
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
