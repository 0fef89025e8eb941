import { getEventListeners } from 'node:events';
import { describe, expect, it } from 'vitest';
import { abortWaiters, endOnAbort } from './use-end-on-shutdown.js';

describe('endOnAbort', () => {
  it('passes values through, then ends a pending next() as soon as the signal aborts', async () => {
    let returned = false;
    const never = new Promise<never>(() => {});
    async function* source() {
      try {
        yield 1;
        await never; // a subscription waiting for its next event
      } finally {
        returned = true;
      }
    }
    const ac = new AbortController();
    const it = endOnAbort(source(), ac.signal);
    expect(await it.next()).toEqual({ done: false, value: 1 });
    const pending = it.next();
    ac.abort();
    expect(await pending).toEqual({ done: true, value: undefined });
    expect(await it.next()).toEqual({ done: true, value: undefined });
    // A native generator stuck in an await cannot run its finally block; nothing waits for it.
    expect(returned).toBe(false);
  });

  it('ends at once when the signal has already aborted, and return() stops the source', async () => {
    const ac = new AbortController();
    ac.abort();
    async function* source() {
      yield 1;
    }
    expect(await endOnAbort(source(), ac.signal).next()).toEqual({ done: true, value: undefined });
    let stopped = false;
    const src: AsyncIterable<number> = {
      [Symbol.asyncIterator]: () => ({
        next: async () => ({ done: false, value: 2 }),
        return: async () => {
          stopped = true;
          return { done: true, value: undefined };
        },
      }),
    };
    const it = endOnAbort(src, new AbortController().signal);
    await it.next();
    await it.return!();
    expect(stopped).toBe(true);
  });

  it('return() settles a next() in flight as done, and the source is stopped when the signal had aborted', async () => {
    let stops = 0;
    const waiting = (): AsyncIterable<number> => ({
      [Symbol.asyncIterator]: () => ({
        next: () => new Promise<IteratorResult<number>>(() => {}),
        return: async () => {
          stops++;
          return { done: true, value: undefined };
        },
      }),
    });
    const it = endOnAbort(waiting(), new AbortController().signal);
    const pending = it.next();
    await it.return!();
    expect(await pending).toEqual({ done: true, value: undefined });
    const ac = new AbortController();
    ac.abort();
    endOnAbort(waiting(), ac.signal);
    expect(stops).toBe(2);
  });

  it('many subscriptions share one abort listener, and ones that end leave nothing behind', async () => {
    const ac = new AbortController();
    const waiters = abortWaiters(ac.signal);
    const forever = (): AsyncIterable<number> => ({
      [Symbol.asyncIterator]: () => ({ next: () => new Promise<IteratorResult<number>>(() => {}) }),
    });
    const its = Array.from({ length: 1000 }, () => endOnAbort(forever(), ac.signal, waiters));
    const pending = its.map((it) => it.next());
    expect(getEventListeners(ac.signal, 'abort')).toHaveLength(1);
    // Half end on their own (the client left): aborting later only wakes the other half.
    await Promise.all(its.slice(0, 500).map((it) => it.return!()));
    ac.abort();
    const results = await Promise.all(pending.slice(500));
    expect(results.every((r) => r.done)).toBe(true);
  });
});
