import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeAnimated, encodeAnimated } from '../../src/events/event-bus.js';
import { RedisEventBus } from '../../src/events/redis-bus.js';
import { redisReady, testRedisUrl } from '../support/env.js';
import { captureLogger } from '../support/logs.js';
import { waitFor } from '../support/proxy.js';

/** These tests publish animation changes only: no URL event reaches a node to build. */
const noUrlEvents = () => undefined;

describe('the wire form of rows recorded as animated', () => {
  it('is a list of image ids, read back as it was written; anything else in it is left out', () => {
    const ids = ['3f0c5a52-2b7e-4c1e-9d51-8f4f3f6f2a10', 'b'];
    expect(encodeAnimated(ids)).toBe(JSON.stringify(ids));
    expect(decodeAnimated(encodeAnimated(ids))).toEqual(ids);
    expect(decodeAnimated('["a", 1, null, ["b"], {"id": "c"}, "d"]')).toEqual(['a', 'd']);
    expect(decodeAnimated('{"v":2,"e":["a"]}')).toEqual([]);
    expect(() => decodeAnimated('not json')).toThrow();
  });
});

// Rows recorded as animated between nodes through a real Redis: a worker's backfill announces
// them, every node serving subscriptions hears them on `<channel>:animated`.
describe('rows recorded as animated between nodes (real Redis)', () => {
  const channel = `signet-test:animation-changes:${process.pid}:events`;
  const connections: Redis[] = [];
  const connect = () => {
    const c = new Redis(testRedisUrl());
    connections.push(c);
    return c;
  };
  const { logger, logs } = captureLogger();
  let command: Redis;
  let apiA: RedisEventBus;
  let apiB: RedisEventBus;
  let worker: RedisEventBus;

  beforeAll(async () => {
    command = connect();
    await redisReady(command);
    apiA = new RedisEventBus(command, connect(), channel, logger, noUrlEvents);
    apiB = new RedisEventBus(command, connect(), channel, logger, noUrlEvents);
    // SIGNET_ROLE=worker: it publishes (its backfill runs there) and holds no subscription.
    worker = new RedisEventBus(command, connect(), channel, logger, noUrlEvents, false);
    await Promise.all([apiA.whenReady(), apiB.whenReady(), worker.whenReady()]);
  });
  afterAll(async () => {
    for (const bus of [apiA, apiB, worker]) await bus?.close();
    for (const c of connections) c.disconnect();
  });

  it("one node's message reaches every node that serves subscriptions, itself included, in one batch", async () => {
    const heardA: string[][] = [];
    const heardB: string[][] = [];
    const offA = apiA.onAnimated((ids) => heardA.push([...ids]));
    const offB = apiB.onAnimated((ids) => heardB.push([...ids]));
    try {
      await worker.publishAnimated(['i1', 'i2', 'i3']);
      await waitFor(() => heardA.length === 1 && heardB.length === 1, 5000);
      expect(heardA).toEqual([['i1', 'i2', 'i3']]);
      expect(heardB).toEqual([['i1', 'i2', 'i3']]);
      await apiB.publishAnimated(['i4']);
      await waitFor(() => heardA.length === 2 && heardB.length === 2, 5000);
      expect(heardA[1]).toEqual(['i4']);
      expect(heardB[1]).toEqual(['i4']);
      // Nothing to say, nothing sent: the next message heard is the one after it.
      await apiA.publishAnimated([]);
      await apiA.publishAnimated(['i5']);
      await waitFor(() => heardA.length === 3 && heardB.length === 3, 5000);
      expect([heardA[2], heardB[2]]).toEqual([['i5'], ['i5']]);
      // The two API nodes subscribe; the worker does not (Redis would send its own messages back).
      const [, subscribers] = (await command.pubsub('NUMSUB', `${channel}:animated`)) as [string, number];
      expect(Number(subscribers)).toBe(2);
    } finally {
      offA();
      offB();
    }
  });

  it('a malformed message costs a warning, and a listener that throws costs the others nothing', async () => {
    const heard: string[][] = [];
    const offThrows = apiA.onAnimated(() => {
      throw new Error('a broken listener');
    });
    const off = apiA.onAnimated((ids) => heard.push([...ids]));
    try {
      await command.publish(`${channel}:animated`, 'not json');
      await waitFor(() => logs.join('').includes('dropped a malformed animation message'), 5000);
      await apiB.publishAnimated(['i5']);
      await waitFor(() => heard.length === 1, 5000);
      expect(heard).toEqual([['i5']]);
      expect(logs.join('')).toContain('an animation listener failed');
    } finally {
      offThrows();
      off();
    }
  });
});
