import { type InjectionKey, inject, type Ref, ref } from 'vue';

/** The part of a SignedUrl the app uses: where it is and how long it lives. */
export interface FreshUrl {
  url: string;
  expiresAt: string;
}

export interface UrlEvent {
  imageId: string;
  signedUrl: FreshUrl;
}

export interface StreamHandlers {
  next(event: UrlEvent): void;
  error(err: unknown): void;
  complete(): void;
}

/** The network edge, so the logic below is tested without a server. */
export interface UrlRefreshTransport {
  /** Opens one `signedUrlRefreshed(ids)` subscription; the returned function closes it. */
  subscribe(ids: string[], handlers: StreamHandlers): () => void;
  /** Current URLs of these images (used after a dropped subscription). */
  fetchUrls(ids: string[]): Promise<Array<{ id: string; signedUrl: FreshUrl } | null>>;
  /** `refreshSignedUrls(ids)`: forces a re-sign; results in the order of ids. */
  refreshUrls(ids: string[]): Promise<Array<FreshUrl | null>>;
}

export interface UrlRefreshOptions {
  /** Set changes are collected this long before resubscribing (scrolling moves many at once). */
  settleMs?: number;
  /** Refresh requests are collected this long into one mutation. */
  batchMs?: number;
  /** Delay before reconnect attempt n (1-based). */
  reconnectDelayMs?: (attempt: number) => number;
  now?: () => number;
}

export type LinkState = 'idle' | 'live' | 'reconnecting';

export interface UrlRefresh {
  /** Follows the URL of a visible image; the returned function stops following it. */
  track(id: string, listener: (url: FreshUrl) => void): () => void;
  /** A new URL for an image that failed to load (batched with other failures nearby in time). */
  refresh(id: string): Promise<FreshUrl | null>;
  readonly state: Ref<LinkState>;
  /** Ids the subscription currently covers (for tests and diagnostics). */
  subscribedIds(): string[];
  dispose(): void;
}

const MAX_IDS = 500;
const defaultDelay = (attempt: number) => Math.min(30_000, 1000 * 2 ** (attempt - 1));

/**
 * One shared `signedUrlRefreshed` subscription for every visible image. Images register while
 * visible; the id set is resubscribed (new stream first, then the old one closed, so no event
 * falls in between) when it settles. A stream that ends or fails is reopened with backoff, and
 * the URLs of the visible images are refetched, since events sent meanwhile were lost.
 */
export function createUrlRefresh(
  transport: UrlRefreshTransport,
  options: UrlRefreshOptions = {},
): UrlRefresh {
  const settleMs = options.settleMs ?? 400;
  const batchMs = options.batchMs ?? 20;
  const delay = options.reconnectDelayMs ?? defaultDelay;
  const now = options.now ?? (() => Date.now());
  const state = ref<LinkState>('idle');
  const listeners = new Map<string, Set<(url: FreshUrl) => void>>();

  let current: { key: string; ids: string[]; close: () => void; openedAt: number } | null = null;
  let settleTimer: ReturnType<typeof setTimeout> | null = null;
  let reconnectTimer: ReturnType<typeof setTimeout> | null = null;
  let attempts = 0;
  let disposed = false;

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
    const ids = [...listeners.keys()].sort().slice(0, MAX_IDS);
    const key = ids.join(',');
    if (current && current.key === key && !afterDrop) return;
    const previous = current;
    if (ids.length === 0) {
      current = null;
      previous?.close();
      state.value = 'idle';
      return;
    }
    const mine: { key: string; ids: string[]; close: () => void; openedAt: number } = {
      key,
      ids,
      close: () => {},
      openedAt: now(),
    };
    const dropped = () => {
      if (current !== mine || disposed) return; // a replaced stream closing is expected
      current = null;
      mine.close(); // release whatever is left of it (an error may leave the request open)
      state.value = 'reconnecting';
      // A stream that lived a while was healthy: start the backoff again from the bottom.
      if (now() - mine.openedAt > 10_000) attempts = 0;
      attempts++;
      if (reconnectTimer) clearTimeout(reconnectTimer);
      reconnectTimer = setTimeout(() => {
        reconnectTimer = null;
        open(true);
      }, delay(attempts));
    };
    current = mine;
    state.value = 'live';
    mine.close = transport.subscribe(ids, {
      next: (event) => {
        if (current === mine) attempts = 0;
        deliver(event.imageId, event.signedUrl);
      },
      error: dropped,
      complete: dropped,
    });
    previous?.close();
    if (afterDrop) refetch(ids);
  };

  const scheduleResubscribe = () => {
    if (disposed || reconnectTimer) return; // a pending reconnect picks up the new set
    if (settleTimer) clearTimeout(settleTimer);
    settleTimer = setTimeout(() => {
      settleTimer = null;
      open(false);
    }, settleMs);
  };

  let pending = new Map<string, Array<(url: FreshUrl | null) => void>>();
  let batchTimer: ReturnType<typeof setTimeout> | null = null;
  const flushRefresh = async () => {
    batchTimer = null;
    const batch = pending;
    pending = new Map();
    const ids = [...batch.keys()];
    for (let i = 0; i < ids.length; i += MAX_IDS) {
      const chunk = ids.slice(i, i + MAX_IDS);
      let results: Array<FreshUrl | null> = [];
      try {
        results = await transport.refreshUrls(chunk);
      } catch {
        // every waiter gets null: SmartImage counts it as a failed try and backs off
      }
      chunk.forEach((id, j) => {
        for (const resolve of batch.get(id) ?? []) resolve(results[j] ?? null);
      });
    }
  };

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
    refresh(id) {
      return new Promise((resolve) => {
        const waiters = pending.get(id) ?? [];
        waiters.push(resolve);
        pending.set(id, waiters);
        batchTimer ??= setTimeout(() => void flushRefresh(), batchMs);
      });
    },
    subscribedIds: () => current?.ids ?? [],
    dispose() {
      disposed = true;
      for (const t of [settleTimer, reconnectTimer, batchTimer]) if (t) clearTimeout(t);
      current?.close();
      current = null;
      state.value = 'idle';
    },
  };
}

export const URL_REFRESH: InjectionKey<UrlRefresh> = Symbol('UrlRefresh');

export function useUrlRefresh(): UrlRefresh {
  const urls = inject(URL_REFRESH);
  if (!urls) throw new Error('useUrlRefresh: no UrlRefresh provided (App provides one)');
  return urls;
}
