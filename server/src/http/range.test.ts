import { describe, expect, it } from 'vitest';
import { etagMatches, parseRange } from './range.js';

const SIZE = 1000;
const partial = (start: number, end: number) => ({ kind: 'partial', range: { start, end } });
const full = { kind: 'full' };
const unsatisfiable = { kind: 'unsatisfiable' };

describe('parseRange', () => {
  it('no header is the full object', () => {
    expect(parseRange(undefined, SIZE)).toEqual(full);
    expect(parseRange(null, SIZE)).toEqual(full);
    expect(parseRange('', SIZE)).toEqual(full);
  });

  it.each([
    ['bytes=0-99', partial(0, 99)],
    ['bytes=0-0', partial(0, 0)],
    ['bytes=999-999', partial(999, 999)],
    ['bytes=500-', partial(500, 999)],
    ['bytes=0-', partial(0, 999)],
    ['bytes=-100', partial(900, 999)],
    ['bytes=-1', partial(999, 999)],
    ['BYTES = 10 - 19', partial(10, 19)],
    // a last position past the end is cut to the end; a suffix longer than the object is all of it
    ['bytes=900-5000', partial(900, 999)],
    ['bytes=-5000', partial(0, 999)],
  ])('%s', (header, want) => {
    expect(parseRange(header, SIZE)).toEqual(want);
  });

  it.each([
    'bytes=0-1,5-6', // several ranges: ignored (one body, never multipart)
    'bytes=0-1, 900-',
    'items=0-1',
    'bytes=abc',
    'bytes=1.5-2',
    'bytes=-',
    'bytes=',
    'bytes 0-1',
    '0-1',
    'bytes=5-3', // last before first: invalid, so ignored
    'bytes=--1',
    'bytes=0x10-0x20',
  ])('%s is ignored (the full object)', (header) => {
    expect(parseRange(header, SIZE)).toEqual(full);
  });

  it.each([
    ['bytes=1000-', SIZE],
    ['bytes=1000-2000', SIZE],
    ['bytes=5000-6000', SIZE],
    ['bytes=-0', SIZE],
    ['bytes=0-', 0],
    ['bytes=-5', 0],
    ['bytes=0-0', 0],
  ])('%s on %i bytes is unsatisfiable (416)', (header, size) => {
    expect(parseRange(header, size)).toEqual(unsatisfiable);
  });

  it('huge numbers neither overflow nor lose precision', () => {
    const huge = '9'.repeat(30);
    expect(parseRange(`bytes=${huge}-`, SIZE)).toEqual(unsatisfiable);
    expect(parseRange(`bytes=${huge}-${huge}`, SIZE)).toEqual(unsatisfiable);
    expect(parseRange(`bytes=0-${huge}`, SIZE)).toEqual(partial(0, 999));
    expect(parseRange(`bytes=-${huge}`, SIZE)).toEqual(partial(0, 999));
    expect(parseRange(`bytes=${huge}-5`, SIZE)).toEqual(full); // last before first
    // Leading zeros are just zeros.
    expect(parseRange(`bytes=${'0'.repeat(30)}7-${'0'.repeat(30)}9`, SIZE)).toEqual(partial(7, 9));
    // Offsets past 2^53 on a (theoretical) huge object stay exact or are refused, never rounded.
    const big = 2 ** 53;
    expect(parseRange('bytes=9007199254740993-', big)).toEqual(unsatisfiable);
    expect(parseRange('bytes=-10', big)).toEqual(partial(big - 10, big - 1));
  });
});

describe('etagMatches', () => {
  const etag = '"5d41402abc4b2a76b9719d911017c592"';

  it('matches the same tag, weakly, in a list, or *', () => {
    expect(etagMatches(etag, etag)).toBe(true);
    expect(etagMatches(`W/${etag}`, etag)).toBe(true);
    expect(etagMatches(etag, `W/${etag}`)).toBe(true);
    expect(etagMatches(`"other", ${etag}`, etag)).toBe(true);
    expect(etagMatches(`"other",${etag} `, etag)).toBe(true);
    expect(etagMatches('*', etag)).toBe(true);
  });

  it('does not match another tag, an unquoted one, or nothing', () => {
    expect(etagMatches('"other"', etag)).toBe(false);
    expect(etagMatches(etag.slice(1, -1), etag)).toBe(false);
    expect(etagMatches(`${etag.slice(0, -2)}"`, etag)).toBe(false);
    expect(etagMatches(undefined, etag)).toBe(false);
    expect(etagMatches(null, etag)).toBe(false);
    expect(etagMatches('', etag)).toBe(false);
    expect(etagMatches(etag, undefined)).toBe(false);
  });
});
