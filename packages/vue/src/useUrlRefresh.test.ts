import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  createUrlRefresh,
  type FreshUrl,
  type StreamHandlers,
  UNREACHABLE,
  type UrlRefreshTransport,
} from './useUrlRefresh';

const fresh = (name: string, expiresAt = '2030-01-01T00:00:00.000Z'): FreshUrl => ({
  url: `https://bucket.test/${name}`,
  expiresAt,
});

/** The network edge, recorded: each open stream can be fed events or dropped by the test. */
function fakeTransport() {
  const streams: { ids: string[]; handlers: StreamHandlers; closed: boolean }[] = [];
  const transport: UrlRefreshTransport = {
    subscribe: vi.fn((ids, handlers) => {
      const stream = { ids, handlers, closed: false };
      streams.push(stream);
      return () => {
        stream.closed = true;
      };
    }),
    fetchUrls: vi.fn(async (ids: string[]) => ids.map((id) => ({ id, signedUrl: fresh(`refetched-${id}`) }))),
    refreshUrls: vi.fn(async (ids: string[]) => ids.map((id) => fresh(`refreshed-${id}`))),
  };
  const open = () => streams.filter((s) => !s.closed);
  return { transport, streams, open };
}

describe('createUrlRefresh', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('holds one subscription for every tracked image and routes events by id', async () => {
    const t = fakeTransport();
    const urls = createUrlRefresh(t.transport);
    const seen: Record<string, string[]> = { a: [], b: [], c: [] };
    for (const id of ['a', 'b', 'c']) urls.track(id, (u) => seen[id]!.push(u.url));
    expect(t.transport.subscribe).not.toHaveBeenCalled(); // waits for the set to settle
    await vi.advanceTimersByTimeAsync(400);
    expect(t.transport.subscribe).toHaveBeenCalledTimes(1);
    expect(t.open()[0]!.ids).toEqual(['a', 'b', 'c']);
    expect(urls.state.value).toBe('live');

    t.open()[0]!.handlers.next({ imageId: 'b', signedUrl: fresh('b2') });
    expect(seen).toEqual({ a: [], b: ['https://bucket.test/b2'], c: [] });
    expect(t.transport.fetchUrls).not.toHaveBeenCalled();
  });

  it('covers at most 500 ids (the gateway refuses more) and says once that the others get no pushes', async () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    try {
      const t = fakeTransport();
      const urls = createUrlRefresh(t.transport);
      const ids = Array.from({ length: 502 }, (_, i) => `id-${String(i).padStart(3, '0')}`);
      for (const id of ids.slice(0, 501)) urls.track(id, () => {});
      await vi.advanceTimersByTimeAsync(400);
      expect(t.open()[0]!.ids).toEqual(ids.slice(0, 500));
      urls.track(ids[501]!, () => {});
      await vi.advanceTimersByTimeAsync(400);
      expect(warn).toHaveBeenCalledTimes(1);
      expect(warn).toHaveBeenCalledWith(expect.stringMatching(/501 images are tracked.*at most 500 ids/));
    } finally {
      warn.mockRestore();
    }
  });

  it('resubscribes when the visible set changes, opening the new stream before closing the old', async () => {
    const t = fakeTransport();
    const urls = createUrlRefresh(t.transport);
    const stopA = urls.track('a', () => {});
    urls.track('b', () => {});
    await vi.advanceTimersByTimeAsync(400);
    const first = t.streams[0]!;
    first.handlers.open?.(); // the server has it

    vi.mocked(t.transport.subscribe).mockImplementationOnce((ids, handlers) => {
      expect(first.closed).toBe(false); // make before break: no event can fall in a gap
      t.streams.push({ ids, handlers, closed: false });
      const s = t.streams.at(-1)!;
      return () => {
        s.closed = true;
      };
    });
    stopA();
    urls.track('c', () => {});
    await vi.advanceTimersByTimeAsync(400);
    // Until the new stream is open on the server, the old one still delivers (b's events).
    const seen: string[] = [];
    urls.track('b', (u) => seen.push(u.url));
    expect(first.closed).toBe(false);
    first.handlers.next({ imageId: 'b', signedUrl: fresh('b-during-handover') });
    expect(seen).toEqual(['https://bucket.test/b-during-handover']);
    t.streams[1]!.handlers.open?.();
    expect(first.closed).toBe(true);
    expect(t.open().map((s) => s.ids)).toEqual([['b', 'c']]);

    // The old stream ending now is expected, not a drop.
    first.handlers.complete();
    expect(urls.state.value).toBe('live');
    await vi.advanceTimersByTimeAsync(60_000);
    expect(t.transport.subscribe).toHaveBeenCalledTimes(2);
  });

  it('keeps a replaced stream only if it was open, and at most 10 s for a successor that does not open', async () => {
    const t = fakeTransport();
    const urls = createUrlRefresh(t.transport);
    urls.track('a', () => {});
    await vi.advanceTimersByTimeAsync(400);
    t.streams[0]!.handlers.open?.();
    urls.track('b', () => {});
    await vi.advanceTimersByTimeAsync(400);
    expect(t.open()).toHaveLength(2); // the open one waits for its successor
    await vi.advanceTimersByTimeAsync(10_000);
    expect(t.open().map((s) => s.ids)).toEqual([['a', 'b']]); // which never opened: gone anyway

    // Changes while the newest has not opened: the ones that never opened are closed at once, so
    // a scroll does not pile up requests; the last open one stays until the newest opens.
    t.streams[1]!.handlers.open?.();
    urls.track('c', () => {});
    await vi.advanceTimersByTimeAsync(400);
    urls.track('d', () => {});
    await vi.advanceTimersByTimeAsync(400);
    urls.track('e', () => {});
    await vi.advanceTimersByTimeAsync(400);
    expect(t.open().map((s) => s.ids)).toEqual([
      ['a', 'b'],
      ['a', 'b', 'c', 'd', 'e'],
    ]);
    t.streams.at(-1)!.handlers.open?.();
    expect(t.open().map((s) => s.ids)).toEqual([['a', 'b', 'c', 'd', 'e']]);

    // Disposing closes what is waiting to be replaced too.
    urls.track('f', () => {});
    await vi.advanceTimersByTimeAsync(400);
    expect(t.open()).toHaveLength(2);
    urls.dispose();
    expect(t.open()).toHaveLength(0);
  });

  it('closes the subscription when nothing is visible', async () => {
    const t = fakeTransport();
    const urls = createUrlRefresh(t.transport);
    const stop = urls.track('a', () => {});
    await vi.advanceTimersByTimeAsync(400);
    stop();
    await vi.advanceTimersByTimeAsync(400);
    expect(t.open()).toEqual([]);
    expect(urls.state.value).toBe('idle');
  });

  it('after a dropped stream resubscribes with growing backoff and refetches the visible URLs', async () => {
    const t = fakeTransport();
    // The waits fixed here (the default draws them at random: below).
    const urls = createUrlRefresh(t.transport, { reconnectDelayMs: (n) => 1000 * 2 ** (n - 1) });
    const got: string[] = [];
    urls.track('a', (u) => got.push(u.url));
    urls.track('b', () => {});
    await vi.advanceTimersByTimeAsync(400);

    t.streams[0]!.handlers.error(new Error('connection reset'));
    expect(urls.state.value).toBe('reconnecting');
    await vi.advanceTimersByTimeAsync(999);
    expect(t.transport.subscribe).toHaveBeenCalledTimes(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(t.transport.subscribe).toHaveBeenCalledTimes(2);
    expect(urls.state.value).toBe('live');
    expect(t.transport.fetchUrls).not.toHaveBeenCalled(); // once the new stream is open
    t.streams[1]!.handlers.open?.();
    expect(t.transport.fetchUrls).toHaveBeenCalledWith(['a', 'b']);
    await vi.advanceTimersByTimeAsync(0);
    expect(got).toEqual(['https://bucket.test/refetched-a']);

    // Dropped again at once: the next wait doubles.
    t.streams[1]!.handlers.complete();
    await vi.advanceTimersByTimeAsync(1999);
    expect(t.transport.subscribe).toHaveBeenCalledTimes(2);
    await vi.advanceTimersByTimeAsync(1);
    expect(t.transport.subscribe).toHaveBeenCalledTimes(3);

    // An event proves the stream healthy: the backoff starts over.
    t.streams[2]!.handlers.next({ imageId: 'a', signedUrl: fresh('a3') });
    t.streams[2]!.handlers.error(new Error('again'));
    await vi.advanceTimersByTimeAsync(1000);
    expect(t.transport.subscribe).toHaveBeenCalledTimes(4);
    urls.dispose();
    expect(t.open()).toEqual([]);
  });

  it('reconnects after a random wait (full jitter), so pages that lost the stream together do not come back together', async () => {
    // 50 pages of one gateway that restarted: each loses its stream at the same instant.
    const pages = Array.from({ length: 50 }, () => {
      const t = fakeTransport();
      const urls = createUrlRefresh(t.transport);
      urls.track('a', () => {});
      return { t, urls };
    });
    await vi.advanceTimersByTimeAsync(400);
    for (const { t } of pages) t.streams[0]!.handlers.error(new Error('gateway restarting'));
    const start = Date.now();
    const reconnectedAt = new Map<number, number>();
    for (let ms = 0; ms <= 1000; ms += 10) {
      pages.forEach(({ t }, i) => {
        if (t.streams.length > 1 && !reconnectedAt.has(i)) reconnectedAt.set(i, Date.now() - start);
      });
      await vi.advanceTimersByTimeAsync(10);
    }
    // Every page is back within the first step's 1 s, not one of them before 250 ms …
    expect(reconnectedAt.size).toBe(50);
    const waits = [...reconnectedAt.values()];
    expect(Math.min(...waits)).toBeGreaterThanOrEqual(250);
    // … and spread over it: a fixed 1 s brought all 50 in the same instant.
    expect(new Set(waits.map((w) => Math.floor(w / 100))).size).toBeGreaterThanOrEqual(5);

    // Later attempts: the wait is drawn up to the doubled cap (Math.random = 0.5: half of it).
    const random = vi.spyOn(Math, 'random').mockReturnValue(0.5);
    try {
      const { t } = pages[0]!;
      t.streams[1]!.handlers.error(new Error('still down')); // attempt 2: up to 2 s
      await vi.advanceTimersByTimeAsync(999);
      expect(t.streams).toHaveLength(2);
      await vi.advanceTimersByTimeAsync(1);
      expect(t.streams).toHaveLength(3);
      random.mockReturnValue(0); // never less than the floor
      t.streams[2]!.handlers.error(new Error('still down'));
      await vi.advanceTimersByTimeAsync(249);
      expect(t.streams).toHaveLength(3);
      await vi.advanceTimersByTimeAsync(1);
      expect(t.streams).toHaveLength(4);
    } finally {
      random.mockRestore();
      for (const { urls } of pages) urls.dispose();
    }
  });

  it('refetches after a drop once a stream is open again, not at every attempt while the gateway is down', async () => {
    const t = fakeTransport();
    const urls = createUrlRefresh(t.transport, { reconnectDelayMs: () => 1000 });
    const got: string[] = [];
    urls.track('a', (u) => got.push(u.url));
    await vi.advanceTimersByTimeAsync(400);
    t.streams[0]!.handlers.open?.();
    t.streams[0]!.handlers.error(new Error('gateway gone'));
    // Five attempts fail before the gateway answers: nothing is refetched meanwhile.
    for (let i = 1; i <= 5; i++) {
      await vi.advanceTimersByTimeAsync(1000);
      expect(t.streams).toHaveLength(i + 1);
      t.streams[i]!.handlers.error(new TypeError('Failed to fetch'));
    }
    expect(t.transport.fetchUrls).not.toHaveBeenCalled();
    // The set changes while reconnecting: the stream that opens (whichever) brings the refetch.
    await vi.advanceTimersByTimeAsync(1000);
    urls.track('b', () => {});
    await vi.advanceTimersByTimeAsync(400);
    const last = t.streams.at(-1)!;
    expect(last.ids).toEqual(['a', 'b']);
    expect(t.transport.fetchUrls).not.toHaveBeenCalled();
    last.handlers.open?.();
    expect(t.transport.fetchUrls).toHaveBeenCalledTimes(1);
    expect(t.transport.fetchUrls).toHaveBeenCalledWith(['a', 'b']);
    await vi.advanceTimersByTimeAsync(0);
    expect(got).toEqual(['https://bucket.test/refetched-a']);
    // Open and healthy: a resubscribe for a scroll refetches nothing.
    urls.track('c', () => {});
    await vi.advanceTimersByTimeAsync(400);
    t.streams.at(-1)!.handlers.open?.();
    expect(t.transport.fetchUrls).toHaveBeenCalledTimes(1);
    urls.dispose();
  });

  it('refetches after a drop with a transport that never reports open: at its first event, or once it has not failed for 3 s', async () => {
    const t = fakeTransport();
    const urls = createUrlRefresh(t.transport, { reconnectDelayMs: () => 1000 });
    const got: string[] = [];
    urls.track('a', (u) => got.push(u.url));
    urls.track('b', () => {});
    await vi.advanceTimersByTimeAsync(400);
    t.streams[0]!.handlers.error(new Error('dropped'));
    await vi.advanceTimersByTimeAsync(1000);
    // No open, no event: the stream is taken as open after the grace.
    await vi.advanceTimersByTimeAsync(2900);
    expect(t.transport.fetchUrls).not.toHaveBeenCalled();
    await vi.advanceTimersByTimeAsync(200);
    expect(t.transport.fetchUrls).toHaveBeenCalledTimes(1);
    await vi.advanceTimersByTimeAsync(0);
    expect(got).toEqual(['https://bucket.test/refetched-a']);
    // Dropped again: this time an event comes first, and brings the refetch at once.
    t.streams[1]!.handlers.error(new Error('dropped'));
    await vi.advanceTimersByTimeAsync(1000);
    t.streams[2]!.handlers.next({ imageId: 'b', signedUrl: fresh('pushed-b') });
    expect(t.transport.fetchUrls).toHaveBeenCalledTimes(2);
    await vi.advanceTimersByTimeAsync(5000);
    expect(t.transport.fetchUrls).toHaveBeenCalledTimes(2);
    urls.dispose();
  });

  it('reconnects at once when the browser is back online, rather than waiting out its backoff', async () => {
    const t = fakeTransport();
    const urls = createUrlRefresh(t.transport, { reconnectDelayMs: () => 30_000 });
    urls.track('a', () => {});
    await vi.advanceTimersByTimeAsync(400);
    t.streams[0]!.handlers.error(new TypeError('Failed to fetch'));
    await vi.advanceTimersByTimeAsync(5000);
    expect(t.streams).toHaveLength(1);
    window.dispatchEvent(new Event('online'));
    expect(t.streams).toHaveLength(2);
    t.streams[1]!.handlers.open?.();
    expect(t.transport.fetchUrls).toHaveBeenCalledWith(['a']);
    // Only a reconnect that was waiting: a live stream is left as it is, and the timer is gone.
    window.dispatchEvent(new Event('online'));
    await vi.advanceTimersByTimeAsync(30_000);
    expect(t.streams).toHaveLength(2);
    // Once disposed, it no longer listens.
    t.streams[1]!.handlers.error(new TypeError('Failed to fetch'));
    urls.dispose();
    window.dispatchEvent(new Event('online'));
    expect(t.streams).toHaveLength(2);
  });

  it('batches refreshes that arrive together into one refreshSignedUrls call', async () => {
    const t = fakeTransport();
    const urls = createUrlRefresh(t.transport);
    const results = Promise.all([urls.refresh('a'), urls.refresh('b'), urls.refresh('a')]);
    await vi.advanceTimersByTimeAsync(20);
    expect(t.transport.refreshUrls).toHaveBeenCalledTimes(1);
    expect(t.transport.refreshUrls).toHaveBeenCalledWith(['a', 'b']);
    expect((await results).map((u) => (typeof u === 'object' ? u?.url : u))).toEqual([
      'https://bucket.test/refreshed-a',
      'https://bucket.test/refreshed-b',
      'https://bucket.test/refreshed-a',
    ]);

    // A call the gateway answered with an error: null, a spent try for SmartImage.
    vi.mocked(t.transport.refreshUrls).mockRejectedValueOnce(new Error('gateway refused'));
    const failed = urls.refresh('c');
    await vi.advanceTimersByTimeAsync(20);
    expect(await failed).toBeNull();

    // A call that never reached the gateway (fetch failed; a proxy's 502 for a gateway away):
    // UNREACHABLE to each of its waiters, which says nothing of the images.
    for (const err of [
      new TypeError('Failed to fetch'),
      Object.assign(new Error('Network error'), { networkError: new TypeError('Failed to fetch') }),
      Object.assign(new Error('Response not successful'), { networkError: { statusCode: 502 } }),
    ]) {
      vi.mocked(t.transport.refreshUrls).mockRejectedValueOnce(err);
      const unreached = Promise.all([urls.refresh('d'), urls.refresh('e')]);
      await vi.advanceTimersByTimeAsync(20);
      expect(await unreached).toEqual([UNREACHABLE, UNREACHABLE]);
    }
  });

  it('answers null to refreshes still waiting for their batch when disposed, and to any asked after', async () => {
    const t = fakeTransport();
    const urls = createUrlRefresh(t.transport);
    const waiting = Promise.all([urls.refresh('a'), urls.current('b')]);
    urls.dispose();
    expect(await waiting).toEqual([null, null]);
    expect(await urls.refresh('c')).toBeNull();
    await vi.advanceTimersByTimeAsync(100);
    expect(t.transport.refreshUrls).not.toHaveBeenCalled();
    expect(t.transport.fetchUrls).not.toHaveBeenCalled();
  });

  it('sends no further chunk of a batch once disposed: the rest of its waiters get null', async () => {
    const t = fakeTransport();
    const urls = createUrlRefresh(t.transport);
    let answer!: () => void;
    vi.mocked(t.transport.refreshUrls).mockImplementationOnce(
      (ids) =>
        new Promise((resolve) => {
          answer = () => resolve(ids.map((id) => fresh(`refreshed-${id}`)));
        }),
    );
    const ids = Array.from({ length: 600 }, (_, i) => `id-${i}`);
    const results = Promise.all(ids.map((id) => urls.refresh(id)));
    await vi.advanceTimersByTimeAsync(20);
    expect(t.transport.refreshUrls).toHaveBeenCalledTimes(1); // the first 500
    urls.dispose();
    answer();
    const got = await results;
    expect(got.slice(0, 500).every((u) => u !== null)).toBe(true);
    expect(got.slice(500).every((u) => u === null)).toBe(true);
    expect(t.transport.refreshUrls).toHaveBeenCalledTimes(1);
  });

  it('batches current-URL reads into one imagesByIds call, separate from re-signs', async () => {
    const t = fakeTransport();
    const urls = createUrlRefresh(t.transport);
    vi.mocked(t.transport.fetchUrls).mockImplementationOnce(async (ids) =>
      ids.map((id) => (id === 'gone' ? null : { id, signedUrl: fresh(`current-${id}`) })),
    );
    const results = Promise.all([urls.current('a'), urls.current('gone'), urls.current('b')]);
    await vi.advanceTimersByTimeAsync(20);
    expect(t.transport.fetchUrls).toHaveBeenCalledTimes(1);
    expect(t.transport.fetchUrls).toHaveBeenCalledWith(['a', 'gone', 'b']);
    expect(t.transport.refreshUrls).not.toHaveBeenCalled();
    expect((await results).map((u) => u?.url ?? null)).toEqual([
      'https://bucket.test/current-a',
      null, // not visible (deleted, or not the viewer's)
      'https://bucket.test/current-b',
    ]);

    vi.mocked(t.transport.fetchUrls).mockRejectedValueOnce(new Error('gateway down'));
    const failed = urls.current('c');
    await vi.advanceTimersByTimeAsync(20);
    expect(await failed).toBeNull();
  });
});
