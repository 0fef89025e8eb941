import { type InjectionKey, inject, type Ref, ref } from 'vue';

/**
 * A SignedUrl: where it is and how long it lives, and — from the gateway's pushes, refetches and
 * re-signs, which ask for them — when the gateway re-signs it and whether it came from its cache.
 * A preset's URL comes with the preset's srcset (its 1x entry is `url`), so the two travel and
 * age together.
 */
export interface FreshUrl {
  url: string;
  expiresAt: string;
  refreshAt?: string;
  cached?: boolean;
  srcset?: string | null;
}

export interface UrlEvent {
  imageId: string;
  signedUrl: FreshUrl;
}

export interface StreamHandlers {
  /** The server has the subscription (its response has begun): events from now on reach us. */
  open?(): void;
  next(event: UrlEvent): void;
  error(err: unknown): void;
  complete(): void;
}

/** The network edge, so the logic below is tested without a server. */
export interface UrlRefreshTransport {
  /**
   * Opens one `signedUrlRefreshed(ids)` subscription (with the transport's preset, if any); the
   * returned function closes it.
   */
  subscribe(ids: string[], handlers: StreamHandlers): () => void;
  /** Current URLs of these images (after a dropped subscription; for URLs that ran out unseen). */
  fetchUrls(ids: string[]): Promise<Array<{ id: string; signedUrl: FreshUrl } | null>>;
  /** `refreshSignedUrls(ids)`: forces a re-sign; results in the order of ids. */
  refreshUrls(ids: string[]): Promise<Array<FreshUrl | null>>;
}

export interface UrlRefreshOptions {
  /** Set changes are collected this long before resubscribing (scrolling moves many at once). */
  settleMs?: number;
  /** Refresh (and current-URL) requests are collected this long into one call. */
  batchMs?: number;
  /** Delay before reconnect attempt n (1-based). */
  reconnectDelayMs?: (attempt: number) => number;
  now?: () => number;
}

export type LinkState = 'idle' | 'live' | 'reconnecting';

/**
 * What `refresh` answers when its call did not reach the gateway (the browser offline, the
 * gateway or the proxy before it away): unlike null (the gateway has no URL for the image), it
 * says nothing about the image, so SmartImage spends no try on it and waits for the network.
 */
export const UNREACHABLE = 'unreachable';
export type Unreachable = typeof UNREACHABLE;

/**
 * Whether a failed call never reached the gateway: a fetch that failed (offline, refused, reset;
 * Apollo's `networkError`), or a proxy answering for a gateway that is away (502, 503, 504). A
 * GraphQL error is an answer, not this.
 */
export function isUnreachable(err: unknown): boolean {
  if (typeof navigator !== 'undefined' && navigator.onLine === false) return true;
  const network = (err as { networkError?: unknown } | null | undefined)?.networkError ?? err;
  if (network instanceof TypeError) return true;
  const status = (network as { statusCode?: unknown } | null | undefined)?.statusCode;
  return status === 502 || status === 503 || status === 504;
}

export interface UrlRefresh {
  /** Follows the URL of a visible image; the returned function stops following it. */
  track(id: string, listener: (url: FreshUrl) => void): () => void;
  /**
   * A new URL for an image that failed to load (batched with other failures nearby in time): null
   * when the gateway has none for it, UNREACHABLE when the call did not reach the gateway.
   */
  refresh(id: string): Promise<FreshUrl | null | Unreachable>;
  /**
   * The image's current URL, for one whose URL ran out before it was ever shown (batched like
   * refresh). A read, not a forced re-sign: the gateway answers the URL of the image's current step.
   */
  current(id: string): Promise<FreshUrl | null>;
  readonly state: Ref<LinkState>;
  /** Ids the subscription currently covers (for tests and diagnostics). */
  subscribedIds(): string[];
  dispose(): void;
}

const MAX_IDS = 500;
/** A replaced stream is closed once its successor is open, or after this long at most. */
const HANDOVER_MS = 10_000;
/** How long a stream that has not failed may go without `open` before it is taken as open. */
const OPEN_GRACE_MS = 3000;
/** The shortest wait before a reconnect: a gateway that just closed every stream is given a moment. */
const MIN_RECONNECT_MS = 250;
/**
 * Full jitter: a random wait up to `min(30 s, 1 s · 2^(n−1))`. Every page of a gateway that
 * restarted (hundreds) sees its stream drop at the same instant; with the same fixed waits they all
 * came back at the same instants, in waves, each one a burst of streams and refetches.
 */
export const defaultReconnectDelayMs = (attempt: number) =>
  Math.max(MIN_RECONNECT_MS, Math.random() * Math.min(30_000, 1000 * 2 ** (attempt - 1)));

/**
 * One shared `signedUrlRefreshed` subscription for every visible image. Images register while
 * visible; the id set is resubscribed when it settles: the new stream first, and the old one
 * closed once the new one is open on the server (its response has begun; at most HANDOVER_MS),
 * so no event falls in between. Closing the old one as soon as the new request was sent left a
 * round trip and the server's subscribe in which no visible image was subscribed, on every
 * scroll, and an event in it was lost. A stream that ends or fails is reopened with backoff, and
 * the URLs of the visible images are refetched, since events sent meanwhile were lost.
 */
