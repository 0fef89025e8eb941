// Micro-measure: what a message naming rows recorded as animated costs a node holding many
// `preset` subscriptions (LiveUrls over the in-process bus): the longest stretch the event loop
// is held, and the time until every slice has run.
// `npx tsx bench/tools/animated-replan.ts [streams] [ids per message]`.
import { randomUUID } from 'node:crypto';
import type { Viewer } from '../../server/src/auth/viewer.js';
import { MemoryEventBus } from '../../server/src/events/memory-bus.js';
import { createMetrics } from '../../server/src/metrics.js';
import { ANIMATED_LOOKUPS_PER_SLICE, LiveUrls } from '../../server/src/urls/live-urls.js';

const streams = Number(process.argv[2] ?? 10_000);
const perMessage = Number(process.argv[3] ?? 100);
interface Row {
  id: string;
  animated: boolean | null;
}
const events = new MemoryEventBus();
const live = new LiveUrls<Row>({
  images: {
    visible: async (_v: Viewer, ids: readonly string[]) => ids.map((id) => ({ id, animated: null })),
    canRead: () => true,
  },
  events,
  metrics: createMetrics(),
  limits: { perViewer: Number.MAX_SAFE_INTEGER, stalledMs: 3_600_000 },
  logger: { error: (o: unknown, msg?: string) => console.error(msg, o) },
});
const thumb = { preset: 'thumb', urlIdOf: (r: Row) => (r.animated ? r.id : `${r.id}~thumb`) };
const held: string[][] = [];
for (let s = 0; s < streams; s++) {
  const ids = Array.from({ length: 100 }, () => randomUUID());
  held.push(ids);
  await live.listen({ id: `viewer-${s % 100}`, isAdmin: false }, ids, thumb);
}

/** The longest gap between turns of the loop while `act` and what it queued run. */
async function measure(act: () => Promise<void>): Promise<{ longestMs: number; totalMs: number }> {
  let longest = 0;
  let done = false;
  const tick = () => {
    const now = performance.now();
    longest = Math.max(longest, now - last);
    last = now;
    if (!done) setImmediate(tick);
  };
  const start = performance.now();
  let last = start;
  await act();
  setImmediate(tick);
  // Every slice queued by then has run once a few more turns pass with nothing left.
  for (let i = 0; i < Math.ceil((streams * perMessage) / ANIMATED_LOOKUPS_PER_SLICE) + 3; i++)
    await new Promise((r) => setImmediate(r));
  const totalMs = performance.now() - start;
  done = true;
  return { longestMs: longest, totalMs };
}

for (let round = 0; round < 5; round++) {
  const none = Array.from({ length: perMessage }, () => randomUUID());
  const a = await measure(() => events.publishAnimated(none));
  const some = held[round * 11]!.slice(0, perMessage);
  const b = await measure(() => events.publishAnimated(some));
  process.stdout.write(
    `${streams} streams, ${perMessage} ids a message: held by none: longest turn ${a.longestMs.toFixed(1)} ms, ` +
      `all slices ${a.totalMs.toFixed(1)} ms; all of one stream's: ${b.longestMs.toFixed(1)} ms, ${b.totalMs.toFixed(1)} ms\n`,
  );
}
