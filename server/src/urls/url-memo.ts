import type { Clock } from '../clock.js';
import { BoundedMap } from '../lib/bounded-map.js';
import type { UrlSignature } from '../storage/storage.js';
import type { Variant } from '../storage/variant.js';
import { type ResolvedUrl, refreshAtOf, type StorageOf } from './resolved-url.js';
import type { WindowGrid } from './window-grid.js';

/** URLs kept built in process: a few MB, enough for every image a node serves often. */
const URL_MEMO_ENTRIES = 20_000;

/**
 * The URL built for a signature that the memo did not keep, carried on that signature object
 * (with the object key it was built for): a fresh signing is presented twice, for its event and
 * then for the response or the refresh result, and the second takes the string the first built
 * and lets go of it (the in-process store keeps signature objects: it must not keep URLs too).
 */
const BUILT_URL = Symbol('builtUrl');
const BUILT_KEY = Symbol('builtKey');
type CarryingSignature = UrlSignature & { [BUILT_URL]?: string | undefined; [BUILT_KEY]?: string };

interface Built {
  start: number;
  end: number;
  key: string;
  /** The signature too: on `s3` one key, window and bucket may have two (derived-variants.ts). */
  sig: string;
  /** The region whose bucket the URL points at (undefined: this node's own). */
  region: string | undefined;
  url: string;
  /** When this node last read or signed this signature (epoch ms). */
  seenAt: number;
  /** The step this grid window is current for: [from, until) in epoch ms. */
  from: number;
  until: number;
  /** The URL as a cache hit hands it out, made once (treated as immutable by every reader). */
  asHit?: ResolvedUrl;
}

/**
 * The URL of each signature, built once: a warm page hands out the same URLs request after
 * request, and rebuilding a page's worth of long strings each time is CPU and garbage (collected
 * while requests wait on Redis) for nothing. Signing is deterministic — one key and one window
 * give one signature — so a memo keyed by image and window is always right.
 */
export class UrlMemo {
  private readonly built = new BoundedMap<string, Built>(URL_MEMO_ENTRIES);

  constructor(
    private readonly storageOf: StorageOf,
    private readonly clock: Clock,
    private readonly refreshAheadSeconds: number,
    private readonly grid: Pick<WindowGrid, 'isCurrent' | 'refreshAtOf' | 'stepSeconds'>,
  ) {}

  /**
   * A cached signature this node has built the URL of, still its image's step and with `minTtl`
   * left: the URL as handed out, the same object every time. The common case of a warm page, in
   * a few comparisons: no grid hash, no date arithmetic, no allocation. Undefined otherwise (the
   * caller then checks the signature against the grid itself).
   */
  hit(id: string, key: string, sig: UrlSignature, now: number, minTtl: number): ResolvedUrl | undefined {
    const b = this.built.get(id);
    if (
      !b ||
      now >= b.until ||
      now < b.from ||
      b.end * 1000 - now < minTtl * 1000 ||
      b.start !== sig.start ||
      b.end !== sig.end ||
      b.sig !== sig.sig ||
      b.key !== key ||
      b.region !== sig.region
    ) {
      return undefined;
    }
    b.seenAt = now;
    return this.asHit(b);
  }

  /**
   * A signature as handed out. Its URL is kept for the requests that follow when it was read
   * from the cache (a second sighting: the image is looked at again), when it replaces a URL kept
   * for the image already (a refresh of an image this node serves), or with `remember`.
   */
  present(
    id: string,
    key: string,
    sig: UrlSignature,
    cached: boolean,
    variant?: Variant,
    remember = cached,
  ): ResolvedUrl {
    return this.resolved(this.urlOf(id, key, sig, variant, remember, false), sig, cached);
  }

  /**
   * A fresh signing as its event hands it out (the signer): when the memo does not keep its URL,
   * the string is carried on the signature to the `present` of the response or the refresh
   * result that follows, which takes it (see BUILT_URL).
   */
  presentSigned(id: string, key: string, sig: UrlSignature, variant?: Variant): ResolvedUrl {
    return this.resolved(this.urlOf(id, key, sig, variant, false, true), sig, false);
  }

  private resolved(url: string, sig: UrlSignature, cached: boolean): ResolvedUrl {
    const expiresAt = sig.end * 1000;
    return { url, expiresAt, refreshAt: refreshAtOf(expiresAt, this.refreshAheadSeconds), cached };
  }

  /**
   * The URL this node read or signed for `id` within `withinMs`, if it is still the grid's URL
   * for this step and has `minTtl` seconds to live — else undefined.
   */
  recent(
    id: string,
    key: string,
    withinMs: number,
    minTtl: number,
    region?: string,
  ): ResolvedUrl | undefined {
    const now = this.clock.now();
    const b = this.built.get(id);
    if (
      !b ||
      b.key !== key ||
      b.region !== region ||
      now - b.seenAt > withinMs ||
      b.end * 1000 - now < minTtl * 1000 ||
      !this.grid.isCurrent(id, b, now)
    ) {
      return undefined;
    }
    return this.asHit(b);
  }

  /** The built URL as a cache hit hands it out: made once per signature. */
  private asHit(b: Built): ResolvedUrl {
    b.asHit ??= {
      url: b.url,
      expiresAt: b.end * 1000,
      refreshAt: refreshAtOf(b.end * 1000, this.refreshAheadSeconds),
      cached: true,
    };
    return b.asHit;
  }

  forget(id: string): void {
    this.built.delete(id);
  }

  /**
   * `id` names the variant too (a url id), so a memo hit is always the same variant's URL.
   *
   * Why a URL signed on a miss is not kept by default: a page nobody asks for again (a crawler,
   * a scroll through an archive) would fill the memo with URLs never used again, push out the
   * ones pages keep asking for, and leave the collector a stream of long-lived objects to
   * promote and sweep (without it a cold page costs the gateway ~5% less CPU at 32 in flight:
   * docs/benchmarks.md, finding 28). The next request of such an image reads it from the cache
   * and keeps it then.
   */
  private urlOf(
    id: string,
    key: string,
    sig: UrlSignature,
    variant: Variant | undefined,
    remember: boolean,
    carry: boolean,
  ): string {
    const b = this.built.get(id);
    const now = this.clock.now();
    if (
      b &&
      b.start === sig.start &&
      b.end === sig.end &&
      b.key === key &&
      b.region === sig.region &&
      b.sig === sig.sig
    ) {
      b.seenAt = now;
      return b.url;
    }
    const carrying = sig as CarryingSignature;
    let url = carrying[BUILT_URL];
    if (url !== undefined && carrying[BUILT_KEY] === key) {
      carrying[BUILT_URL] = undefined;
    } else {
      url = this.storageOf(sig.region).urlFor(key, sig, variant);
      if (carry && b === undefined) {
        carrying[BUILT_URL] = url;
        carrying[BUILT_KEY] = key;
        return url;
      }
    }
    // Only the grid's URLs are kept: one made for one request (off the grid) must not push out
    // the step's URL every other request of this image wants.
    if ((remember || b !== undefined) && this.grid.isCurrent(id, sig, now)) {
      const until = this.grid.refreshAtOf(sig);
      this.built.set(id, {
        start: sig.start,
        end: sig.end,
        key,
        region: sig.region,
        sig: sig.sig,
        url,
        seenAt: now,
        from: until - this.grid.stepSeconds * 1000,
        until,
      });
    }
    return url;
  }
}
