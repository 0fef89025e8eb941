import type { ImageRow } from '../db/types.js';

/** How a proxy request proved its right to the image, and what that allows caches to do. */
export interface ProxyGrant {
  row: ImageRow;
  /** Epoch ms the capability token dies (null: never, or a bearer request). */
  tokenExpiresAt: number | null;
  /** The answer depends on the Authorization header (bearer requests). */
  byBearer: boolean;
}

/** Seconds from now until `at` (epoch ms), for capping cache lifetimes; never negative. */
export function secondsUntil(at: number, now: number): number {
  return Math.max(0, Math.floor((at - now) / 1000));
}
