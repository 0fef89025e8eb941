import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EventUrlOf, SignedUrlEvent } from '../../src/events/event-bus.js';
import { RedisEventBus } from '../../src/events/redis-bus.js';
import { redisReady, testRedisUrl } from '../support/env.js';
import { captureLogger } from '../support/logs.js';
import { waitFor } from '../support/proxy.js';

const event = (id: string): SignedUrlEvent => ({
  imageId: id,
  signedUrl: { url: `https://b.test/${id}?sig=x`, expiresAt: 2_000_000, refreshAt: 1_000_000, cached: false },
  objectKey: `u/alice/${id}.jpg`,
  signature: `sig-of-${id}`,
});

// URL events in the compact wire form through a real Redis: the receiving bus builds URLs for the
// ids it has listeners for only, and a record it cannot build costs only that record.
describe('URL events between nodes (real Redis)', () => {
  const channel = `signet-test:url-events:${process.pid}:events`;
  const connections: Redis[] = [];
  const connect = () => {
    const c = new Redis(testRedisUrl());
    connections.push(c);
    return c;
  };
  let built: string[];
  const { logger, logs } = captureLogger();
  let bus: RedisEventBus;

  beforeAll(async () => {
    const probe = connect();
    await redisReady(probe);
    const urlOf: EventUrlOf = (id, key, signature) => {
      built.push(id);
      if (id === 'throws') throw new Error('a record this node cannot build');
      if (id === 'unknown-region') return undefined;
      return {
        url: `https://b.test/${key}?${signature}`,
        expiresAt: 2_000_000,
        refreshAt: 1_000_000,
        cached: false,
      };
    };
    bus = new RedisEventBus(probe, connect(), channel, logger, urlOf);
    await bus.whenReady();
  });
  afterAll(async () => {
    await bus?.close();
    for (const c of connections) c.disconnect();
  });

  it('builds the URLs of the ids listened to, and one bad record costs only itself', async () => {
    built = [];
    const heard: SignedUrlEvent[] = [];
    const off = bus.subscribe(['a', 'throws', 'unknown-region', 'b'], (e) => heard.push(e));
    try {
      await bus.publish(['a', 'not-listened', 'throws', 'unknown-region', 'b'].map(event));
      await waitFor(() => heard.length === 2, 5000);
      expect(heard).toEqual([
        {
          imageId: 'a',
          signedUrl: {
            url: 'https://b.test/u/alice/a.jpg?sig-of-a',
            expiresAt: 2_000_000,
            refreshAt: 1_000_000,
            cached: false,
          },
        },
        {
          imageId: 'b',
          signedUrl: {
            url: 'https://b.test/u/alice/b.jpg?sig-of-b',
            expiresAt: 2_000_000,
            refreshAt: 1_000_000,
            cached: false,
          },
        },
      ]);
      expect(built).toEqual(['a', 'throws', 'unknown-region', 'b']);
      const warning = logs.map((l) => JSON.parse(l)).find((l) => l.msg?.startsWith('dropped URL events'));
      expect(warning).toMatchObject({ records: 2 });
    } finally {
      off();
    }
  });
});
