import { describe, expect, it } from 'vitest';
import { endOnAbort } from './use-end-on-shutdown.js';

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
});
