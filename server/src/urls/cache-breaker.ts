/**
 * After a cache failure, requests skip the cache for a short cool-down instead of each paying
 * the Redis timeout (twice: the read and the write-back); then one call probes it again.
 * Wall-clock time on purpose: it is about the network, not the (possibly fake) URL clock.
 */
export class CacheBreaker {
  private openUntil = 0;
  private probing = false;

  constructor(
    private readonly cooldownMs = 1000,
    private readonly now: () => number = () => Date.now(),
  ) {}

  /** May this call go to the cache? While open, only one probe is let through per cool-down. */
  allow(): boolean {
    if (this.openUntil === 0) return true;
    if (this.probing || this.now() < this.openUntil) return false;
    this.probing = true;
    return true;
  }

  succeeded(): void {
    this.openUntil = 0;
    this.probing = false;
  }

  failed(): void {
    this.openUntil = this.now() + this.cooldownMs;
    this.probing = false;
  }

  get open(): boolean {
    return this.openUntil !== 0;
  }
}
