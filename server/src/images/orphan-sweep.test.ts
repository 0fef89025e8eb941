import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { FakeClock } from '../clock.js';
import type { KeyRowState } from '../db/images-repo.js';
import { createLogger } from '../logger.js';
import { createMetrics } from '../metrics.js';
import type { ListedObject, ListPage } from '../storage/storage.js';
import { type OrphanSweepDeps, OrphanSweeper } from './orphan-sweep.js';
import { objectKeyFor } from './upload.js';

/** The guard's verdict on a database that swept this bucket last (images/sweep-guard.ts, tested on its own). */
const ALLOWED = { enter: async () => ({ ok: true as const }) };

const NOW = Date.UTC(2026, 5, 1);
const OLD = new Date(NOW - 30 * 86_400_000);

function captured() {
  const logs: string[] = [];
  const logger = createLogger(
    'info',
    new Writable({
      write(chunk, _enc, cb) {
        logs.push(chunk.toString());
        cb();
      },
    }),
  );
  return { logger, logs };
}

/** A sorted key list paged like a bucket listing (marker: the last key of the page). */
function pages(keys: () => string[]) {
  return async (options: { marker?: string; maxKeys?: number } = {}): Promise<ListPage> => {
    const all = keys()
      .filter((k) => options.marker === undefined || k > options.marker)
      .sort();
    const max = options.maxKeys ?? 1000;
    const objects: ListedObject[] = all.slice(0, max).map((key) => ({ key, size: 1, lastModified: OLD }));
    return { objects, nextMarker: all.length > max ? objects.at(-1)!.key : undefined };
  };
}

/**
 * The sweep's judging, with a bucket and rows in memory: what it may delete is Signet's by shape
 * (an upload's key) or by record (a deleted row), never an operator's other key under `u/`.
 */
describe('OrphanSweeper: only what is provably Signet’s', () => {
  const live = objectKeyFor('alice', 'a3bb189e-8bf9-4888-9912-ace4e6543002', 'png');
  const orphan = objectKeyFor('bob', 'b3bb189e-8bf9-4888-9912-ace4e6543002', 'webp');
  const deletedUpload = objectKeyFor('carol', 'c3bb189e-8bf9-4888-9912-ace4e6543002', 'jpg');
  const legacy = ['u/legacy/avatar.png', 'u/2023/banner.jpg', 'u/alice/photo.png', 'u/x'];

  function setup() {
    const bucket = new Set([live, orphan, deletedUpload, ...legacy]);
    // Variant sets by object key: of an upload without a row, of an imported image whose row was
    // deleted, of a live one, and of keys no row ever named (nothing Signet made them for).
    const sets = new Set([
      orphan,
      'photos/deleted.jpg',
      'photos/live.jpg',
      'photos/cat.jpg',
      'u/legacy/avatar.png',
    ]);
    const rows = new Map<string, KeyRowState>([
      [live, 'live'],
      [deletedUpload, 'deleted'],
      ['photos/deleted.jpg', 'deleted'],
      ['photos/live.jpg', 'live'],
    ]);
    const deletedObjects: string[] = [];
    const deletedSets: string[] = [];
    const storage: OrphanSweepDeps['storage'] = {
      list: async (prefix, options) => {
        expect(prefix).toBe('u/');
        return pages(() => [...bucket])(options);
      },
      delete: async (key) => {
        bucket.delete(key);
        deletedObjects.push(key);
      },
      variantSets: {
        list: pages(() => [...sets]),
        delete: async (key) => {
          sets.delete(key);
          deletedSets.push(key);
        },
      },
    };
    const images: OrphanSweepDeps['images'] = {
      keysWithLiveRows: async (keys) => new Set(keys.filter((k) => rows.get(k) === 'live')),
      keysWithRows: async (keys) => {
        const m = new Map<string, KeyRowState>();
        for (const k of keys) if (rows.has(k)) m.set(k, rows.get(k)!);
        return m;
      },
    };
    const { logger, logs } = captured();
    const sweeper = (o: { pageSize?: number; maxPages?: number } = {}) =>
      new OrphanSweeper(
        { storage, images, guard: ALLOWED, metrics: createMetrics(), clock: new FakeClock(NOW), logger },
        { graceSeconds: 3600, ...o },
      );
    return { bucket, sets, deletedObjects, deletedSets, logs, sweeper };
  }

  it('deletes upload-shaped keys without a live row, and leaves every other key under u/ alone', async () => {
    const t = setup();
    const r = await t.sweeper().sweep();
    expect(r).toMatchObject({
      listed: 3 + legacy.length,
      deleted: 2,
      leftAlone: legacy.length,
      complete: true,
    });
    expect(t.deletedObjects.sort()).toEqual([deletedUpload, orphan].sort());
    expect([...t.bucket].sort()).toEqual([live, ...legacy].sort());
  });

  it('removes a variant set only of an upload-shaped key or of a key a deleted row names', async () => {
    const t = setup();
    const r = await t.sweeper().sweep();
    expect(r.variantSetsDeleted).toBe(2);
    expect(t.deletedSets.sort()).toEqual(['photos/deleted.jpg', orphan].sort());
    expect([...t.sets].sort()).toEqual(['photos/cat.jpg', 'photos/live.jpg', 'u/legacy/avatar.png']);
  });

  it('logs what it left alone once per pass, however many runs the pass takes', async () => {
    const t = setup();
    // No variant sets: a run is complete when its walk over u/ is.
    t.sets.clear();
    const sweeper = t.sweeper({ pageSize: 2, maxPages: 1 });
    let leftAlone = 0;
    for (let pass = 0; pass < 2; pass++) {
      let runs = 0;
      for (;;) {
        const r = await sweeper.sweep();
        runs++;
        leftAlone += r.leftAlone ?? 0;
        if (r.complete) break;
      }
      expect(runs).toBeGreaterThan(1);
    }
    expect(leftAlone).toBe(2 * legacy.length);
    const lines = t.logs.filter((l) => l.includes('orphan sweep left alone'));
    expect(lines).toHaveLength(2);
    expect(JSON.parse(lines[0]!)).toMatchObject({
      level: 30,
      keys: legacy.length,
      example: 'u/2023/banner.jpg',
    });
    expect(t.logs.filter((l) => /"level":40/.test(l) && l.includes('u/legacy'))).toEqual([]);
  });
});
