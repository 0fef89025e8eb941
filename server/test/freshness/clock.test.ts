import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { FakeClock } from '../../src/clock.js';
import { testRedisUrl } from '../support/env.js';
import { type Harness, startHarness } from '../support/harness.js';
import { PAGE_QUERY, type PageData, seed } from '../support/seed.js';

const TTL = 3600;
const AHEAD = 900;
const MIN_TTL = 300;

// One process, fake time: a page viewed every minute for three simulated hours.
describe.each([
  ['in-process cache', 'memory'],
  ['Redis', testRedisUrl()],
])('refresh-ahead with a fake clock (%s)', (_name, redis) => {
  const clock = new FakeClock(Date.now());
  let h: Harness;
  let ids: string[];
  const signings = new Map<string, { at: number; reason: string }[]>();

  beforeAll(async () => {
    h = await startHarness({
      driver: 'local',
      redis,
      clock,
      env: { URL_TTL_SECONDS: String(TTL), REFRESH_AHEAD_SECONDS: String(AHEAD) },
    });
    ids = await seed(h, 'alice', 12);
    // Every signing is told to the URL path's one observer, with its reason.
    const signed = h.container.telemetry.signed.bind(h.container.telemetry);
    vi.spyOn(h.container.telemetry, 'signed').mockImplementation((reason, signedIds) => {
      for (const id of signedIds) {
        const list = signings.get(id) ?? [];
        list.push({ at: clock.now(), reason });
        signings.set(id, list);
      }
      signed(reason, signedIds);
    });
  });
  afterAll(async () => {
    await h?.close();
  });

  it('never serves a URL with less than minTtl left, one URL per image per step, lets idle images go', async () => {
    const start = clock.now();
    const idle = new Set(ids.slice(0, 2)); // the two oldest: on the second page, viewed for 30 min only
    let lastIdleView = start;
    /** Every distinct URL each image was handed, with when it was first handed out. */
    const handed = new Map<string, Map<string, number>>();
    for (let minute = 1; minute <= 180; minute++) {
      clock.advance(60_000);
      const first = minute <= 30 ? 12 : 10;
      const res = await h.gql<PageData>(PAGE_QUERY, { first, minTtl: MIN_TTL });
      expect(res.errors).toBeUndefined();
      for (const e of res.data!.images.edges) {
        const left = (Date.parse(e.node.signedUrl.expiresAt) - clock.now()) / 1000;
        expect(left).toBeGreaterThanOrEqual(MIN_TTL);
        // On the grid, a URL always has more than REFRESH_AHEAD left while it is handed out.
        expect(left).toBeGreaterThan(AHEAD);
        const urls = handed.get(e.node.id) ?? new Map<string, number>();
        if (!urls.has(e.node.signedUrl.url)) urls.set(e.node.signedUrl.url, clock.now());
        handed.set(e.node.id, urls);
      }
      if (minute <= 30) lastIdleView = clock.now();
      await h.container.access.flush();
      await h.container.refresher.sweep();
    }

    const step = (TTL - AHEAD) * 1000;
    for (const id of ids) {
      const list = signings.get(id) ?? [];
      // First signing on demand.
      expect(list[0]?.reason).toBe('miss');
      // Once per step: the first refresh comes at the end of the step the image was first asked
      // in (at most one step later), every later one exactly a step after the one before (the
      // sweeps here run once a simulated minute).
      if (list.length > 1) expect(list[1]!.at - list[0]!.at).toBeLessThanOrEqual(step + 60_000);
      for (let i = 1; i < list.length; i++) {
        // Whoever comes first after a step's boundary signs it: the sweep, or a request that
        // came before the sweep (which then leaves that image alone). Never both.
        if (i > 1) {
          expect(list[i]!.at - list[i - 1]!.at).toBeGreaterThanOrEqual(step - 60_000);
          expect(list[i]!.at - list[i - 1]!.at).toBeLessThanOrEqual(step + 60_000);
        }
      }
      if (!idle.has(id)) {
        // One URL per step: 180 minutes viewed once a minute, a step of 45 minutes (a step
        // already under way at the start, so 4 or 5), each URL signed exactly once.
        const urls = handed.get(id)!;
        expect(urls.size).toBeGreaterThanOrEqual(4);
        expect(urls.size).toBeLessThanOrEqual(5);
        expect(list.length).toBe(urls.size);
      }
      if (idle.has(id)) {
        // Idle: out of the schedule once it has not been looked at for the live window (= TTL).
        const after = list.filter((s) => s.at > lastIdleView + TTL * 1000);
        expect(after).toEqual([]);
        // Viewed for 30 minutes, kept fresh for the live window (60 minutes) after: at most the
        // first signing plus the two step boundaries those 90 minutes can hold.
        expect(list.length).toBeLessThanOrEqual(3);
      } else {
        expect(list.length).toBeGreaterThanOrEqual(4);
        expect(list.length).toBeLessThanOrEqual(5);
      }
    }
    // No refresh is left overdue.
    const { backlog } = await h.container.refresher.observe();
    expect(backlog).toBe(0);
  });
});
