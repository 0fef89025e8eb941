import { afterEach, describe, expect, it } from 'vitest';
import { PreloadQueueFull } from '../images/image-jobs.js';
import { createLogger } from '../logger.js';
import type { SweepResult } from '../urls/refresher.js';
import { PRELOAD_JOB_IDS, type Processors } from './job-engine.js';
import { TimerJobEngine } from './timer-engine.js';

const ids = (n: number, tag = 'i') => Array.from({ length: n }, (_, i) => `${tag}${i}`);

/**
 * Processors whose preload jobs finish only when the test releases them (each signs one URL per
 * id), counting sweeps: the engine's scheduling is what is under test, the work itself is
 * tested with the real services elsewhere.
 */
function gatedProcessors() {
  const started: string[][] = [];
  const gates: (() => void)[] = [];
  let running = 0;
  let maxRunning = 0;
  let sweeps = 0;
  let replicationChecks = 0;
  const processors: Processors = {
    async refreshSweep() {
      sweeps++;
      return {} as SweepResult;
    },
    async observe() {
      return { backlog: 0, lagSeconds: 0 };
    },
    async statsRollup() {},
    async deletedRowPurge() {
      return { purged: 0, complete: true };
    },
    async orphanSweep() {
      return { listed: 0, deleted: 0, complete: true };
    },
    async placeholderBackfill() {
      return { visited: 0, computed: 0, undecodable: 0, failed: 0, complete: true };
    },
    async makeVariants() {
      return 'none' as const;
    },
    async variantsBackfill() {
      return undefined;
    },
    async replicationCheck() {
      replicationChecks++;
      return { checked: 0, replicated: 0 };
    },
    async preload(chunk) {
      started.push([...chunk]);
      running++;
      maxRunning = Math.max(maxRunning, running);
      await new Promise<void>((r) => gates.push(r));
      running--;
      return chunk.length;
    },
  };
  return {
    processors,
    started,
    sweeps: () => sweeps,
    replicationChecks: () => replicationChecks,
    maxRunning: () => maxRunning,
    /** Lets the oldest running job finish. */
    async release() {
      while (gates.length === 0) await new Promise((r) => setImmediate(r));
      gates.shift()!();
      await new Promise((r) => setImmediate(r));
    },
  };
}

const logger = createLogger('silent');
let engine: TimerJobEngine | undefined;
afterEach(async () => {
  await engine?.stop();
  engine = undefined;
});

describe('TimerJobEngine preloads', () => {
  it('splits a preload into jobs of at most 500 ids, runs them one at a time, and sums what they signed', async () => {
    const p = gatedProcessors();
    engine = new TimerJobEngine(p.processors, 1000, logger, 20);
    const all = ids(1234);
    const done = engine.preload(all);
    for (let i = 0; i < 3; i++) await p.release();
    expect(await done).toBe(1234);
    expect(p.started.map((c) => c.length)).toEqual([PRELOAD_JOB_IDS, PRELOAD_JOB_IDS, 234]);
    expect(p.started.flat()).toEqual(all);
    expect(p.maxRunning()).toBe(1);
  });

  it('refuses, queuing nothing, a preload whose jobs do not fit beside the pending ones; accepts once they finish', async () => {
    const p = gatedProcessors();
    engine = new TimerJobEngine(p.processors, 1000, logger, 20);
    // 19 jobs pending (one running, 18 waiting).
    const first = engine.preload(ids(19 * PRELOAD_JOB_IDS, 'a'));
    // One more job fits; two do not.
    const second = engine.preload(ids(1, 'b'));
    // Refused at once (it would otherwise wait for jobs the test has not released).
    const refused = await Promise.race([
      engine.preload(ids(PRELOAD_JOB_IDS + 1, 'c')).catch((e: unknown) => e),
      new Promise((r) => setTimeout(() => r('accepted: still waiting after 1 s'), 1000)),
    ]);
    expect(refused).toBeInstanceOf(PreloadQueueFull);
    expect(refused).toMatchObject({ waiting: 20, max: 20 });
    for (let i = 0; i < 20; i++) await p.release();
    expect(await first).toBe(19 * PRELOAD_JOB_IDS);
    expect(await second).toBe(1);
    // Nothing of the refused call ever ran.
    expect(p.started.flat().some((id) => id.startsWith('c'))).toBe(false);
    const third = engine.preload(ids(PRELOAD_JOB_IDS + 1, 'c'));
    await p.release();
    await p.release();
    expect(await third).toBe(PRELOAD_JOB_IDS + 1);
  });

  it('keeps sweeping on its tick while preload jobs are pending', async () => {
    const p = gatedProcessors();
    engine = new TimerJobEngine(p.processors, 100, logger, 20);
    await engine.startWorkers();
    const pending = engine.preload(ids(20 * PRELOAD_JOB_IDS)).catch(() => 0);
    const deadline = Date.now() + 5_000;
    while (p.sweeps() < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(p.sweeps()).toBeGreaterThanOrEqual(3);
    expect(p.started).toHaveLength(1); // the first job is still running, the rest wait
    for (let i = 0; i < 20; i++) await p.release();
    expect(await pending).toBe(20 * PRELOAD_JOB_IDS);
  });
});

describe('TimerJobEngine replication check (several regions)', () => {
  it('runs on its interval when given one, and never with 0', async () => {
    const on = gatedProcessors();
    engine = new TimerJobEngine(on.processors, 1000, logger, 20, 0, 0, 0, 50);
    await engine.startWorkers();
    const deadline = Date.now() + 5_000;
    while (on.replicationChecks() < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(on.replicationChecks()).toBeGreaterThanOrEqual(3);
    await engine.stop();

    const off = gatedProcessors();
    engine = new TimerJobEngine(off.processors, 1000, logger, 20, 0, 0, 0, 0);
    await engine.startWorkers();
    await new Promise((r) => setTimeout(r, 300));
    expect(off.replicationChecks()).toBe(0);
  });
});
