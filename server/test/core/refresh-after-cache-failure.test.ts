import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeClock } from '../../src/clock.js';
import { WindowGrid } from '../../src/urls/window-grid.js';
import { type Harness, startHarness } from '../support/harness.js';
import { OwnedRedis } from '../support/redis-server.js';
import { PAGE_QUERY, type PageData, seed } from '../support/seed.js';

// A failed cache call opens the breaker for a second, so that requests skip a Redis that is away
// instead of each paying its timeout. A sweep is not a request: its retries (100-400 ms apart)
// came inside that second, were skipped by the breaker ("cooling down"), and the batch waited
// for its lease (up to 30 s) after a Redis that had failed once and was fine again. The failure
// here is Redis' own: out of memory with `noeviction`, it refuses writes and still answers reads.
describe('a sweep right after a failed cache write', () => {
  const clock = new FakeClock(Date.now());
  let redis: OwnedRedis;
  let h: Harness;
  let ids: string[];

  beforeAll(async () => {
    redis = await OwnedRedis.start();
    h = await startHarness({ driver: 'cos', redis: redis.url, clock });
    ids = await seed(h, 'alice', 10);
  });
  afterAll(async () => {
    await h?.close();
    await redis?.kill();
  });

  it('reaches Redis inside the breaker’s cool-down, refreshes the batch, and closes the breaker for requests', async () => {
    const admin = redis.client();
    const grid = new WindowGrid(h.config);
    try {
      // A page stores its URLs and schedules their refresh; then their steps end.
      const first = await h.gql<PageData>(PAGE_QUERY, { first: 10 });
      expect(first.errors).toBeUndefined();
      for (let i = 0; i < 100 && (await h.store.status(ids)).some((s) => s.sig === null); i++) {
        await new Promise((r) => setTimeout(r, 10));
      }
      const before = await h.store.status(ids);
      expect(before.every((s) => s.sig !== null)).toBe(true);
      clock.set(Math.max(...before.map((s) => grid.refreshAtOf(s.sig!))) + 1);
      expect((await h.store.scheduleInfo(clock.now())).backlog).toBe(ids.length);

      // The page again, its URLs now stale, with a write-back Redis refuses: the breaker opens.
      await admin.config('SET', 'maxmemory-policy', 'noeviction');
      await admin.config('SET', 'maxmemory', '1');
      const refused = await h.gql<PageData>(PAGE_QUERY, { first: 10 });
      expect(refused.errors).toBeUndefined();
      expect(refused.data!.images.edges.every((e) => !e.node.signedUrl.cached)).toBe(true);
      const failed = Date.now();
      // The write-back (sent after the answer) is refused and logged: wait for that.
      for (let i = 0; i < 100 && !h.logs.some((l) => l.includes('URL cache unavailable')); i++) {
        await new Promise((r) => setTimeout(r, 10));
      }
      expect(h.logs.some((l) => l.includes('URL cache unavailable'))).toBe(true);

      // Redis takes writes again; the images were looked at, and are due.
      await admin.config('SET', 'maxmemory', '0');
      await h.container.access.flush();

      const result = await h.container.refresher.sweep();
      // All of it inside the cool-down of the failure above, or the test says nothing.
      expect(Date.now() - failed).toBeLessThan(1000);
      expect(result).toMatchObject({ batches: 1, failedBatches: 0, refreshed: ids.length });
      const stored = await h.store.status(ids);
      expect(stored.every((s) => s.sig !== null && s.refreshCount === 1)).toBe(true);

      // The sweep's success closed the breaker: the next page is read from the cache, still
      // inside the second the failure would have kept it open.
      const page = await h.gql<PageData>(PAGE_QUERY, { first: 10 });
      expect(Date.now() - failed).toBeLessThan(1000);
      expect(page.data!.images.edges.every((e) => e.node.signedUrl.cached)).toBe(true);
      // And each is this step's URL: the one the sweep stored.
      expect(stored.every((s, i) => grid.isCurrent(ids[i]!, s.sig!, clock.now()))).toBe(true);
    } finally {
      await admin.config('SET', 'maxmemory', '0');
      admin.disconnect();
    }
  });
});
