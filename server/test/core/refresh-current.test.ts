import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeClock } from '../../src/clock.js';
import { WindowGrid } from '../../src/urls/window-grid.js';
import { type Harness, startHarness } from '../support/harness.js';
import { OwnedRedis } from '../support/redis-server.js';
import { PAGE_QUERY, type PageData, seed } from '../support/seed.js';

// A claimed id whose cached URL is already its step's: a write-back whose URL landed while its
// schedule entry did not follow (another node of a cluster, or a reply that timed out) leaves it
// due in the schedule. The sweep must neither sign it again nor leave it to come round with
// every lease until its step ends.
describe.each(['redis', 'memory'] as const)(
  'a sweep claiming URLs already this step’s (%s store)',
  (kind) => {
    const clock = new FakeClock(Date.now());
    let redis: OwnedRedis | undefined;
    let h: Harness;
    let ids: string[];

    beforeAll(async () => {
      redis = kind === 'redis' ? await OwnedRedis.start() : undefined;
      h = await startHarness({ driver: 'cos', redis: redis?.url ?? 'memory', clock });
      ids = await seed(h, 'alice', 20);
    });
    afterAll(async () => {
      await h?.close();
      await redis?.kill();
    });

    it('signs nothing and makes each due when its step ends, not when its lease does', async () => {
      // From a moment when no image's step ends within the next two minutes.
      const grid = new WindowGrid(h.config);
      const nextEnd = () => Math.min(...ids.map((id) => grid.refreshAtOf(grid.windowAt(id, clock.now()))));
      while (nextEnd() - clock.now() < 120_000) clock.advance(60_000);

      const res = await h.gql<PageData>(PAGE_QUERY, { first: 20 });
      expect(res.errors).toBeUndefined();
      const edges = res.data!.images.edges;
      expect(edges.every((e) => !e.node.signedUrl.cached)).toBe(true);
      const ends = edges.map((e) => Date.parse(e.node.signedUrl.refreshAt));
      // The page's write-back (sent after its answer) has landed.
      for (let i = 0; i < 100; i++) {
        if ((await h.store.status(ids)).every((s) => s.sig !== null)) break;
        await new Promise((r) => setTimeout(r, 20));
      }
      await h.container.access.flush(); // recently viewed: a claim keeps them
      // The schedule's part of the write-back lost: every entry still due from before.
      await h.store.reschedule(ids.map((id) => ({ id, refreshAt: clock.now() - 1000 })));
      expect((await h.store.scheduleInfo(clock.now())).backlog).toBe(ids.length);

      let signed = 0;
      const count = h.container.telemetry.signed.bind(h.container.telemetry);
      h.container.telemetry.signed = (reason, signedIds) => {
        signed += signedIds.length;
        count(reason, signedIds);
      };
      const first = await h.container.refresher.sweep();
      expect(first).toMatchObject({ batches: 1, failedBatches: 0 });
      expect(signed).toBe(0);
      expect((await h.store.status(ids)).every((s) => s.refreshCount === 0)).toBe(true);

      // Not due when the lease (at most 30 s) would have run out; all due once their steps end.
      expect((await h.store.scheduleInfo(clock.now() + 31_000)).backlog).toBe(0);
      expect((await h.store.scheduleInfo(Math.min(...ends) - 1)).backlog).toBe(0);
      expect((await h.store.scheduleInfo(Math.max(...ends))).backlog).toBe(ids.length);
      clock.advance(31_000);
      expect((await h.container.refresher.sweep()).batches).toBe(0);
      expect(signed).toBe(0);
    });
  },
);
