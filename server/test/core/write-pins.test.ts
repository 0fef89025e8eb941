import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WritePins } from '../../src/db/write-pins.js';
import { testRedisUrl } from '../support/env.js';

// Read-your-own-writes across gateways: a pin set by the node that took the upload is seen by the
// node that takes the uploader's next request (the real Redis of the tests).
describe('write pins shared through Redis', () => {
  let redis: Redis;
  const prefix = `test-pins-${randomBytes(4).toString('hex')}:`;
  const quiet = { warn: () => {} };

  beforeAll(() => {
    redis = new Redis(testRedisUrl(), { maxRetriesPerRequest: 1 });
  });
  afterAll(async () => {
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length > 0) await redis.del(...keys);
    redis.disconnect();
  });

  it('a pin set on one node holds on another for pinMs, then lapses', async () => {
    const shared = { client: redis, prefix, timeoutMs: 500 };
    const nodeA = new WritePins({ pinMs: 400, redis: shared, logger: quiet });
    const nodeB = new WritePins({ pinMs: 400, redis: shared, logger: quiet });
    await nodeA.pin('alice');
    expect(await nodeB.pinned('alice')).toBe(true);
    expect(await nodeB.pinned('bob')).toBe(false);
    const ttl = await redis.pttl(`${prefix}pin:alice`);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(400);
    await new Promise((r) => setTimeout(r, 500));
    expect(await nodeA.pinned('alice')).toBe(false);
    expect(await nodeB.pinned('alice')).toBe(false);
  });

  it('a pin that cannot be checked counts as set (the primary always has the write)', async () => {
    const dead = new Redis('redis://127.0.0.1:1', {
      lazyConnect: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
    });
    dead.on('error', () => {});
    const pins = new WritePins({
      pinMs: 400,
      redis: { client: dead, prefix, timeoutMs: 100 },
      logger: quiet,
    });
    expect(await pins.pinned('carol')).toBe(true);
    // Setting one still pins on this node.
    await pins.pin('dave');
    expect(await pins.pinned('dave')).toBe(true);
    dead.disconnect();
  });
});
