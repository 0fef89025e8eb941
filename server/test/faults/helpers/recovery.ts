import { expect } from 'vitest';
import { type Client, reportUncached, type UncachedCheck } from './client.js';
import { report, type SteadyLoad, sleep, until } from './load.js';

export interface RecoveryOptions {
  /** The phase the fault was in ('outage', 'slow'): it must have handed out uncached URLs. */
  faultPhase: string;
  /** Every phase of the run, in order, for the reports. */
  phases: string[];
  /** The report's title, given how long the cache took to come back. */
  title: (recoveredMs: number) => string;
  /** Runs once the cache is back, before the last phase (e.g. to read Redis counters). */
  onRecovered?: () => Promise<void>;
}

export interface Recovery {
  /** From the call (the moment the fault was cleared) until the cache served pages again. */
  recoveredMs: number;
  /** Per phase: the URLs handed out with `cached: false`, each opened at the origin. */
  uncached: Record<string, UncachedCheck>;
}

/**
 * The end of a cache fault under a page load, the same in every Redis fault test; call it as soon
 * as the fault is cleared. The load goes into 'recovery' until pages come from the cache again
 * (the last eight in a row, a full rotation), runs three more seconds ('after') and stops; then
 * every URL signed without the cache, not only the latest one, is opened at the origin (they live
 * for the whole TTL) and its bytes compared with the object's. Both reports are printed, and then
 * asserted: not one request failed, every such URL opened, and the fault phase handed some out.
 */
export async function expectRecovery(
  load: SteadyLoad,
  client: Client,
  o: RecoveryOptions,
): Promise<Recovery> {
  const clearedAt = Date.now();
  load.phase('recovery');
  await until(
    'pages served from the cache again',
    () => {
      const recent = load.select({ kind: 'page', phase: 'recovery' }).slice(-8);
      return recent.length === 8 && recent.every((s) => s.ok && s.cached);
    },
    20_000,
  );
  const recoveredMs = Date.now() - clearedAt;
  await o.onRecovered?.();
  load.phase('after');
  await sleep(3000);
  await load.stop();
  const uncached = await client.openUncached();

  report(o.title(recoveredMs), load, ['page', 'url'], o.phases);
  reportUncached(uncached, o.phases);
  expect(load.failures()).toEqual([]);
  for (const c of Object.values(uncached)) expect(c.refused).toEqual([]);
  expect(uncached[o.faultPhase]?.distinct ?? 0).toBeGreaterThan(0);
  expect(uncached[o.faultPhase]!.opened).toBe(uncached[o.faultPhase]!.distinct);
  return { recoveredMs, uncached };
}
