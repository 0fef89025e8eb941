import { type App, provide } from 'vue';
import { signetTypePolicies } from './signed-url';
import { defaultBackoffMs, SMART_IMAGE_DEPS, type SmartImageDeps } from './smart-image-deps';
import { SseLink } from './sse-link';
import { type Client, urlTransport } from './transport';
import { createUrlRefresh, URL_REFRESH, type UrlRefresh, type UrlRefreshOptions } from './useUrlRefresh';
import { createVisibility, type Observe } from './visibility';

export interface SignetOptions {
  /** The app's own Apollo Client: the package queries, mutates and writes URLs through it. */
  client: Client;
  /** The gateway's GraphQL endpoint, for the live-URL stream (SSE). Default `/graphql`. */
  uri?: string;
  /** Headers of each stream request (e.g. a bearer token); read per request. */
  headers?: () => Record<string, string>;
  /** The preset whose stream `useUrlRefresh()` answers (a live badge); default the originals'. */
  livePreset?: string;
  /** Replaces the network for the stream (tests). */
  fetch?: typeof fetch;
  /** Replaces the IntersectionObserver that tells SmartImage when it is on screen. */
  observe?: Observe;
  /** Wait before refresh attempt n (1-based) of a failed image; default 400 ms doubling. */
  backoffMs?: (attempt: number) => number;
  /** Options of each live-URL stream (settle and batch windows, reconnect delays). */
  stream?: UrlRefreshOptions;
  /** A stream silent this long is dropped and reconnected (SseLink's `idleMs`, default 45 s). */
  streamIdleMs?: number;
}

export interface Signet {
  /** What SmartImage injects. */
  readonly deps: SmartImageDeps;
  /** The shared live-URL stream of a preset (or the originals'), made when first asked for. */
  urls(preset?: string): UrlRefresh;
  /** Closes every stream. */
  dispose(): void;
  /** As a Vue plugin: `app.use(createSignet({ client }))`. */
  install(app: App): void;
}

/** A cache that takes type policies after it was made: an InMemoryCache, of whichever copy. */
interface PolicyCache {
  policies: { addTypePolicies(policies: typeof signetTypePolicies): void };
}

/**
 * By its shape, not `instanceof InMemoryCache`: the host's cache may come from another copy of
 * @apollo/client than the one this package would import (a linked checkout, a bundler's dedupe
 * gone wrong), and `instanceof` is then false for a perfectly good InMemoryCache.
 */
function takesPolicies(cache: unknown): cache is PolicyCache {
  const policies = (cache as { policies?: { addTypePolicies?: unknown } } | null | undefined)?.policies;
  return typeof policies?.addTypePolicies === 'function';
}

/**
 * Builds everything SmartImage needs from the host app's Apollo Client: one shared
 * `signedUrlRefreshed` stream per preset, made on first use, and the visibility observer. A
 * newer SignedUrl replacing an older one in the cache is what the gateway means (it has no id),
 * so the client's cache is told how one replaces another (`mergeSignedUrl`), without a warning
 * and without dropping fields a query asked for.
 */
export function createSignet(options: SignetOptions): Signet {
  const { client } = options;
  if (takesPolicies(client.cache)) client.cache.policies.addTypePolicies(signetTypePolicies);
  else {
    console.warn(
      '@signet/vue: the Apollo Client cache has no policies.addTypePolicies (not an InMemoryCache?), ' +
        'so createSignet could not tell it how Image.signedUrl merges. Give your cache ' +
        '`signetTypePolicies` (exported by @signet/vue) yourself; without it each new URL replaces the ' +
        'cached one whole, with a "Cache data may be lost" warning, and queries asking more of it refetch.',
    );
  }
  const link = new SseLink({
    uri: options.uri ?? '/graphql',
    ...(options.headers ? { headers: options.headers } : {}),
    ...(options.fetch ? { fetch: options.fetch } : {}),
    ...(options.streamIdleMs !== undefined ? { idleMs: options.streamIdleMs } : {}),
  });
  const live = new Map<string, UrlRefresh>();
  /** '' stands for the originals. */
  const urls = (preset = ''): UrlRefresh => {
    let found = live.get(preset);
    if (!found) {
      found = createUrlRefresh(
        urlTransport(client, link, preset === '' ? undefined : preset),
        options.stream,
      );
      live.set(preset, found);
    }
    return found;
  };
  let observe = options.observe;
  const deps: SmartImageDeps = {
    urls: urls(),
    variantUrls: urls,
    // Made on first use: IntersectionObserver exists only in the browser.
    observe: (el, onChange) => {
      observe ??= createVisibility();
      return observe(el, onChange);
    },
    now: () => Date.now(),
    backoffMs: options.backoffMs ?? defaultBackoffMs,
  };
  return {
    deps,
    urls,
    dispose() {
      for (const stream of live.values()) stream.dispose();
      live.clear();
    },
    install(app) {
      app.provide(SMART_IMAGE_DEPS, deps);
      app.provide(URL_REFRESH, urls(options.livePreset));
    },
  };
}

/**
 * The same wiring from a component's `setup()` (a root component, or a subtree of the app):
 * its descendants' SmartImages use it. Returns the Signet, e.g. to dispose of it on unmount.
 */
export function provideSignet(options: SignetOptions | Signet): Signet {
  const signet = 'install' in options ? options : createSignet(options);
  provide(SMART_IMAGE_DEPS, signet.deps);
  provide(URL_REFRESH, signet.urls('livePreset' in options ? options.livePreset : undefined));
  return signet;
}