export function createUrlRefresh(
  transport: UrlRefreshTransport,
  options: UrlRefreshOptions = {},
): UrlRefresh {
  const settleMs = options.settleMs ?? 400;
  const batchMs = options.batchMs ?? 20;
  const delay = options.reconnectDelayMs ?? defaultReconnectDelayMs;
  const now = options.now ?? (() => Date.now());
  const state = ref<LinkState>('idle');
  const listeners = new Map<string, Set<(url: FreshUrl) => void>>();

  type Stream = { key: string; ids: string[]; close: () => void; openedAt: number; open: boolean };
  let current: Stream | null = null;
  let settleTimer: ReturnType<typeof setTimeout> | null = null;
  let reconnectTimer: ReturnType<typeof setTimeout> | null = null;
  let attempts = 0;
  /**
   * A stream dropped: events were lost, so the visible images' URLs are fetched again, once the
   * next stream is open. Not before: a gateway that is down would only fail the refetch (at every
   * attempt), and events sent between the refetch and the stream's opening would be lost again.
   */
  let refetchDue = false;
  let disposed = false;
  let warnedOverLimit = false;
  /**
   * Streams `current` replaced that were open on the server, kept until it is (then closed
   * together). One replaced before it opened is closed at once: it delivers nothing, and a
   * browser's few connections per host must not fill with requests while one scrolls.
   */
  let retiring: Array<() => void> = [];
  let handOverTimer: ReturnType<typeof setTimeout> | null = null;

  const retire = () => {
    if (handOverTimer) clearTimeout(handOverTimer);
    handOverTimer = null;
    const old = retiring;
    retiring = [];
    for (const close of old) close();
  };

  const deliver = (id: string, url: FreshUrl) => {
    for (const listener of listeners.get(id) ?? []) listener(url);
  };

  const refetch = (ids: string[]) => {
    transport.fetchUrls(ids).then(
      (rows) => {
        for (const row of rows) if (row) deliver(row.id, row.signedUrl);
      },
      () => {}, // the stream is down too, then: its next drop retries
    );
  };

  const open = (afterDrop: boolean) => {
    if (disposed) return;
    const tracked = [...listeners.keys()].sort();
    if (tracked.length > MAX_IDS && !warnedOverLimit) {
      // The gateway refuses a stream of more ids (BAD_USER_INPUT): say once what is left out.
      warnedOverLimit = true;
      console.warn(
        `@signet/vue: ${tracked.length} images are tracked at once, but one signedUrlRefreshed stream covers ` +
          `at most ${MAX_IDS} ids; the others get no pushed URLs. Track only the images on screen.`,
      );
    }
    const ids = tracked.slice(0, MAX_IDS);
    const key = ids.join(',');
    if (current && current.key === key && !afterDrop) return;
    const previous = current;
    if (ids.length === 0) {
      current = null;
      previous?.close();
      retire();
      state.value = 'idle';
      return;
    }
    const mine: Stream = { key, ids, close: () => {}, openedAt: now(), open: false };
    const dropped = () => {
      if (current !== mine || disposed) return; // a replaced stream closing is expected
      current = null;
      mine.close(); // release whatever is left of it (an error may leave the request open)
      retire(); // what it replaced goes too: the reconnect refetches
      state.value = 'reconnecting';
      refetchDue = true;
      // A stream that lived a while was healthy: start the backoff again from the bottom.
      if (now() - mine.openedAt > 10_000) attempts = 0;
      attempts++;
      if (reconnectTimer) clearTimeout(reconnectTimer);
      reconnectTimer = setTimeout(() => {
        reconnectTimer = null;
        open(true);
      }, delay(attempts));
    };
    if (previous?.open) retiring.push(previous.close);
    else previous?.close();
    current = mine;
    state.value = 'live';
    const opened = () => {
      if (mine.open) return;
      mine.open = true;
      if (current !== mine) return;
      retire();
      if (refetchDue) {
        refetchDue = false;
        refetch(mine.ids);
      }
    };
    mine.close = transport.subscribe(ids, {
      open: opened,
      next: (event) => {
        // An event proves the stream open, whether or not the transport said so.
        opened();
        if (current === mine) attempts = 0;
        deliver(event.imageId, event.signedUrl);
      },
      error: dropped,
      complete: dropped,
    });
    // `open` is optional (a host's own Apollo link may never call it): a stream that has not
    // failed after OPEN_GRACE_MS is taken as open, so the refetch a drop owes is never lost.
    if (refetchDue) {
      setTimeout(() => {
        if (current === mine && !disposed) opened();
      }, OPEN_GRACE_MS);
    }
    if (retiring.length > 0 && current === mine && !mine.open) {
      // A new stream slow to open: the old one goes after HANDOVER_MS anyway.
      if (handOverTimer) clearTimeout(handOverTimer);
      handOverTimer = setTimeout(() => {
        handOverTimer = null;
        if (current === mine) retire();
      }, HANDOVER_MS);
    }
  };

  /**
   * The browser is back online: a reconnect waiting out its backoff goes now, from the bottom of
   * the backoff (it waited for the network, not for a gateway in trouble).
   */
  const onOnline = () => {
    if (disposed || !reconnectTimer) return;
    clearTimeout(reconnectTimer);
    reconnectTimer = null;
    attempts = 0;
    open(true);
  };
  if (typeof window !== 'undefined') window.addEventListener('online', onOnline);

  const scheduleResubscribe = () => {
    if (disposed || reconnectTimer) return; // a pending reconnect picks up the new set
    if (settleTimer) clearTimeout(settleTimer);
    settleTimer = setTimeout(() => {
      settleTimer = null;
      open(false);
    }, settleMs);
  };

  const refreshBatch = batcher(
    batchMs,
    (ids) => transport.refreshUrls(ids),
    (err): Unreachable | null => (isUnreachable(err) ? UNREACHABLE : null),
  );
  const currentBatch = batcher(
    batchMs,
    async (ids) => {
      const rows = await transport.fetchUrls(ids);
      return rows.map((row) => row?.signedUrl ?? null);
    },
    () => null,
  );

  return {
    state,
    track(id, listener) {
      let set = listeners.get(id);
      if (!set) {
        set = new Set();
        listeners.set(id, set);
        scheduleResubscribe();
      }
      set.add(listener);
      return () => {
        const s = listeners.get(id);
        if (!s?.delete(listener) || s.size > 0) return;
        listeners.delete(id);
        scheduleResubscribe();
      };
    },
    refresh: refreshBatch.ask,
    current: currentBatch.ask,
    subscribedIds: () => current?.ids ?? [],
    dispose() {
      disposed = true;
      if (typeof window !== 'undefined') window.removeEventListener('online', onOnline);
      for (const t of [settleTimer, reconnectTimer]) if (t) clearTimeout(t);
      refreshBatch.dispose();
      currentBatch.dispose();
      current?.close();
      current = null;
      retire();
      state.value = 'idle';
    },
  };
}

