import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Services } from '../services.js';
import { sendJson } from './send.js';

type State = 'ok' | 'degraded' | 'down';

async function probe(fn: () => Promise<void>, timeoutMs: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      fn(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error('timeout')), timeoutMs);
      }),
    ]);
    return true;
  } catch {
    return false;
  } finally {
    clearTimeout(timer);
  }
}

/** `/healthz`: the process serves. */
export function healthz(_req: IncomingMessage, res: ServerResponse): void {
  sendJson(res, 200, { status: 'ok' });
}

/**
 * `/readyz`: each dependency ok/degraded/down. A cache outage only degrades (the hot path signs
 * directly); the database or the storage being down means we cannot serve: 503.
 */
export function createReadyz(s: Services) {
  return async (_req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const [dbOk, cacheOk, storageOk] = await Promise.all([
      probe(() => s.db.ping(), 1500),
      probe(() => s.store.ping(), 500),
      probe(() => s.storage.ping(), 2000),
    ]);
    const database: State = dbOk ? 'ok' : 'down';
    const cache: State = cacheOk ? 'ok' : 'degraded';
    const storage: State = storageOk ? 'ok' : 'down';
    const ready = dbOk && storageOk;
    const status = !ready ? 'down' : cacheOk ? 'ok' : 'degraded';
    sendJson(res, ready ? 200 : 503, {
      status,
      checks: {
        database,
        cache: { state: cache, kind: s.store.kind },
        storage: { state: storage, driver: s.storage.driver },
      },
    });
  };
}

export function createMetricsRoute(s: Services) {
  return async (_req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const body = await s.metrics.registry.metrics();
    res.writeHead(200, { 'content-type': s.metrics.registry.contentType, 'cache-control': 'no-store' });
    res.end(body);
  };
}
