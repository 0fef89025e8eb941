import { setTimeout as sleep } from 'node:timers/promises';
import type { Config } from '../../src/config.js';
import { WindowGrid } from '../../src/urls/window-grid.js';

/**
 * Waits (real clock) until no image of `ids` starts a new grid step within the next `withinMs`.
 * A page asked across an image's step turn signs that image's next URL — one write-back, by
 * design (docs/architecture.md, "The window grid") — so a test that warms a page and then expects
 * the next one to be a single MGET must not straddle a turn. With the default grid (16 offsets a
 * 45-minute step) a group of images turns every ~3 minutes: the wait is rare and short.
 */
export async function clearOfStepTurns(
  config: Pick<Config, 'urlTtlSeconds' | 'refreshAheadSeconds'>,
  ids: readonly string[],
  withinMs = 3_000,
): Promise<void> {
  const grid = new WindowGrid(config);
  for (;;) {
    const now = Date.now();
    const from = Math.floor(now / 1000);
    const to = Math.floor((now + withinMs) / 1000);
    if (ids.every((id) => grid.stepStart(id, from) === grid.stepStart(id, to))) return;
    await sleep(250);
  }
}
