import type { Logger } from '../logger.js';
import type { UrlSignature } from '../storage/storage.js';
import { CacheBreaker } from './cache-breaker.js';
import type { StoreEntry, UrlCache } from './store.js';
import type { UrlTelemetry } from './telemetry.js';

/**
 * The URL cache behind a breaker: a failing cache never fails a request. A read that fails (or
 * is skipped while the breaker cools down) reads as all misses; a write that fails is logged and
 * counted. Callers that must know (refresh sweeps) see the write's outcome.
 */
export class GuardedCache {
  constructor(
    private readonly cache: UrlCache,
    private readonly telemetry: UrlTelemetry,
    private readonly logger: Logger,
    private readonly breaker = new CacheBreaker(),
  ) {}

  /** Cached signatures in the order of ids; all misses when the cache is away. */
  async read(ids: readonly string[]): Promise<(UrlSignature | null)[]> {
    if (!this.breaker.allow()) {
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
   * signer's event: sent ahead of the write on the same connection).
   */
  write(
    entries: readonly StoreEntry[],
    reason: 'miss' | 'refresh',
    first?: () => void,
  ): Promise<Error | null> | undefined {
    if (!this.breaker.allow()) return undefined;
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
