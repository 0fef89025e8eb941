import type { Clock } from '../clock.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import type { StatsStore } from './stats-store.js';

export const HEARTBEAT_MS = 5000;
/** A worker whose heartbeat is older than this is gone (urlStats shows live ones only). */
export const WORKER_STALE_MS = 3 * HEARTBEAT_MS;

/** Each worker-capable node says it is alive every few seconds (urlStats.workers). */
export function createHeartbeat(d: {
  nodeId: string;
  role: string;
  stats: Pick<StatsStore, 'heartbeat'>;
  metrics: Pick<Metrics, 'refreshes'>;
  clock: Clock;
  logger: Logger;
}) {
  const startedAt = d.clock.now();
  let timer: NodeJS.Timeout | undefined;
  const beat = async () => {
    const refreshed = (await d.metrics.refreshes.get()).values[0]?.value ?? 0;
    await d.stats
      .heartbeat({ id: d.nodeId, role: d.role, lastBeatAt: d.clock.now(), startedAt, refreshed })
      .catch((err: Error) => d.logger.debug({ err: err.message }, 'heartbeat failed'));
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

export type Heartbeat = ReturnType<typeof createHeartbeat>;
