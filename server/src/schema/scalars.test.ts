import { describe, expect, it } from 'vitest';
import { serializeDate } from './scalars.js';

describe('DateTime serialization', () => {
  it('formats every instant as toISOString does, when seconds share a slot of the memo too', () => {
    const base = Date.UTC(2026, 10, 30, 16, 0, 0);
    const values = [base, base + 1, base + 1024_000, base + 2 * 1024_000 + 999, base - 1024_000, 0, -1000];
    for (let round = 0; round < 3; round++) {
      for (const v of values) expect(serializeDate(v)).toBe(new Date(v).toISOString());
    }
    expect(serializeDate(new Date(base))).toBe(new Date(base).toISOString());
    expect(serializeDate('2026-11-30T16:00:00+08:00')).toBe('2026-11-30T08:00:00.000Z');
    expect(() => serializeDate(Number.NaN)).toThrow(RangeError);
  });
});
