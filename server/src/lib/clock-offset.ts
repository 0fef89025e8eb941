/**
 * This host's clock against a server's (docs/operations.md, "Clocks"): the server's reading is
 * taken as made at the midpoint of the round trip, so the figure is off by at most half of it.
 * A round trip longer than `maxRoundTripMs` (a busy node, a slow network) tells too little and
 * gives undefined.
 */
export interface ClockReading {
  /** This host's clock minus the server's, in ms: positive when this host is ahead. */
  offsetMs: number;
  roundTripMs: number;
}

export const MAX_ROUND_TRIP_MS = 500;

export async function readClockOffset(
  read: () => Promise<number | undefined>,
  maxRoundTripMs = MAX_ROUND_TRIP_MS,
  wall: () => number = Date.now,
): Promise<ClockReading | undefined> {
  const started = performance.now();
  const wallAtStart = wall();
  const server = await read();
  const roundTripMs = performance.now() - started;
  if (server === undefined || !Number.isFinite(server) || roundTripMs > maxRoundTripMs) return undefined;
  return { offsetMs: wallAtStart + roundTripMs / 2 - server, roundTripMs };
}

/** "0.8 s ahead of", "12.0 s behind", "in step with" (under 1 ms). */
export function describeOffset(offsetMs: number): string {
  const s = Math.abs(offsetMs) / 1000;
  if (s < 0.001) return 'in step with';
  return `${s < 10 ? s.toFixed(3) : s.toFixed(1)} s ${offsetMs > 0 ? 'ahead of' : 'behind'}`;
}
