import { fnv1a32 } from '../lib/hash.js';
import type { SignWindow } from '../storage/storage.js';

/**
 * Signatures are back-dated by this much, so a storage clock running behind still accepts them.
 * The same for every node: it is part of the window, and the window is part of the URL.
 */
export const CLOCK_SKEW_SECONDS = 60;

/**
 * Offsets per step: images fall due at this many moments a step, so refresh work spreads out
 * (a step of 45 minutes: every ~3 minutes) while a page of images still signs with few windows.
 */
const OFFSETS_PER_STEP = 16;

export interface GridTiming {
  urlTtlSeconds: number;
  refreshAheadSeconds: number;
}

/**
 * The window grid: one URL per image per step. The step is `S = TTL - REFRESH_AHEAD`; an image's
 * steps are offset by a stable hash of its id, so within a step every signing of that image —
 * on any node, on a hit or a miss, with the cache up or down — uses the same window, and a
 * deterministic signer gives the byte-identical URL. The step's URL expires TTL after the step
 * starts, so while it is handed out it has more than REFRESH_AHEAD left; the next step starts at
 * its `refreshAt`. Integer seconds everywhere, so every node computes the same step from the same
 * second. See docs/architecture.md, "The window grid".
 */
export class WindowGrid {
  /** Seconds from one step to the next. */
  readonly stepSeconds: number;
  /** A step's URL has more than this left while it is handed out (ms): TTL minus the step. */
  readonly minLifeMs: number;
  private readonly ttl: number;
  private readonly offsets: number;
  private readonly spacing: number;

  constructor(t: GridTiming) {
    this.ttl = t.urlTtlSeconds;
    this.stepSeconds = Math.max(1, t.urlTtlSeconds - t.refreshAheadSeconds);
    this.minLifeMs = (this.ttl - this.stepSeconds) * 1000;
    // Few distinct offsets keep one signing key per offset and step (the signer caches them).
    this.offsets = Math.min(OFFSETS_PER_STEP, this.stepSeconds);
    this.spacing = Math.floor(this.stepSeconds / this.offsets);
  }

  /** Where this image's steps start, in seconds within a step. */
  /**
   * `id` is a url id: every variant of an image (`<image id>~<variant>`) steps with the image
   * itself, so a srcset's entries and a subscription's preset change URLs together.
   */
  offsetOf(id: string): number {
    const t = id.indexOf('~');
    return (fnv1a32(t < 0 ? id : id.slice(0, t)) % this.offsets) * this.spacing;
  }

  /** The start (unix seconds) of the image's step that contains `atSeconds`. */
  stepStart(id: string, atSeconds: number): number {
    const offset = this.offsetOf(id);
    return offset + Math.floor((atSeconds - offset) / this.stepSeconds) * this.stepSeconds;
  }

  /** The signing window of the image's step at `atMs`. */
  windowAt(id: string, atMs: number): SignWindow {
    const start = this.stepStart(id, Math.floor(atMs / 1000));
    return { start: start - CLOCK_SKEW_SECONDS, end: start + this.ttl };
  }

  /** When the step of a grid window ends and the next one's URL takes over (epoch ms). */
  refreshAtOf(window: SignWindow): number {
    return (window.start + CLOCK_SKEW_SECONDS + this.stepSeconds) * 1000;
  }

  /** A window of its own, for a request that wants more life than the step's URL has left. */
  offGridAt(atMs: number): SignWindow {
    const now = Math.floor(atMs / 1000);
    return { start: now - CLOCK_SKEW_SECONDS, end: now + this.ttl };
  }

  /**
   * Is this window the grid's for this image at `atMs`: its current step's, or the next step's
   * once that URL is valid (`atMs` at or past its start, which is back-dated by
   * CLOCK_SKEW_SECONDS)? The next step's window comes from a node whose clock runs ahead: it
   * stepped first and stored the next URL; a node up to CLOCK_SKEW_SECONDS behind serves that
   * URL instead of signing its older one, which the store would not keep anyway
   * (redis-store.ts, WRITE_SCRIPT). Without that, for the seconds of skew after every boundary
   * each node read the other's URL as a miss and signed, stored and announced its own.
   * Comparisons only: no string or allocation beyond the window of `atMs`. Never an older step.
   * See docs/architecture.md, "The window grid".
   */
  isCurrent(id: string, window: SignWindow, atMs: number): boolean {
    const w = this.windowAt(id, atMs);
    if (w.start === window.start && w.end === window.end) return true;
    const step = this.stepSeconds;
    return window.start === w.start + step && window.end === w.end + step && atMs >= window.start * 1000;
  }
}
