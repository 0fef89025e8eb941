import { describe, expect, it } from 'vitest';
import { loadConfig } from '../config.js';
import { AppError } from '../errors/index.js';
import { MAX_IDS, parseImageId, parseImageIds } from '../images/image-id.js';
import { decodeCursor, encodeCursor, parseFirst, parseMinTtl } from './validate.js';

const ID = '6f1c1b1e-8a0e-4c4a-9a57-0d7a1f6a2b3c';

/** The BAD_USER_INPUT error fn throws, with its message. */
function badInput(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(AppError);
    expect((err as AppError).code).toBe('BAD_USER_INPUT');
    return (err as AppError).message;
  }
  throw new Error('expected BAD_USER_INPUT');
}

describe('cursors', () => {
  it('round-trip created_at (to the millisecond) and id', () => {
    for (const createdAt of [
      new Date(0),
      new Date('2026-01-01T12:34:56.789Z'),
      new Date('9999-12-31T23:59:59.999Z'),
    ]) {
      const cursor = encodeCursor({ createdAt, id: ID });
      expect(cursor).toMatch(/^[A-Za-z0-9_-]+$/); // opaque and URL-safe
      expect(decodeCursor(cursor)).toEqual({ createdAt, id: ID });
    }
  });

  it('normalises the id to lower case', () => {
    const c = Buffer.from(`5:${ID.toUpperCase()}`).toString('base64url');
    expect(decodeCursor(c)).toEqual({ createdAt: new Date(5), id: ID });
  });

  it('absent is the first page', () => {
    expect(decodeCursor(undefined)).toBeUndefined();
    expect(decodeCursor(null)).toBeUndefined();
  });

  it.each([
    ['empty', ''],
    ['garbage', 'garbage'],
    ['not base64', '%%%'],
    ['no id', Buffer.from('1767225600000:').toString('base64url')],
    ['not a uuid', Buffer.from('1767225600000:not-a-uuid-not-a-uuid-not-a-uuid-1234').toString('base64url')],
    ['uuid-shaped dashes', Buffer.from(`1:${'-'.repeat(36)}`).toString('base64url')],
    ['time not a number', Buffer.from(`abc:${ID}`).toString('base64url')],
    ['negative time', Buffer.from(`-5:${ID}`).toString('base64url')],
    ['time too long', Buffer.from(`${'9'.repeat(16)}:${ID}`).toString('base64url')],
    ['extra part', Buffer.from(`1:${ID}:x`).toString('base64url')],
    ['too long', 'A'.repeat(129)],
  ])('%s is BAD_USER_INPUT', (_label, cursor) => {
    expect(badInput(() => decodeCursor(cursor))).toMatch(/after/);
  });
});

describe('parseMinTtl', () => {
  const config = (ttl: number) => loadConfig({ URL_TTL_SECONDS: String(ttl) });

  it('defaults to min(300, URL_TTL_SECONDS / 4)', () => {
    for (const [ttl, want] of [
      [3600, 300],
      [1200, 300],
      [1199, 299],
      [600, 150],
      [60, 15],
      [7, 1],
      [5, 1],
      [604800, 300],
    ] as const) {
      const c = config(ttl);
      expect(parseMinTtl(undefined, c), `ttl ${ttl}`).toBe(want);
      expect(parseMinTtl(null, c), `ttl ${ttl}`).toBe(want);
      expect(want).toBeLessThan(ttl);
    }
  });

  it('accepts 0 .. URL_TTL_SECONDS - 1 and names the range otherwise', () => {
    const c = config(3600);
    expect(parseMinTtl(0, c)).toBe(0);
    expect(parseMinTtl(3599, c)).toBe(3599);
    for (const v of [-1, 3600, 3601, 1.5, Number.NaN, Number.MAX_SAFE_INTEGER]) {
      expect(
        badInput(() => parseMinTtl(v, c)),
        String(v),
      ).toMatch(/between 0 and 3599/);
    }
  });
});

describe('parseFirst, parseImageId, parseImageIds', () => {
  it('first is 1..100 (default 24)', () => {
    expect(parseFirst(undefined)).toBe(24);
    expect(parseFirst(null)).toBe(24);
    expect(parseFirst(1)).toBe(1);
    expect(parseFirst(100)).toBe(100);
    for (const v of [0, -1, 101, 2.5]) expect(badInput(() => parseFirst(v))).toMatch(/between 1 and 100/);
  });

  it('ids are UUIDs, lower-cased; at most 500 of them', () => {
    expect(parseImageId(ID.toUpperCase())).toBe(ID);
    for (const v of ['', 'nope', `${ID}0`, ` ${ID}`, ID.replace(/-/g, ''), `${ID.slice(0, -1)}g`]) {
      expect(
        badInput(() => parseImageId(v)),
        v,
      ).toMatch(/UUID/);
    }
    // A huge bad id is not echoed back whole.
    expect(badInput(() => parseImageId('x'.repeat(10_000))).length).toBeLessThan(200);
    expect(parseImageIds(Array(MAX_IDS).fill(ID))).toHaveLength(MAX_IDS);
    expect(badInput(() => parseImageIds(Array(MAX_IDS + 1).fill(ID)))).toMatch(/at most 500/);
    expect(badInput(() => parseImageIds([ID, 'nope']))).toMatch(/ids/);
  });
});
