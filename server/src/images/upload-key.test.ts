import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FORMATS } from '../uploads/sniff.js';
import { isSignetObject, isUnderSignetPrefix } from './bucket-import.js';
import { isUploadKey, objectKeyFor } from './upload.js';

const EXTS = Object.values(FORMATS).map((f) => f.ext);
const ID = 'a3bb189e-8bf9-4888-9912-ace4e6543002';

// What the orphan sweep may delete and `signet import` leaves as Signet's: exactly the keys an
// upload writes. Before, every key under `u/` counted, and the sweep deleted an operator's
// `u/legacy/avatar.png` that the bucket held before Signet.
describe('isUploadKey', () => {
  it('accepts every key objectKeyFor writes, awkward owners included', () => {
    const owners = [
      'alice',
      'a',
      'user@example.com',
      'auth0|5f1c2b',
      'svc:thumbnailer',
      'a.b-c_d',
      '.',
      '..',
      '...',
      '%2E',
      'a/b',
      'has space',
      'ünïcødé',
      '名前',
      '😀',
      "o'brien(x)*!~",
      'x'.repeat(128),
    ];
    for (const owner of owners) {
      for (const ext of EXTS) {
        const key = objectKeyFor(owner, randomUUID(), ext);
        expect(isUploadKey(key), key).toBe(true);
      }
    }
  });

  it('accepts objectKeyFor of any owner and any randomUUID (property)', () => {
    fc.assert(
      fc.property(
        fc.string({ minLength: 1, maxLength: 64, unit: 'grapheme' }),
        fc.constantFrom(...EXTS),
        (owner, ext) => isUploadKey(objectKeyFor(owner, randomUUID(), ext)),
      ),
      { numRuns: 2000 },
    );
  });

  it('refuses near misses and keys an operator may have had under u/', () => {
    const misses = [
      // Not an upload's key at all.
      'u/legacy/avatar.png',
      'u/2023/banner.jpg',
      'u/alice/photo.png',
      'u/',
      'u/alice',
      'u/alice/',
      `u//${ID}.png`, // empty owner
      `${ID}.png`,
      `x/alice/${ID}.png`,
      `U/alice/${ID}.png`,
      `/u/alice/${ID}.png`,
      // The id: not randomUUID's form.
      `u/alice/${ID.toUpperCase()}.png`,
      `u/alice/${ID.slice(0, -1)}.png`,
      `u/alice/${ID}0.png`,
      `u/alice/${ID.replaceAll('-', '')}.png`,
      `u/alice/${ID.replace('-', '_')}.png`,
      'u/alice/a3bb189e-8bf9-1888-9912-ace4e6543002.png', // version 1
      'u/alice/a3bb189e-8bf9-4888-c912-ace4e6543002.png', // not the RFC 4122 variant
      'u/alice/a3bb189e-8bf9-4888-9912-ace4e654300g.png',
      'u/alice/00000000-0000-0000-0000-000000000000.png',
      // The extension: not one uploads write, or more after it.
      `u/alice/${ID}`,
      `u/alice/${ID}.`,
      `u/alice/${ID}.jpeg`,
      `u/alice/${ID}.PNG`,
      `u/alice/${ID}.txt`,
      `u/alice/${ID}.png.bak`,
      `u/alice/${ID}.png/`,
      `u/alice/${ID}.png/x`,
      `u/alice/${ID}..png`,
      `u/alice/${ID}-thumb.png`,
      // More segments, or the owner in a form objectKeyFor never writes.
      `u/alice/2023/${ID}.png`,
      `u/alice/x/${ID}.png`,
      `u/user@example.com/${ID}.png`, // objectKeyFor escapes @
      `u/user%40example.com/${ID}.png`.replace('%40', '%4'), // broken escape
      `u/user%40example.com/${ID}.png`.replace('%40', '%4a'), // lower-case hex
      `u/has space/${ID}.png`,
      `u/./${ID}.png`,
      `u/../${ID}.png`,
      `u/%2e/${ID}.png`,
      `u/%zz/${ID}.png`,
      `u/%C0/${ID}.png`,
      `u/\uD800/${ID}.png`, // a lone surrogate
      `u/名前/${ID}.png`,
    ];
    for (const key of misses) expect(isUploadKey(key), key).toBe(false);
    // The same keys, right ones for contrast.
    expect(isUploadKey(`u/alice/${ID}.png`)).toBe(true);
    expect(isUploadKey(`u/user%40example.com/${ID}.webp`)).toBe(true);
    expect(isUploadKey(`u/%2E%2E/${ID}.gif`)).toBe(true);
  });

  it('is linear: a long hostile key is judged at once', () => {
    const hostile: [string, boolean][] = [
      [`u/${'%'.repeat(500_000)}/${ID}.png`, false],
      [`u/${'%4'.repeat(250_000)}/${ID}.png`, false],
      [`u/${'/'.repeat(500_000)}`, false],
      [`u/a/${`${ID}.`.repeat(20_000)}png`, false],
      [`u/${'%2E'.repeat(100_000)}x/${ID}.png`, false],
      // Long, but what objectKeyFor writes for that owner.
      [`u/${'a'.repeat(500_000)}/${ID}.png`, true],
    ];
    const started = performance.now();
    for (const [key, expected] of hostile) expect(isUploadKey(key), key.slice(0, 40)).toBe(expected);
    expect(performance.now() - started).toBeLessThan(1000);
  });
});

describe("signet import's prefixes", () => {
  it("tells Signet's own keys from other keys under its prefixes", () => {
    const upload = objectKeyFor('bob', ID, 'png');
    expect(isSignetObject(upload)).toBe(true);
    expect(isSignetObject(`_signet/variants/${upload}/320x320-cover-webp-75`)).toBe(true);
    expect(isSignetObject('_signet/variants/catalog/0001.png/1280x_-inside-_-_')).toBe(true);
    for (const key of [
      'u/legacy/avatar.png',
      `u/bob/2023/${ID}.png`,
      '_signet/variants/readme.txt',
      '_signet/variants/photos/cat.jpg',
      `_signet/variants/${upload}/`,
      `_signet/variants/${upload}/thumb`,
      '_signet/variants//320x320-cover-webp-75',
    ]) {
      expect(isSignetObject(key), key).toBe(false);
      expect(isUnderSignetPrefix(key), key).toBe(true);
    }
    expect(isUnderSignetPrefix('legacy/u/avatar.png')).toBe(false);
    expect(isSignetObject('legacy/u/avatar.png')).toBe(false);
  });
});