/**
 * Requests for single ids collected for `ms` into calls of at most MAX_IDS ids; results come back
 * in the order of ids. A failed call answers `failed(err)` to each of its waiters: null (SmartImage
 * counts that as a spent try and backs off), or for a call that did not reach the gateway
 * UNREACHABLE (SmartImage waits for the network).
 */
function batcher<F>(
  ms: number,
  call: (ids: string[]) => Promise<Array<FreshUrl | null>>,
  failed: (err: unknown) => F | null,
) {
  let pending = new Map<string, Array<(url: FreshUrl | F | null) => void>>();
  let timer: ReturnType<typeof setTimeout> | null = null;
  let disposed = false;
  const flush = async () => {
    timer = null;
    const batch = pending;
    pending = new Map();
    const ids = [...batch.keys()];
    for (let i = 0; i < ids.length; i += MAX_IDS) {
      if (disposed) {
        // Disposed between two chunks: the rest is not sent; its waiters get null.
        for (const id of ids.slice(i)) for (const resolve of batch.get(id) ?? []) resolve(null);
        return;
      }
      const chunk = ids.slice(i, i + MAX_IDS);
      let results: Array<FreshUrl | F | null> = [];
      try {
        results = await call(chunk);
      } catch (err) {
        // every waiter of this chunk gets the same answer
        results = chunk.map(() => failed(err));
      }
      chunk.forEach((id, j) => {
        for (const resolve of batch.get(id) ?? []) resolve(results[j] ?? null);
      });
    }
  };
  return {
    ask(id: string): Promise<FreshUrl | F | null> {
      // Nothing will ever send it: answered at once, as a failed call would be.
      if (disposed) return Promise.resolve(null);
      return new Promise((resolve) => {
        const waiters = pending.get(id) ?? [];
        waiters.push(resolve);
        pending.set(id, waiters);
        timer ??= setTimeout(() => void flush(), ms);
      });
    },
    /**
     * Drops the batch not sent yet; its waiters get null (an image awaiting a re-sign must not
     * hang on a batch that will never go out). Calls already sent answer when they return.
     */
    dispose() {
      disposed = true;
      if (timer) clearTimeout(timer);
      timer = null;
      const dropped = pending;
      pending = new Map();
      for (const waiters of dropped.values()) for (const resolve of waiters) resolve(null);
    },
  };
}

export const URL_REFRESH: InjectionKey<UrlRefresh> = Symbol('UrlRefresh');

export function useUrlRefresh(): UrlRefresh {
  const urls = inject(URL_REFRESH);
  if (!urls)
    throw new Error(
      'useUrlRefresh: no UrlRefresh provided (app.use(createSignet(...)) or provideSignet(...) provides one)',
    );
  return urls;
}
