import { type IntervalHistogram, monitorEventLoopDelay } from 'node:perf_hooks';
import { expect } from 'vitest';
import type { Harness } from './harness.js';

// Responsiveness under attack, for the parsers that read client bytes (SVG sniff, multipart part
// headers, Range): each attack once held the event loop from a fraction of a second to hours; now
// it must be answered at once, while /healthz keeps answering and the event loop keeps turning.
//
// The app runs in the test process, so a blocked parse would freeze the probes as well: their
// latencies and the event-loop delay are what show the node stayed responsive.

/**
 * Bounds for one hostile request through the whole stack (HTTP, auth, multipart, SQL), and for
 * the /healthz probes and event-loop delay around it: generous for a slow, loaded machine, far
 * below the attacks (0.3 s to hours with the old parsers).
 */
const REQUEST_MS = 1000;
const PROBE_MS = 250;
const LOOP_DELAY_MS = 250;

export interface Responsiveness {
  elapsedMs: number;
  probes: number;
  probeMaxMs: number;
  loopDelayMaxMs: number;
}

/**
 * Runs `attack` while /healthz is probed every 10 ms and the event-loop delay is sampled; returns
 * the attack's result and what the probes saw.
 */
export async function underProbe<T>(
  h: Harness,
  attack: () => Promise<T>,
): Promise<{ result: T } & Responsiveness> {
  const histogram: IntervalHistogram = monitorEventLoopDelay({ resolution: 5 });
  const latencies: number[] = [];
  const statuses: number[] = [];
  let stop = false;
  const probing = (async () => {
    while (!stop) {
      const start = performance.now();
      const res = await fetch(`${h.url}/healthz`);
      await res.arrayBuffer();
      latencies.push(performance.now() - start);
      statuses.push(res.status);
      await new Promise((r) => setTimeout(r, 10));
    }
  })();
  histogram.enable();
  const start = performance.now();
  let result: T;
  try {
    result = await attack();
  } finally {
    // One more probe after the attack, so even a short attack is bracketed.
    await new Promise((r) => setTimeout(r, 30));
    stop = true;
    await probing;
    histogram.disable();
  }
  const elapsedMs = performance.now() - start;
  expect(statuses.length).toBeGreaterThan(0);
  expect(new Set(statuses)).toEqual(new Set([200]));
  return {
    result,
    elapsedMs,
    probes: latencies.length,
    probeMaxMs: Math.max(...latencies),
    loopDelayMaxMs: histogram.max / 1e6,
  };
}

export function expectResponsive(label: string, r: Responsiveness): void {
  console.info(
    `${label}: answered in ${r.elapsedMs.toFixed(1)} ms; /healthz × ${r.probes}, slowest ` +
      `${r.probeMaxMs.toFixed(1)} ms; event-loop delay max ${r.loopDelayMaxMs.toFixed(1)} ms`,
  );
  expect(r.elapsedMs, label).toBeLessThan(REQUEST_MS);
  expect(r.probeMaxMs, label).toBeLessThan(PROBE_MS);
  expect(r.loopDelayMaxMs, label).toBeLessThan(LOOP_DELAY_MS);
}
