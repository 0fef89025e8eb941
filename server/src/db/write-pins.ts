import { withDeadline } from '../lib/late-timer.js';
import type { Logger } from '../logger.js';
import type { RedisClient } from '../redis/connect.js';

const NO_ANSWER = 'no answer from Redis in time';

export interface WritePinsOptions {
  /** How long a viewer's reads stay on the primary after a write. */
  pinMs: number;
  /** Shares pins between gateways (a viewer's next request may reach another node). */
  redis?: { client: RedisClient; prefix: string; timeoutMs: number };
  logger: Pick<Logger, 'warn'>;
}

/** Pins kept in process before expired ones are swept. */
const SWEEP_AT = 10_000;

/**
 * Read-your-own-writes with a read replica: a viewer who has just uploaded or deleted reads from
 * the primary for `pinMs` (the replica's lag bound plus two polls, so by then any replica still
 * in use has replayed the write). Pins live in this process and, with Redis, under
 * `<prefix>pin:<viewer>` for the other gateways. A pin that cannot be checked counts as set: the
 * primary always has the write. See docs/operations.md, "PostgreSQL read replica".
 */
export class WritePins {
  private readonly local = new Map<string, number>();

  constructor(private readonly o: WritePinsOptions) {}

  async pin(viewer: string): Promise<void> {
    const until = Date.now() + this.o.pinMs;
    if (this.local.size >= SWEEP_AT) {
      const now = Date.now();
      for (const [v, u] of this.local) if (u <= now) this.local.delete(v);
    }
    this.local.set(viewer, until);
    const r = this.o.redis;
    if (!r) return;
    try {
      await withDeadline(r.client.set(this.key(viewer), '1', 'PX', this.o.pinMs), r.timeoutMs, NO_ANSWER);
    } catch (err) {
      // This node still pins; another node may read the replica for up to its lag bound.
      this.o.logger.warn({ err: (err as Error).message }, 'could not share a write pin');
    }
  }

  async pinned(viewer: string): Promise<boolean> {
    const until = this.local.get(viewer);
    if (until !== undefined) {
      if (until > Date.now()) return true;
      this.local.delete(viewer);
    }
    const r = this.o.redis;
    if (!r) return false;
    try {
      return (await withDeadline(r.client.exists(this.key(viewer)), r.timeoutMs, NO_ANSWER)) === 1;
    } catch {
      return true;
    }
  }

  private key(viewer: string): string {
    return `${this.o.redis!.prefix}pin:${viewer}`;
  }
}
