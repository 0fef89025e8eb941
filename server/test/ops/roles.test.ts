import { afterEach, describe, expect, it } from 'vitest';
import type { RedisEventBus } from '../../src/events/redis-bus.js';
import { testRedisUrl } from '../support/env.js';
import { type Harness, startHarness } from '../support/harness.js';
import { seed } from '../support/seed.js';

// SIGNET_ROLE splits a deployment: api nodes serve HTTP only, workers do background work only.
describe('SIGNET_ROLE', () => {
  let h: Harness | undefined;
  afterEach(async () => {
    await h?.close();
    h = undefined;
  });

  it('worker: answers probes and metrics, refuses GraphQL, and sweeps due refreshes', async () => {
    h = await startHarness({
      driver: 'local',
      redis: testRedisUrl(),
      start: true,
      env: { SIGNET_ROLE: 'worker', URL_TTL_SECONDS: '6', REFRESH_AHEAD_SECONDS: '4' },
    });
    expect((await fetch(`${h.url}/healthz`)).status).toBe(200);
    expect((await fetch(`${h.url}/metrics`)).status).toBe(200);
    const gql = await fetch(`${h.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: '{ viewer { id } }' }),
    });
    expect(gql.status).toBe(404);
    // It publishes URL events but never subscribes to them (it holds no subscription): Redis
    // sends it visibility changes only.
    const numsub = async (channel: string) =>
      Number(((await h!.container.redis!.pubsub('NUMSUB', channel)) as [string, number])[1]);
    await (h.container.events as RedisEventBus).whenReady();
    expect(await numsub(`${h.config.redisPrefix}events`)).toBe(0);
    expect(await numsub(`${h.config.redisPrefix}events:access`)).toBe(1);
    expect(() => h!.container.events.subscribe(['x'], () => {})).toThrow(/does not receive URL events/);
    // Its background work runs: a URL signed through the service comes due and is refreshed.
    const [id] = await seed(h, 'alice', 1);
    const rows = await h.container.imagesRepo.findLive([id!]);
    await h.container.urls.resolveMany([{ id: id!, key: rows[0]!.objectKey, minTtl: 0 }]);
    await h.container.access.flush();
    const refreshed = async () => (await h!.container.metrics.refreshes.get()).values[0]?.value ?? 0;
    const deadline = Date.now() + 15_000;
    while ((await refreshed()) === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    expect(await refreshed()).toBeGreaterThan(0);
  });

  it('api: serves GraphQL and runs no background refresh', async () => {
    h = await startHarness({
      driver: 'local',
      redis: testRedisUrl(),
      start: true,
      env: { SIGNET_ROLE: 'api', URL_TTL_SECONDS: '6', REFRESH_AHEAD_SECONDS: '4' },
    });
    await seed(h, 'alice', 2);
    const res = await h.gql<{ images: { edges: unknown[] } }>(
      '{ images { edges { node { signedUrl { url } } } } }',
    );
    expect(res.data!.images.edges).toHaveLength(2);
    await new Promise((r) => setTimeout(r, 5000));
    expect((await h.container.metrics.refreshes.get()).values[0]?.value ?? 0).toBe(0);
    expect((await h.container.refresher.observe()).backlog).toBeGreaterThan(0);
  });
});
