import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { FakeClock } from '../clock.js';
import { createLogger } from '../logger.js';
import { urlIdOf, variantOf } from '../storage/variant.js';
import { AccessTracker } from './access-tracker.js';
import { MemoryUrlStore } from './memory-store.js';
import { type AccessDelta, UnknownOutcomeError } from './store.js';

/**
 * The real memory store, recording each recordAccess call's size and failing when told to: as a
 * Redis that is away fails (nothing written), or as one that answered too late (written).
 */
class RecordingStore extends MemoryUrlStore {
  readonly sizes: number[] = [];
  failCall: number | undefined;
  lateCall: number | undefined;

  override async recordAccess(deltas: ReadonlyMap<string, AccessDelta>): Promise<void> {
    this.sizes.push(deltas.size);
    if (this.sizes.length === this.failCall) throw new Error('Connection is closed.');
    await super.recordAccess(deltas);
    if (this.sizes.length === this.lateCall) throw new UnknownOutcomeError(new Error('Command timed out'));
  }
}

const quiet = createLogger('silent', new Writable({ write: (_c, _e, cb) => cb() }));
const ids = (n: number) => Array.from({ length: n }, (_, i) => `id-${i}`);

describe('AccessTracker flush', () => {
  it('writes a burst of never-seen ids in bounded round trips, not one huge pipeline', async () => {
    const clock = new FakeClock();
    const store = new RecordingStore(clock, 10_000);
    const tracker = new AccessTracker({ counters: store, logger: quiet, clock });
    tracker.record(ids(625), clock.now(), 625, 0);
    await tracker.flush();
    expect(store.sizes).toEqual([250, 250, 125]);
    expect((await store.status(['id-0', 'id-624'])).map((s) => s.accessCount)).toEqual([1, 1]);
  });

  it('a failed chunk keeps its counts and the rest for the next flush; nothing is counted twice', async () => {
    const clock = new FakeClock();
    const store = new RecordingStore(clock, 10_000);
    const tracker = new AccessTracker({ counters: store, logger: quiet, clock });
    tracker.record(ids(625), clock.now(), 625, 0);
    store.failCall = 2;
    await tracker.flush();
    expect(store.sizes).toEqual([250, 250]);
    await tracker.flush();
    expect(store.sizes).toEqual([250, 250, 250, 125]);
    const counts = (await store.status(ids(625))).map((s) => s.accessCount);
    expect(counts.every((c) => c === 1)).toBe(true);
  });

  it('a chunk that may have been written is not sent again; the rest wait for the next flush', async () => {
    const clock = new FakeClock();
    const store = new RecordingStore(clock, 10_000);
    const tracker = new AccessTracker({ counters: store, logger: quiet, clock });
    tracker.record(ids(625), clock.now(), 625, 0);
    store.lateCall = 2;
    await tracker.flush();
    expect(store.sizes).toEqual([250, 250]);
    await tracker.flush();
    expect(store.sizes).toEqual([250, 250, 125]);
    // Each access counted once: the late chunk was written, and only once.
    const counts = (await store.status(ids(625))).map((s) => s.accessCount);
    expect(counts.every((c) => c === 1)).toBe(true);
  });
});

describe('AccessTracker subscribed ids', () => {
  it('marks a subscribed id as looked at once a period, a newly subscribed one on the next flush', async () => {
    const clock = new FakeClock();
    const store = new RecordingStore(clock, 10_000);
    const live = new Set(ids(3));
    const tracker = new AccessTracker({
      counters: store,
      logger: quiet,
      clock,
      liveIds: () => live,
      liveMarkMs: 15_000,
    });
    await tracker.flush();
    expect(store.sizes).toEqual([3]);
    clock.advance(1000);
    live.add('new');
    await tracker.flush();
    expect(store.sizes).toEqual([3, 1]);
    clock.advance(1000);
    await tracker.flush();
    // Nothing to write: no round trip.
    expect(store.sizes).toEqual([3, 1]);
    clock.advance(13_000);
    await tracker.flush();
    expect(store.sizes).toEqual([3, 1, 4]);
    // Marked with the flush's time: inside any live window longer than the period.
    const at = (await store.status(['id-0', 'new'])).map((s) => s.lastAccessAt);
    expect(at).toEqual([clock.now(), clock.now()]);
  });
});

describe('AccessTracker usage', () => {
  it('counts an image once among the unique images, however many of its variants were asked for', async () => {
    const clock = new FakeClock();
    const store = new RecordingStore(clock, 10_000);
    const flushed: Set<string>[] = [];
    const tracker = new AccessTracker({
      counters: store,
      logger: quiet,
      clock,
      usage: async (c) => {
        flushed.push(c.imageIds);
      },
    });
    const thumb = variantOf({ width: 320, height: 320, fit: 'cover', format: 'webp', quality: 75 });
    const medium = variantOf({
      width: 1280,
      height: undefined,
      fit: 'inside',
      format: undefined,
      quality: undefined,
    });
    // A page of two images with a thumb and a srcset each, and a third asked for as a thumb only.
    const page = ['a', 'b'].flatMap((id) => [id, urlIdOf(id, thumb), urlIdOf(id, medium)]);
    tracker.record([...page, urlIdOf('c', thumb)], clock.now(), 0, 7);
    await tracker.flush();
    expect(flushed).toHaveLength(1);
    expect([...flushed[0]!].sort()).toEqual(['a', 'b', 'c']);
    // Access counts stay per URL: each variant's URL is refreshed on its own.
    expect((await store.status([urlIdOf('a', thumb), 'a'])).map((s) => s.accessCount)).toEqual([1, 1]);
  });
});
