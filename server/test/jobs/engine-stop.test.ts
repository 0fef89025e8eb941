import { describe, expect, it } from 'vitest';
import { BullmqJobEngine } from '../../src/jobs/bullmq-engine.js';
import type { Processors } from '../../src/jobs/job-engine.js';
import { createRedisClient } from '../../src/redis/connect.js';
import { testRedisUrl } from '../support/env.js';
import { captureLogger } from '../support/logs.js';

// A process that stops right after it started (`signet erase-owner --dry-run` on a busy CI
// machine): BullMQ's queues are still setting up their shared connection (its version check in
// flight) when the engine stops; their close removes their listeners, and the setup's rejection,
// once the connections are cut, was an 'error' nobody heard: an unhandled rejection that ended
// the process ("Connection is closed."). The window is a few milliseconds wide, so the test stops
// engines again and again at 0-2 ms after their start.

describe('BullmqJobEngine.stop right after its start', () => {
  it('leaves no unheard error, however early it comes', async () => {
    const unheard: unknown[] = [];
    const onRejection = (err: unknown) => unheard.push(err);
    process.on('unhandledRejection', onRejection);
    try {
      for (let round = 0; round < 30; round++) {
        const { logger } = captureLogger();
        const engine = new BullmqJobEngine({} as Processors, {
          connect: () => {
            const c = createRedisClient({
              url: testRedisUrl(),
              clusterNodes: [],
              commandTimeoutMs: 250,
              blocking: true,
            });
            c.on('error', () => {});
            return c;
          },
          prefix: 'signet-stop-test:',
          tickMs: 1000,
          batchSize: 500,
          maxWaitingPreloads: 10,
          orphanSweepMs: 600_000,
          deletedRowPurgeMs: 3_600_000,
          placeholderBackfillMs: 600_000,
          logger,
        });
        await new Promise((resolve) => setTimeout(resolve, round % 3));
        await engine.stop();
      }
      // The rejected setups surface a moment after the connections are cut.
      await new Promise((resolve) => setTimeout(resolve, 500));
    } finally {
      process.off('unhandledRejection', onRejection);
    }
    expect(unheard.map((e) => (e as Error).message)).toEqual([]);
  }, 60_000);
});
