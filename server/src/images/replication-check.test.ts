import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { captureLogger } from '../../test/support/logs.js';
import { FakeClock } from '../clock.js';
import { openDatabase } from '../db/connect.js';
import { createImagesRepo } from '../db/images-repo.js';
import type { Db } from '../db/types.js';
import { MemoryEventBus } from '../events/memory-bus.js';
import { createMetrics } from '../metrics.js';
import { createLocalStorage, ensureLocalBucket } from '../storage/local.js';
import { createVariantRenderer } from '../storage/render-variant.js';
import type { Storage } from '../storage/storage.js';
import { DerivedVariants } from './derived-variants.js';
import { REPLICATION_CHECK_WINDOW_MS, ReplicationCheck } from './replication-check.js';

// On embedded PGlite (migration 004 included) and the real local driver as region b's bucket.
describe('replication check', () => {
  let dir: string;
  let db: Db;
  let repo: ReturnType<typeof createImagesRepo>;
  let bucketB: Storage;
  const clock = new FakeClock(Date.UTC(2026, 0, 2));

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'signet-replication-'));
    db = await openDatabase({ databaseUrl: undefined, dataDir: dir });
    repo = createImagesRepo(db);
    await ensureLocalBucket(path.join(dir, 'b'));
    bucketB = createLocalStorage({
      root: path.join(dir, 'b'),
      publicUrl: 'http://b.test',
      secret: 's'.repeat(32),
    });
  }, 60_000); // PGlite's first start takes seconds on a busy machine
  afterAll(async () => {
    await db?.close();
    await rm(dir, { recursive: true, force: true });
  });

  const row = (n: number, homeRegion: string | null, ageMs = 1000) => ({
    id: `00000000-0000-4000-8000-00000000000${n}`,
    ownerId: 'alice',
    objectKey: `u/alice/${n}.png`,
    contentType: 'image/png',
    byteSize: 3,
    width: 1,
    height: 1,
    etag: null,
    homeRegion,
    animated: false,
    createdAt: new Date(clock.now() - ageMs),
  });

  it("records the other regions' uploads this region's bucket has, and only those", async () => {
    await repo.insert(row(1, 'a')); // replicated to b
    await repo.insert(row(2, 'a')); // not yet
    await repo.insert(row(3, 'b')); // b's own upload
    await repo.insert(row(4, null)); // from before regions
    await repo.insert(row(5, 'a', REPLICATION_CHECK_WINDOW_MS + 1000)); // too old to look at
    await bucketB.put('u/alice/1.png', Buffer.from('abc'), 'image/png');
    await bucketB.put('u/alice/3.png', Buffer.from('abc'), 'image/png');

    const check = new ReplicationCheck({
      storage: bucketB,
      images: repo,
      region: 'b',
      clock,
      logger: captureLogger('info').logger,
    });
    expect(await check.run()).toEqual({ checked: 2, replicated: 1 });
    const [one, two] = await repo
      .findLive([row(1, 'a').id, row(2, 'a').id])
      .then((rows) => rows.sort((x, y) => x.id.localeCompare(y.id)));
    expect(one).toMatchObject({ homeRegion: 'a', replicatedRegions: ['b'] });
    expect(two).toMatchObject({ homeRegion: 'a', replicatedRegions: [] });

    // The next run asks only for what is still missing; the copy lands, and it is recorded once.
    await bucketB.put('u/alice/2.png', Buffer.from('abc'), 'image/png');
    expect(await check.run()).toEqual({ checked: 1, replicated: 1 });
    expect(await check.run()).toEqual({ checked: 0, replicated: 0 });
    expect(await repo.markReplicated('b', [row(1, 'a').id])).toBe(0);
  });

  it('makes derived variants only of rows homed in its own region (other regions sign them for the home bucket)', async () => {
    // Rows 1–4 of the test above: homes a, a, b and none; none has variants_of yet.
    const ids = (rows: { id: string }[]) => rows.map((r) => r.id).sort();
    expect(ids(await repo.missingVariants(undefined, 50, 'b'))).toEqual([row(3, 'b').id]);
    expect(ids(await repo.missingVariants(undefined, 50))).toHaveLength(5);

    const made = new DerivedVariants(
      {
        storage: bucketB,
        images: repo,
        // No presets: making an image only notes it as done, which is what this test looks at.
        catalog: { presetVariants: () => [], presetsTag: () => 'no-presets' },
        renderer: createVariantRenderer({
          maxInputPixels: 1e6,
          maxInputBytes: 1e6,
          maxOutputDimension: 100,
          timeoutSeconds: 5,
          concurrency: 1,
          maxQueue: 1,
        }),
        urls: { purge: async () => {} },
        events: new MemoryEventBus(),
        metrics: createMetrics(),
        logger: captureLogger('info').logger,
      },
      { concurrency: 1, maxBytes: 1e6, timeoutSeconds: 5, homeRegion: 'b' },
    );
    expect(await made.makeById(row(1, 'a').id)).toBe('none');
    expect(await made.makeById(row(4, null).id)).toBe('none');
    expect(await made.backfill()).toMatchObject({ visited: 1, made: 1, complete: true });
    expect(ids(await repo.missingVariants(undefined, 50))).toEqual(
      [row(1, 'a').id, row(2, 'a').id, row(4, null).id, row(5, 'a').id].sort(),
    );
  });
});
