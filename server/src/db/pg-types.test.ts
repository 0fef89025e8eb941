import fc from 'fast-check';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { testDatabaseUrl } from '../../test/support/env.js';
import { parseTextArray, parseTimestamptz, pgTypes } from './pg-types.js';

// pg's own parser, which the fast one must agree with on every input.
const slow = pg.types.getTypeParser(1184) as (s: string) => Date;
const pad = (n: number, w = 2) => String(n).padStart(w, '0');

describe('parseTimestamptz', () => {
  it('reads what PostgreSQL writes exactly as pg does', () => {
    const text = fc
      .record({
        y: fc.integer({ min: 100, max: 9999 }),
        mo: fc.integer({ min: 1, max: 12 }),
        d: fc.integer({ min: 1, max: 28 }),
        h: fc.integer({ min: 0, max: 23 }),
        mi: fc.integer({ min: 0, max: 59 }),
        s: fc.integer({ min: 0, max: 59 }),
        frac: fc.option(fc.stringMatching(/^[0-9]{1,6}$/), { nil: undefined }),
        sign: fc.constantFrom('+', '-'),
        oh: fc.integer({ min: 0, max: 15 }),
        om: fc.option(fc.integer({ min: 0, max: 59 }), { nil: undefined }),
        os: fc.option(fc.integer({ min: 0, max: 59 }), { nil: undefined }),
      })
      .map(
        (t) =>
          `${pad(t.y, 4)}-${pad(t.mo)}-${pad(t.d)} ${pad(t.h)}:${pad(t.mi)}:${pad(t.s)}` +
          (t.frac === undefined ? '' : `.${t.frac}`) +
          `${t.sign}${pad(t.oh)}` +
          (t.om === undefined ? '' : `:${pad(t.om)}${t.os === undefined ? '' : `:${pad(t.os)}`}`),
      );
    fc.assert(
      fc.property(text, (s) => {
        expect(parseTimestamptz(s).getTime()).toBe(slow(s).getTime());
      }),
      { numRuns: 5000 },
    );
  });

  it('hands what it does not read by position to pg parser', () => {
    for (const s of [
      '0050-03-04 05:06:07+00',
      '12345-01-01 00:00:00+00',
      '2020-01-01 00:00:00+00 BC',
      'infinity',
      '-infinity',
      '2020-01-01 00:00:00.+00',
      '2020-01-01 00:00:00Z',
      '2020-01-01T00:00:00+00',
    ]) {
      expect(Object.is(+parseTimestamptz(s), +slow(s)), s).toBe(true);
    }
  });
});

describe('pgTypes on a real connection', () => {
  const pool = new pg.Pool({ connectionString: testDatabaseUrl(), max: 1, types: pgTypes });
  afterAll(() => pool.end());

  it('reads timestamptz columns in every session time zone as pg does', async () => {
    for (const zone of ['UTC', 'Asia/Kolkata', 'America/St_Johns', 'Africa/Monrovia', 'Asia/Shanghai']) {
      // LMT of Monrovia before 1972 had a seconds offset (-00:44:30).
      await pool.query(`set time zone '${zone}'`);
      const { rows } = await pool.query<{ t: Date; s: string }>(
        `select t, t::text as s from (values
           (timestamptz '2026-11-30 16:05:02.123456+00'), (timestamptz '1960-06-01 12:00:00+00'),
           (now()), (timestamptz '2024-02-29 23:59:59.999999+00'), (timestamptz 'infinity')) v(t)`,
      );
      for (const r of rows) {
        expect(r.t instanceof Date || typeof r.t === 'number').toBe(true);
        expect(Object.is(+r.t, +slow(r.s)), `${zone} ${r.s}`).toBe(true);
      }
    }
    // text[] as pg reads it, the empty one included; other types keep pg's parsers.
    const { rows } = await pool.query<{ n: number; a: string[]; e: string[]; q: string[] }>(
      `select 1::int4 as n, array['a','b'] as a, '{}'::text[] as e, array['x y', '"q"', null, ''] as q`,
    );
    expect(rows[0]).toEqual({ n: 1, a: ['a', 'b'], e: [], q: ['x y', '"q"', null, ''] });
    expect(rows[0]!.e).not.toBe(parseTextArray('{}'));
  });
});
