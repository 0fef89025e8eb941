import type { ProxyTokens } from './auth/proxy-token.js';
import type { Authenticate } from './auth/viewer.js';
import type { Clock } from './clock.js';
import type { Config } from './config.js';
import type { Db } from './db/connect.js';
import type { ImagesRepo } from './db/images-repo.js';
import type { RecentRows } from './db/recent-rows.js';
import type { EventBus } from './events/event-bus.js';
import type { JobEngine } from './jobs/job-engine.js';
import type { Logger } from './logger.js';
import type { Metrics } from './metrics.js';
import type { RateLimiter } from './rate-limit.js';
import type { StatsStore } from './stats/stats-store.js';
import type { Storage } from './storage/storage.js';
import type { AccessTracker } from './urls/access-tracker.js';
import type { Refresher } from './urls/refresher.js';
import type { UrlStore } from './urls/store.js';
import type { UrlService } from './urls/url-service.js';

/** Everything a request handler may use, built once by createApp from its explicit deps. */
export interface Services {
  config: Config;
  clock: Clock;
  logger: Logger;
  metrics: Metrics;
  db: Db;
  images: ImagesRepo;
  /** Live rows remembered for seconds, for `/proxy/:id` (deleteImage forgets its row). */
  recentRows: RecentRows;
  storage: Storage;
  store: UrlStore;
  access: AccessTracker;
  urls: UrlService;
  authenticate: Authenticate;
  /** Capability tokens of `/proxy/:id` links. */
  proxyTokens: ProxyTokens;
  events: EventBus;
  stats: StatsStore;
  jobs: JobEngine;
  refresher: Refresher;
  refreshLimiter: RateLimiter;
  /** This process, as it appears in urlStats.workers. */
  nodeId: string;
}
