import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeClock } from '../../src/clock.js';
import { type Harness, startHarness } from '../support/harness.js';
import { OwnedRedis } from '../support/redis-server.js';
import { PAGE_QUERY, type PageData, seed } from '../support/seed.js';
import { subscribeSse } from '../support/sse.js';

const SUB = 'subscription($ids: [ID!]!) { signedUrlRefreshed(ids: $ids) { imageId signedUrl { url } } }';
type Event = { data?: { signedUrlRefreshed: { imageId: string; signedUrl: { url: string } } } };

async function waitUntil(check: () => boolean | Promise<boolean>, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 20));
  }
}

// Redis kept nothing (a restart without persistence, or a failover that dropped the last writes):
// the URLs, the schedule and the access sets are gone. A page asked for again signs and
// schedules its URLs anew; an image that is only subscribed to (a page left open) was never
// asked for again, so nothing put it back in the schedule, and its subscribers' URLs ran out.
describe('subscribed images after Redis lost its data', () => {
  const clock = new FakeClock(Date.now());
  let redis: OwnedRedis;
  let h: Harness;
  let ids: string[];

  beforeAll(async () => {
    redis = await OwnedRedis.start();
    h = await startHarness({ driver: 'cos', redis: redis.url, clock });
    ids = await seed(h, 'alice', 5);
  });
  afterAll(async () => {
    await h?.close();
    await redis?.kill();
  });

  it('are scheduled again by their subscription’s next mark, refreshed, and announced', async () => {
    const admin = redis.client();
    const token = await h.token('alice');
    const sub = subscribeSse<Event>(h.url, SUB, { ids }, token);
    try {
      const page = await h.gql<PageData>(PAGE_QUERY, { first: 5 });
      expect(page.errors).toBeUndefined();
      await waitUntil(async () => (await h.store.status(ids)).every((s) => s.sig !== null));
      await sub.opened;
      await waitUntil(() => h.container.events.subscribedIds().length === ids.length);
      await h.container.access.flush();
      const far = clock.now() + 86_400_000;
      expect((await h.store.scheduleInfo(far)).backlog).toBe(ids.length);

      await admin.flushall();
      expect((await h.store.scheduleInfo(far)).backlog).toBe(0);

      // The next period's mark of the subscribed ids (an id is marked once a period).
      clock.advance(16_000);
      await h.container.access.flush();
      const info = await h.store.scheduleInfo(clock.now());
      expect(info.backlog).toBe(ids.length);

      const swept = await h.container.refresher.sweep();
      expect(swept).toMatchObject({ refreshed: ids.length, failedBatches: 0 });
      expect((await h.store.status(ids)).every((s) => s.sig !== null)).toBe(true);
      await waitUntil(() => {
        const seen = new Set(sub.events.map((e) => e.data.data?.signedUrlRefreshed.imageId));
        return ids.every((id) => seen.has(id));
      });

      // An image already in the schedule keeps its time: the mark only fills a gap.
      const before = await admin.zrange(`${h.config.redisPrefix}{refresh}:due`, 0, -1, 'WITHSCORES');
      clock.advance(16_000);
      await h.container.access.flush();
      const after = await admin.zrange(`${h.config.redisPrefix}{refresh}:due`, 0, -1, 'WITHSCORES');
      expect(after).toEqual(before);
    } finally {
      sub.close();
      admin.disconnect();
    }
  });
});
