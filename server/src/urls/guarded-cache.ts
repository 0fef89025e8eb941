import type { Logger } from '../logger.js';
import type { UrlSignature } from '../storage/storage.js';
import { CacheBreaker } from './cache-breaker.js';
import type { StoreEntry, UrlCache } from './store.js';
import type { UrlTelemetry } from './telemetry.js';

/**
 * The URL cache behind a breaker: a failing cache never fails a request. A read that fails (or
 * is skipped while the breaker cools down) reads as all misses; a write that fails is logged and
 * counted. Callers that must know (refresh sweeps) see the write's outcome, and pass `always`:
 * the breaker spares requests the cache's timeout, while a sweep in the background is better
 * served by the cache's real answer. Skipped during a cool-down, a sweep's retries (100-400 ms
 * apart) would all fail inside the 1 s cool-down of the failure they retry, and the batch would
 * wait for its lease; a sweep that gets through also closes the breaker for the requests.
 */
export class GuardedCache {
  constructor(
    private readonly cache: UrlCache,
    private readonly telemetry: UrlTelemetry,
    private readonly logger: Logger,
    private readonly breaker = new CacheBreaker(),
  ) {}

  /** Cached signatures in the order of ids; all misses when the cache is away. */
  async read(ids: readonly string[], always = false): Promise<(UrlSignature | null)[]> {
    if (!always && !this.breaker.allow()) {
      this.telemetry.fallback();
      return [];
    }
    try {
      const found = await this.cache.read(ids);
      this.breaker.succeeded();
      return found;
    } catch (err) {
      this.failed(err);
      return [];
    }
  }

  /**
   * Starts a write-back in this tick (so whatever else is sent in the same tick shares its round
   * trip). Resolves to the error, or null once stored; undefined when the breaker skipped it.
   * `first` runs right before the write is started, and only if the breaker lets it start (the
   * signer's event: sent ahead of the write on the same connection). With `always` the write is
   * started whatever the breaker says.
   */
  write(
    entries: readonly StoreEntry[],
    reason: 'miss' | 'refresh',
    first?: () => void,
    always = false,
  ): Promise<Error | null> | undefined {
    if (!always && !this.breaker.allow()) return undefined;
    first?.();
    return this.cache.write(entries, reason).then(
      () => {
        this.breaker.succeeded();
        return null;
      },
      (err: unknown) => {
        this.failed(err);
        return err instanceof Error ? err : new Error(String(err));
      },
    );
  }

  private failed(err: unknown): void {
    if (!this.breaker.open) {
      this.logger.warn({ err: (err as Error).message }, 'URL cache unavailable; signing directly');
    }
    this.breaker.failed();
    this.telemetry.fallback();
  }
}
