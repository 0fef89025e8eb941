/**
 * Derived objects of nested originals on the s3 driver (docs/architecture.md, "Variants on s3"),
 * against s3rver behind the SigV4-verifying front. The derived objects of `photos/cat/1.png` are
 * under `_signet/variants/photos/cat/1.png/`, which is below `photos/cat`'s prefix. Found by
 * review: deleting `photos/cat` (or the orphan sweep removing its leftover variants) deleted
 * every object under `_signet/variants/photos/cat/`, the live `photos/cat/1.png`'s too, whose
 * row still said they existed.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { FakeClock } from '../../src/clock.js';
import { OrphanSweeper } from '../../src/images/orphan-sweep.js';
import { createMetrics } from '../../src/metrics.js';
import {
  DERIVED_VARIANT_PREFIX,
  derivedKeyOf,
  withDerivedVariants,
} from '../../src/storage/derived-variants.js';
import { createS3Storage } from '../../src/storage/s3.js';
import type { Storage } from '../../src/storage/storage.js';
import { variantOf } from '../../src/storage/variant.js';
import { type S3Fixture, startS3Fixture } from '../fixtures/s3-fixture.js';
import { TEST_S3 } from '../support/env.js';
import { captureLogger } from '../support/logs.js';

const HOUR = 3600 * 1000;
// Byte order of their keys: `1.png/…` < `1280x_…` < `2.png/…` < `320x320…` < `640x640…`.
const VARIANTS = [
  variantOf({ width: 320, height: 320, fit: 'cover', format: 'webp', quality: 75 }),
  variantOf({ width: 640, height: 640, fit: 'cover', format: 'webp', quality: 75 }),
  variantOf({ width: 1280, height: undefined, fit: 'inside', format: undefined, quality: undefined }),
];

let fixture: S3Fixture;
let storage: Storage;

beforeAll(async () => {
  fixture = await startS3Fixture({ ...TEST_S3 });
  storage = withDerivedVariants(
    createS3Storage({ ...TEST_S3, endpoint: fixture.url, forcePathStyle: true, timeoutMs: 5_000 }),
  );
});
beforeEach(async () => {
  await fixture.reset();
});
afterAll(async () => {
  await fixture?.close();
});

/** An original and its derived object of every variant in VARIANTS. */
async function originalWithVariants(key: string): Promise<string[]> {
  await storage.put(key, Buffer.from(`original ${key}`), 'image/png');
  const derived = VARIANTS.map((v) => derivedKeyOf(key, v));
  for (const d of derived) await storage.put(d, Buffer.from(`variant ${d}`), 'image/webp');
  return derived;
}

async function keysUnder(prefix: string): Promise<string[]> {
  const keys: string[] = [];
  let marker: string | undefined;
  do {
    const page = await storage.list(prefix, marker !== undefined ? { marker } : {});
    keys.push(...page.objects.map((o) => o.key));
    marker = page.nextMarker;
  } while (marker !== undefined);
  return keys;
}

describe('s3 derived variants of nested originals', () => {
  it("deleting photos/cat leaves every derived object of photos/cat/1.png (and what is not Signet's)", async () => {
    const cat = await originalWithVariants('photos/cat');
    const nested = await originalWithVariants('photos/cat/1.png');
    // Not a derived key (its last segment is no variant key): not Signet's, left alone.
    const stranger = `${DERIVED_VARIANT_PREFIX}photos/cat/notes.txt`;
    await storage.put(stranger, Buffer.from('notes'), 'text/plain');
    expect((await keysUnder(DERIVED_VARIANT_PREFIX)).length).toBe(7);

    await storage.delete('photos/cat');

    expect(await storage.head('photos/cat')).toBeNull();
    expect(await storage.head('photos/cat/1.png')).not.toBeNull();
    const left = await keysUnder(DERIVED_VARIANT_PREFIX);
    expect(left.sort()).toEqual([...nested, stranger].sort());
    for (const d of cat) expect(left).not.toContain(d);
    // Deleting again (the sweep's variantSets.delete) is idempotent and still spares them.
    await storage.variantSets!.delete('photos/cat');
    expect((await keysUnder(DERIVED_VARIANT_PREFIX)).sort()).toEqual([...nested, stranger].sort());
  });

  it('the variant-set listing reports photos/cat and photos/cat/1.png as two sets', async () => {
    const cat = await originalWithVariants('photos/cat');
    const nested = await originalWithVariants('photos/cat/1.png');
    await storage.put(`${DERIVED_VARIANT_PREFIX}photos/cat/notes.txt`, Buffer.from('n'), 'text/plain');
    const page = await storage.variantSets!.list();
    expect(page.nextMarker).toBeUndefined();
    expect(page.objects.map((s) => s.key).sort()).toEqual(['photos/cat', 'photos/cat/1.png']);
    const sizeOf = (keys: string[]) => keys.reduce((n, k) => n + `variant ${k}`.length, 0);
    expect(page.objects.find((s) => s.key === 'photos/cat')?.size).toBe(sizeOf(cat));
    expect(page.objects.find((s) => s.key === 'photos/cat/1.png')?.size).toBe(sizeOf(nested));
  });

  it("one set per original even when a nested original's objects sort between its own", async () => {
    // `…/cat/1280x_-inside-_-_` < `…/cat/2.png/…` < `…/cat/320x320-cover-webp-75`.
    const cat = await originalWithVariants('photos/cat');
    const nested = await originalWithVariants('photos/cat/2.png');
    const listed = await keysUnder(DERIVED_VARIANT_PREFIX);
    expect(listed.indexOf(nested[0]!)).toBeGreaterThan(listed.indexOf(cat[2]!));
    expect(listed.indexOf(nested[0]!)).toBeLessThan(listed.indexOf(cat[0]!));
    const page = await storage.variantSets!.list();
    expect(page.objects.map((s) => s.key).sort()).toEqual(['photos/cat', 'photos/cat/2.png']);
  });

  it("the orphan sweep removes a deleted row's variants and leaves the live nested original's", async () => {
    // photos/cat: its row deleted, its object gone, its variants left (a failed clean-up).
    const cat = await originalWithVariants('photos/cat');
    await fixture.reset();
    for (const d of cat) await storage.put(d, Buffer.from(`variant ${d}`), 'image/webp');
    expect(await storage.head('photos/cat')).toBeNull();
    // photos/cat/1.png: live, with its variants.
    const nested = await originalWithVariants('photos/cat/1.png');
    const rows = new Map<string, 'live' | 'deleted'>([
      ['photos/cat', 'deleted'],
      ['photos/cat/1.png', 'live'],
    ]);
    const { logger } = captureLogger('info');
    const sweeper = new OrphanSweeper(
      {
        storage,
        guard: { enter: async () => ({ ok: true as const }) },
        images: {
          keysWithLiveRows: async (keys) => new Set(keys.filter((k) => rows.get(k) === 'live')),
          keysWithRows: async (keys) => new Map([...rows].filter(([k]) => keys.includes(k))),
        },
        metrics: createMetrics(),
        clock: new FakeClock(Date.now() + 2 * HOUR),
        logger,
      },
      { graceSeconds: 3600 },
    );
    const r = await sweeper.sweep();
    expect(r.variantSetsDeleted).toBe(1);
    expect((await keysUnder(DERIVED_VARIANT_PREFIX)).sort()).toEqual([...nested].sort());
    expect(await storage.head('photos/cat/1.png')).not.toBeNull();
  });
});
