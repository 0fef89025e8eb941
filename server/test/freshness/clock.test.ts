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

  it('never serves a URL with less than minTtl left, re-signs once per window, lets idle images go', async () => {
    const start = clock.now();
    const idle = new Set(ids.slice(0, 2)); // the two oldest: on the second page, viewed for 30 min only
    let lastIdleView = start;
    for (let minute = 1; minute <= 180; minute++) {
      clock.advance(60_000);
      const first = minute <= 30 ? 12 : 10;
      const res = await h.gql<PageData>(PAGE_QUERY, { first, minTtl: MIN_TTL });
      expect(res.errors).toBeUndefined();
      for (const e of res.data!.images.edges) {
        const left = (Date.parse(e.node.signedUrl.expiresAt) - clock.now()) / 1000;
        expect(left).toBeGreaterThanOrEqual(MIN_TTL);
      }
      if (minute <= 30) lastIdleView = clock.now();
      await h.container.access.flush();
      await h.container.refresher.sweep();
    }

    for (const id of ids) {
      const list = signings.get(id) ?? [];
      // First signing on demand, every later one by the refresh schedule.
      expect(list[0]?.reason).toBe('miss');
      // Once per window: consecutive signings at least TTL - AHEAD - jitter apart, never two
      // in one window (the jitter is at most 10% of AHEAD).
      for (let i = 1; i < list.length; i++) {
        expect(list[i]!.reason).toBe('refresh');
        expect(list[i]!.at - list[i - 1]!.at).toBeGreaterThanOrEqual((TTL - AHEAD - AHEAD * 0.1) * 1000);
        expect(list[i]!.at - list[i - 1]!.at).toBeLessThanOrEqual((TTL - AHEAD + 120) * 1000);
      }
      if (idle.has(id)) {
        // Idle: out of the schedule once it has not been looked at for the live window (= TTL).
        const after = list.filter((s) => s.at > lastIdleView + TTL * 1000);
        expect(after).toEqual([]);
        expect(list.length).toBeLessThanOrEqual(2);
      } else {
        // 3 hours / 45 minutes per window: 1 signing + 3 refreshes (the 4th comes due at 3h).
        expect(list.length).toBeGreaterThanOrEqual(4);
        expect(list.length).toBeLessThanOrEqual(5);
      }
    }
    // No refresh is left overdue.
    const { backlog } = await h.container.refresher.observe();
    expect(backlog).toBe(0);
  });
});
