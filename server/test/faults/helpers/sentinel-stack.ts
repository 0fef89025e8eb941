import { afterAll, beforeAll } from 'vitest';
import { RedisSentinelGroup } from '../../support/redis-sentinel.js';
import { type SseSubscription, subscribeSse } from '../../support/sse.js';
import { Client } from './client.js';
import { type Sample, SteadyLoad, sleep } from './load.js';
import { Stack } from './stack.js';

export const RATE = 20; // page queries (and as many origin fetches of a URL just handed out) per second
// Short URLs so refresh sweeps run during a test (due 20 s after signing, the 16 grid offsets
// spreading them over the step), yet long enough that every URL handed out during a failover
// still lives when the test opens it at the origin after the load.
export const TTL = 120;
export const AHEAD = 100;

export type RefreshEvent = { data?: { signedUrlRefreshed: { imageId: string } } };

/**
 * Redis as a primary with a replica behind three sentinels (quorum 2), and a gateway that knows
 * only the sentinels (REDIS_SENTINELS); the client has discovered the first page of 24.
 */
export async function startSentinelStack(): Promise<{
  group: RedisSentinelGroup;
  stack: Stack;
  client: Client;
}> {
  const group = await RedisSentinelGroup.start({ downAfterMs: 1000, failoverTimeoutMs: 5000 });
  let stack: Stack | undefined;
  try {
    stack = await Stack.start({
      env: {
        REDIS_SENTINELS: group.sentinels,
        REDIS_SENTINEL_NAME: group.name,
        URL_TTL_SECONDS: String(TTL),
        REFRESH_AHEAD_SECONDS: String(AHEAD),
      },
    });
    const client = new Client(stack, 24, 29_000); // the default minTtl is a quarter of the TTL: 30 s
    await client.discover();
    return { group, stack, client };
  } catch (err) {
    await stack?.close();
    await group.stop();
    throw err;
  }
}

export interface SentinelScenario {
  group: RedisSentinelGroup;
  stack: Stack;
  client: Client;
  /** Set by `watchAndLoad`; stopped and closed after the tests (a failed assertion leaves them running). */
  load?: SteadyLoad;
  sse?: SseSubscription<RefreshEvent>;
}

/** Starts the stack before the tests of the enclosing describe and stops all of it after them. */
export function useSentinelStack(): SentinelScenario {
  const t = {} as SentinelScenario;
  beforeAll(async () => {
    Object.assign(t, await startSentinelStack());
  }, 90_000);
  afterAll(async () => {
    await t.load?.stop();
    t.sse?.close();
    await t.stack?.close();
    await t.group?.stop();
  });
  return t;
}

/**
 * Subscribes to refresh events of the first page's images (all live: the sweep re-signs them every
 * step and publishes) and runs the steady load, phase 'before', for 3 s.
 */
export async function watchAndLoad(
  t: SentinelScenario,
): Promise<{ watched: string[]; sse: SseSubscription<RefreshEvent>; load: SteadyLoad }> {
  const watched = t.stack.ids.slice(0, 24);
  const sse = subscribeSse<RefreshEvent>(
    t.stack.url,
    'subscription ($ids: [ID!]!) { signedUrlRefreshed(ids: $ids) { imageId } }',
    { ids: watched },
    t.stack.token,
  );
  t.sse = sse;
  await sse.opened;
  const load = new SteadyLoad(RATE, { page: t.client.page, url: t.client.signedUrl });
  t.load = load;
  t.client.phase = () => load.current;
  load.start('before');
  await sleep(3000);
  return { watched, sse, load };
}

/** Of all URLs on these pages, the share read from the cache. */
export function hitRatio(pages: readonly Sample[]): number {
  const urls = pages.reduce((n, p) => n + (p.urls ?? 0), 0);
  return urls === 0 ? 0 : pages.reduce((n, p) => n + (p.hits ?? 0), 0) / urls;
}

export async function refreshesTotal(url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  return Number(/^signet_refreshes_total (\d+)/m.exec(text)?.[1] ?? 0);
}

/** Polls `check` until it holds; how long that took, or undefined after `timeoutMs`. */
export async function timeUntil(check: () => boolean, timeoutMs: number): Promise<number | undefined> {
  const started = Date.now();
  while (!check()) {
    if (Date.now() - started > timeoutMs) return undefined;
    await sleep(100);
  }
  return Date.now() - started;
}
