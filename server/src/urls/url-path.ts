import type { Clock } from '../clock.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import type { SendTogether } from '../redis/send-together.js';
import type { Storage } from '../storage/storage.js';
import { AccessTracker, type UsageSink } from './access-tracker.js';
import { GuardedCache } from './guarded-cache.js';
import type { RegionChoice } from './region-choice.js';
import type { StorageOf, UrlTiming } from './resolved-url.js';
import { type SignedUrlPublisher, UrlSigner } from './signer.js';
import type { UrlStore } from './store.js';
import { UrlTelemetry } from './telemetry.js';
import { UrlMemo } from './url-memo.js';
import { UrlService } from './url-service.js';
import { WindowGrid } from './window-grid.js';

export interface UrlPathDeps {
  storage: Pick<Storage, 'signMany' | 'urlFor' | 'signedBy'>;
  /** Several regions: every region's bucket (by name) and whose bucket each URL is signed for. */
  regions?: {
    storages: ReadonlyMap<string, Pick<Storage, 'signMany' | 'urlFor' | 'signedBy'>>;
    choice: RegionChoice;
  };
  store: UrlStore;
  events: SignedUrlPublisher;
  metrics: Metrics;
  clock: Clock;
  logger: Logger;
  timing: UrlTiming;
  /** Where the access tracker's usage counters go (the daily stats). */
  usage?: UsageSink;
  /** Ids that count as looked at (subscribed images), and how often they are marked again. */
  liveIds?: () => Iterable<string>;
  liveMarkMs?: number;
  /** With Redis: a write-back and its event leave in one socket write (redis/send-together.ts). */
  sendTogether?: SendTogether;
}

export interface UrlPath {
  access: AccessTracker;
  telemetry: UrlTelemetry;
  urls: UrlService;
}

/**
 * The parts of the hot path, wired once: telemetry observes, the guarded cache reads and writes
 * behind its breaker, the memo builds URLs, the signer signs and publishes, the service resolves.
 * The container builds a node with it; unit tests build just this path with it.
 */
export function createUrlPath(d: UrlPathDeps): UrlPath {
  const access = new AccessTracker({
    counters: d.store,
    logger: d.logger,
    clock: d.clock,
    ...(d.usage ? { usage: d.usage } : {}),
    ...(d.liveIds ? { liveIds: d.liveIds } : {}),
    ...(d.liveMarkMs !== undefined ? { liveMarkMs: d.liveMarkMs } : {}),
  });
  const telemetry = new UrlTelemetry(d.metrics, access);
  const cache = new GuardedCache(d.store, telemetry, d.logger);
  const grid = new WindowGrid(d.timing);
  const regions = d.regions;
  const storageOf: StorageOf = regions
    ? (region) => (region === undefined ? d.storage : (regions.storages.get(region) ?? d.storage))
    : () => d.storage;
  const memo = new UrlMemo(storageOf, d.clock, d.timing.refreshAheadSeconds, grid);
  const signer = new UrlSigner({ ...d, storageOf, cache, memo, telemetry, grid });
  const urls = new UrlService({
    cache,
    store: d.store,
    signer,
    memo,
    telemetry,
    grid,
    clock: d.clock,
    regions: regions?.choice,
  });
  return { access, telemetry, urls };
}
