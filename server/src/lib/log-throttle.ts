/**
 * At most one log line per interval for each source, for events that repeat many times a second
 * while something is down (a Redis connection's reconnect attempts, BullMQ's 'error' events). The
 * line after a quiet stretch says how many were left out since the previous one.
 */
export class LogThrottle {
  private readonly last = new Map<string, { at: number; suppressed: number }>();

  constructor(
    private readonly intervalMs = 60_000,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * Calls `log` with how many events of `source` were left out since its previous line, or leaves
   * this one out. Sources are a fixed handful per process (the map is never pruned).
   */
  run(source: string, log: (suppressed: number) => void): void {
    const t = this.now();
    const seen = this.last.get(source);
    if (seen && t - seen.at < this.intervalMs) {
      seen.suppressed++;
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

const UNREACHABLE =
  /ECONNREFUSED|ECONNRESET|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|ENOTFOUND|EAI_AGAIN|EPIPE|Connection is closed|All sentinels are unreachable|None of startup nodes is available|Failed to refresh slots cache/;

/** Whether a Redis client's error says Redis cannot be reached (rather than a command's failure). */
export function isRedisUnreachable(err: Error & { code?: string }): boolean {
  return UNREACHABLE.test(err.code ?? '') || UNREACHABLE.test(err.message);
}
