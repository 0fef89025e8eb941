import type { Clock } from './clock.js';
import type { RedisClient } from './redis/connect.js';

export interface RateLimitResult {
  allowed: boolean;
  /** Seconds until the window resets. */
  retryAfter: number;
}

/** A fixed-window limit per subject, shared by all nodes when Redis is there. */
export interface RateLimiter {
  hit(subject: string): Promise<RateLimitResult>;
}

export interface RateLimitOptions {
  limit: number;
  windowMs: number;
  /**
   * Names the limiter's Redis keys (`<prefix><name>:<subject>`, default `rl`), so two limiters
   * over the same viewers count apart (no name may start with another name and a `:`, or their
   * keys could meet).
   */
  name?: string;
}

export function createMemoryRateLimiter(clock: Clock, o: RateLimitOptions): RateLimiter {
  const windows = new Map<string, { start: number; count: number }>();
  return {
    async hit(subject) {
      const now = clock.now();
      let w = windows.get(subject);
      if (!w || now - w.start >= o.windowMs) {
        w = { start: now, count: 0 };
        windows.set(subject, w);
        if (windows.size > 10_000) {
          for (const [k, v] of windows) if (now - v.start >= o.windowMs) windows.delete(k);
        }
      }
      w.count++;
      return { allowed: w.count <= o.limit, retryAfter: Math.ceil((w.start + o.windowMs - now) / 1000) };
    },
  };
}

/**
 * Redis fixed window (INCR + PEXPIRE NX in one round trip). If Redis is down the limiter falls
 * back to the node's own memory window rather than refusing or allowing everything.
 */
export function createRedisRateLimiter(
  redis: RedisClient,
  prefix: string,
  clock: Clock,
  o: RateLimitOptions,
): RateLimiter {
  const fallback = createMemoryRateLimiter(clock, o);
  return {
    async hit(subject) {
      const key = `${prefix}${o.name ?? 'rl'}:${subject}`;
      try {
        const res = await redis.multi().incr(key).pexpire(key, o.windowMs, 'NX').pttl(key).exec();
        const count = Number(res?.[0]?.[1] ?? 0);
        const ttl = Number(res?.[2]?.[1] ?? o.windowMs);
        return { allowed: count <= o.limit, retryAfter: Math.max(1, Math.ceil(ttl / 1000)) };
      } catch {
        return fallback.hit(subject);
      }
    },
  };
}
