import type { Clock } from '../clock.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import type { StatsStore } from './stats-store.js';
import { HEARTBEAT_MS } from './url-stats-report.js';

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
