import { describe, expect, it } from 'vitest';
import {
  DERIVED_VARIANT_PREFIX,
  derivedKeyOf,
  derivedOriginalOf,
  derivedPrefixOf,
  isDerivedKey,
  originalKeyOf,
  withDerivedVariants,
} from './derived-variants.js';
import { createS3Storage } from './s3.js';
import { variantOf } from './variant.js';

// Signing only (CPU, no request is made): the real s3 driver under the wrapper. Objects, listing
// and deletes run against s3rver in test/variants/s3-derived-variants.test.ts.
const inner = createS3Storage({
  accessKeyId: 'AKIDEXAMPLE',
  secretAccessKey: 'secret',
  bucket: 'photos',
  region: 'us-east-1',
  endpoint: 'http://127.0.0.1:9',
  forcePathStyle: true,
});
const storage = withDerivedVariants(inner);
const thumb = variantOf({ width: 320, height: 320, fit: 'cover', format: 'webp', quality: 75 });
const window = { start: 1_800_000_000, end: 1_800_003_660 };
const original = 'u/alice/0b7c5a4e.jpg';
const derived = derivedKeyOf(original, thumb);

function innerUrl(key: string): string {
  const [sig] = inner.signMany([key], window);
  return inner.urlFor(key, { ...window, sig: sig! });
}

describe('derived variant keys', () => {
  it('live under the reserved prefix, one folder per original, and map back', () => {
    expect(derived).toBe(`${DERIVED_VARIANT_PREFIX}u/alice/0b7c5a4e.jpg/320x320-cover-webp-75`);
    expect(derived.startsWith(derivedPrefixOf(original))).toBe(true);
    expect(isDerivedKey(derived)).toBe(true);
    expect(isDerivedKey(original)).toBe(false);
    expect(originalKeyOf(derived)).toBe(original);
  });
});

describe('derivedOriginalOf', () => {
  it('names the original of exactly a derived key, and of nothing else under the prefix', () => {
    expect(derivedOriginalOf(derived)).toBe(original);
    expect(derivedOriginalOf(derivedKeyOf('photos/cat', thumb))).toBe('photos/cat');
    expect(derivedOriginalOf(derivedKeyOf('photos/cat/1.png', thumb))).toBe('photos/cat/1.png');
    for (const key of [
      original,
      `${DERIVED_VARIANT_PREFIX}${thumb.key}`, // no original
      `${DERIVED_VARIANT_PREFIX}/${thumb.key}`, // an empty one
      `${DERIVED_VARIANT_PREFIX}photos/cat/notes.txt`,
      `${DERIVED_VARIANT_PREFIX}photos/cat/1.png/`,
      `${DERIVED_VARIANT_PREFIX}photos/cat/320x320-cover-webp-075`,
      `${DERIVED_VARIANT_PREFIX}photos/cat/${'9'.repeat(100_000)}`,
    ]) {
      expect(derivedOriginalOf(key), key.slice(0, 80)).toBeUndefined();
    }
  });
});

describe('withDerivedVariants: signing', () => {
  it('signs the object the domain names, exactly as the driver does, and originals unmarked', () => {
    const [o, fallback, made] = storage.signMany([original, original, derived], window, [
      undefined,
      thumb,
      thumb,
    ]);
    expect(storage.urlFor(original, { ...window, sig: o! })).toBe(innerUrl(original));
    expect(storage.urlFor(original, { ...window, sig: fallback! }, thumb)).toBe(innerUrl(original));
    expect(storage.urlFor(derived, { ...window, sig: made! }, thumb)).toBe(innerUrl(derived));
    expect(fallback!.startsWith('o:')).toBe(true);
    expect(made!.startsWith('d:')).toBe(true);
    expect(o!.includes(':')).toBe(false);
  });

  it('builds the URL of the object a cached signature was made for, whatever the row says now', () => {
    const [fallback, made] = storage.signMany([original, derived], window, [thumb, thumb]);
    // Signed while the preset was missing, read back once the row says it exists: the original.
    expect(storage.urlFor(derived, { ...window, sig: fallback! }, thumb)).toBe(innerUrl(original));
    // Signed for the derived object, read back with a lagging row: still the derived object.
    expect(storage.urlFor(original, { ...window, sig: made! }, thumb)).toBe(innerUrl(derived));
    // Unmarked (signed before derived objects existed): always the original.
    const [plain] = inner.signMany([original], window);
    expect(storage.urlFor(original, { ...window, sig: plain! }, thumb)).toBe(innerUrl(original));
  });
});
