import type { Clock } from './clock.js';
import type { ImagesRepo } from './db/images-repo.js';
import type { EventBus } from './events/event-bus.js';
import type { Processors } from './jobs/job-engine.js';
import type { Logger } from './logger.js';
import type { Metrics } from './metrics.js';
import type { Services } from './services.js';
import type { StatsStore } from './stats/stats-store.js';
import { dayOf } from './stats/stats-store.js';
import type { AccessTracker } from './urls/access-tracker.js';
import type { Refresher } from './urls/refresher.js';
import type { UrlService } from './urls/url-service.js';

const HEARTBEAT_MS = 5000;
/** A worker whose heartbeat is older than this is gone (urlStats shows live ones only). */
export const WORKER_STALE_MS = 3 * HEARTBEAT_MS;

/**
 * Connects the pieces of freshness: every signing publishes one event (refreshes, and on-demand
 * re-signs too, so a subscriber whose refresh came late still gets the new URL); images somebody
 * is subscribed to count as looked at; usage counters go to the daily stats.
 */
export function wireFreshness(d: {
  urls: UrlService;
  events: EventBus;
  access: AccessTracker;
  stats: StatsStore;
  metrics: Metrics;
  clock: Clock;
  logger: Logger;
}): void {
  d.urls.onSigned((signed) => {
    const events = signed.map((s) => ({
      imageId: s.id,
      url: s.url.url,
      expiresAt: s.url.expiresAt,
      refreshAt: s.url.refreshAt,
    }));
    d.events
      .publish(events)
      .catch((err: Error) => d.logger.warn({ err: err.message }, 'event publish failed'));
  });
  d.access.addLiveSource(() => d.events.subscribedIds());
  d.access.addUsageSink((usage) => d.stats.add(dayOf(d.clock.now()), usage));
}

export function createProcessors(d: {
  refresher: Refresher;
  images: ImagesRepo;
  urls: UrlService;
  stats: StatsStore;
  clock: Clock;
}): Processors {
  return {
    refreshSweep: () => d.refresher.sweep(),
    observe: () => d.refresher.observe(),
    statsRollup: () => d.stats.rollup(dayOf(d.clock.now()), d.clock.now() - WORKER_STALE_MS * 4),
    async preload(ids) {
      let signed = 0;
      for (let i = 0; i < ids.length; i += 500) {
        const rows = await d.images.findLive(ids.slice(i, i + 500));
        if (rows.length === 0) continue;
        const urls = await d.urls.resolveMany(rows.map((r) => ({ id: r.id, key: r.objectKey, minTtl: 0 })));
        signed += urls.filter((u) => !u.cached).length;
      }
      return signed;
    },
  };
}

/** Each worker-capable node says it is alive every few seconds (urlStats.workers). */
export function createHeartbeat(s: Services) {
  const startedAt = s.clock.now();
  let timer: NodeJS.Timeout | undefined;
  const beat = async () => {
    const refreshed = (await s.metrics.refreshes.get()).values[0]?.value ?? 0;
    await s.stats
      .heartbeat({ id: s.nodeId, role: s.config.role, lastBeatAt: s.clock.now(), startedAt, refreshed })
      .catch((err: Error) => s.logger.debug({ err: err.message }, 'heartbeat failed'));
  };
  return {
    start() {
      if (timer) return;
      void beat();
      timer = setInterval(() => void beat(), HEARTBEAT_MS);
      timer.unref();
    },
    stop() {
      if (timer) clearInterval(timer);
      timer = undefined;
    },
    beat,
  };
}
