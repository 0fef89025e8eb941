/**
 * At most one log line per interval for each source, for events that repeat many times a second
 * while something is down (a Redis connection's reconnect attempts, BullMQ's 'error' events, URL
 * events a node cannot build). The line after a quiet stretch says how many were left out since
 * the previous one.
 */
export class LogThrottle {
  private readonly last = new Map<string, { at: number; suppressed: number }>();

  constructor(
    private readonly intervalMs = 60_000,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * Calls `log` with how many events of `source` were left out since its previous line, or leaves
   * this one out. An event may weigh more than one (`count`: records in a batch). Sources are a
   * fixed handful per process (the map is never pruned).
   */
  run(source: string, log: (suppressed: number) => void, count = 1): void {
    const t = this.now();
    const seen = this.last.get(source);
    if (seen && t - seen.at < this.intervalMs) {
      seen.suppressed += count;
      return;
    }
    this.last.set(source, { at: t, suppressed: 0 });
    log(seen?.suppressed ?? 0);
  }
}

/** `{ suppressed: n }` for a log line's fields when events were left out, nothing otherwise. */
export function suppressedField(suppressed: number): { suppressed?: number } {
  return suppressed > 0 ? { suppressed } : {};
}
