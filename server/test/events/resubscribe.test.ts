import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { AccessChange } from '../../src/events/event-bus.js';
import { RedisEventBus } from '../../src/events/redis-bus.js';
import { createRedisClient, type RedisClient } from '../../src/redis/connect.js';
import { captureLogger } from '../support/logs.js';
import { waitFor } from '../support/proxy.js';
import { OwnedRedis } from '../support/redis-server.js';
import { TcpProxy } from '../support/tcp-proxy.js';

// The bus' subscriber connection after Redis goes away and comes back: the bus subscribes again
// itself (ioredis' own re-subscription is off), so events flow again, and a node shut down while
// that subscription is unanswered leaves no promise rejected with nobody listening.
/** These tests publish visibility changes only: no URL event reaches a node to build. */
const noUrlEvents = () => undefined;

describe('the event bus across a Redis restart (real redis-server)', () => {
  let redis: OwnedRedis;
  const clients: RedisClient[] = [];
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => unhandled.push(reason);

  /** Connections made as the container makes them (the subscriber's kind included). */
  const open = (kind: 'command' | 'subscriber') => {
    const c = createRedisClient({
      url: redis.url,
      clusterNodes: [],
      commandTimeoutMs: 250,
      blocking: kind === 'subscriber',
      resubscribedByOwner: kind === 'subscriber',
    });
    c.on('error', () => {});
    clients.push(c);
    return c;
  };

  beforeEach(async () => {
    unhandled.length = 0;
    process.on('unhandledRejection', onUnhandled);
    redis = await OwnedRedis.start();
  });
  afterEach(async () => {
    process.off('unhandledRejection', onUnhandled);
    for (const c of clients.splice(0)) c.disconnect();
    await redis.kill();
  });

  it('hears events again once Redis is back', async () => {
    const { logger } = captureLogger();
    const bus = new RedisEventBus(open('command'), open('subscriber'), 'ch', logger, noUrlEvents);
    const heard: AccessChange[] = [];
    bus.onAccessChange((changes) => heard.push(...changes));
    await bus.whenReady();
    const change = { imageId: 'img', ownerId: 'alice', visibility: 'public' } as const;
    await bus.publishAccessChanges([change]);
    await waitFor(() => heard.length === 1);

    await redis.kill();
    await redis.start();
    // Published until heard: the subscriber reconnects on its own schedule (up to 1 s).
    await waitFor(async () => {
      await bus.publishAccessChanges([change]).catch(() => {});
      return heard.length > 1;
    }, 10_000);
    expect(heard[heard.length - 1]).toEqual(change);
    await bus.close();
  });

  it('a shutdown while the re-subscription is unanswered rejects nothing unhandled', async () => {
    const { logger, logs } = captureLogger();
    // The subscriber reaches Redis through a proxy that, once the connection is cut and made
    // again, keeps its SUBSCRIBE from Redis: the node shuts down with it unanswered.
    const proxy = await TcpProxy.start('127.0.0.1', redis.port);
    try {
      const subscriber = createRedisClient({
        url: `redis://127.0.0.1:${proxy.port}`,
        clusterNodes: [],
        commandTimeoutMs: 250,
        blocking: true,
        resubscribedByOwner: true,
      });
      subscriber.on('error', () => {});
      const bus = new RedisEventBus(open('command'), subscriber, 'ch', logger, noUrlEvents);
      await bus.whenReady();
      proxy.cut();
      proxy.withhold('subscribe');
      proxy.restore();
      await waitFor(() => proxy.withheld.length > 0);
      expect(subscriber.status).toBe('ready');
      await bus.close();
      await waitFor(() => subscriber.status === 'end');
      // Rejections are reported after the microtasks of the turn that rejected them.
      await new Promise((r) => setTimeout(r, 100));
      expect(unhandled.map(String)).toEqual([]);
      // The bus heard its re-subscription fail, and keeps quiet about it: it was shutting down.
      expect(logs.join('')).not.toMatch(/event subscription failed/);
    } finally {
      await proxy.close();
    }
  });
});
