import pg from 'pg';

/** PostgreSQL's type oid of `timestamptz`. */
const TIMESTAMPTZ = 1184;

const slowTimestamptz = pg.types.getTypeParser(TIMESTAMPTZ) as (text: string) => Date;

/** Two decimal digits at `i`, or -1. */
function two(s: string, i: number): number {
  const a = s.charCodeAt(i) - 48;
  const b = s.charCodeAt(i + 1) - 48;
  return a >= 0 && a <= 9 && b >= 0 && b <= 9 ? a * 10 + b : -1;
}

/**
 * A `timestamptz` as PostgreSQL writes it with `DateStyle` ISO (`2026-11-30 16:05:02.123456+00`,
 * the offset also `+05:30` or `-03:30:15`), read by character position. Every page row has one
 * (`created_at`), and the regular-expression parser pg ships with cost ~10% of a warm page's CPU
 * (docs/benchmarks.md). Anything else (years before 100 or after 9999, BC, infinity) goes to that
 * parser, and the result is the same as its: milliseconds, the microseconds truncated.
 */
export function parseTimestamptz(s: string): Date {
  const n = s.length;
  if (n < 22 || s.charCodeAt(4) !== 45 || s.charCodeAt(7) !== 45 || s.charCodeAt(10) !== 32) {
    return slowTimestamptz(s);
  }
  const y1 = two(s, 0);
  const y2 = two(s, 2);
  const mo = two(s, 5);
  const d = two(s, 8);
  const h = two(s, 11);
  const mi = two(s, 14);
  const sec = two(s, 17);
  if (y1 < 1 || y2 < 0 || mo < 1 || d < 1 || h < 0 || mi < 0 || sec < 0) return slowTimestamptz(s);
  if (s.charCodeAt(13) !== 58 || s.charCodeAt(16) !== 58) return slowTimestamptz(s);
  let i = 19;
  let ms = 0;
  if (s.charCodeAt(i) === 46) {
    // Up to six fractional digits; the first three are the milliseconds.
    let scale = 100;
    i++;
    const from = i;
    for (let c = s.charCodeAt(i) - 48; c >= 0 && c <= 9 && i - from < 6; c = s.charCodeAt(++i) - 48) {
      ms += c * scale;
      scale /= 10;
    }
    if (i === from) return slowTimestamptz(s);
    ms = Math.floor(ms);
  }
  const sign = s.charCodeAt(i);
  if (sign !== 43 && sign !== 45) return slowTimestamptz(s);
  const oh = two(s, i + 1);
  if (oh < 0) return slowTimestamptz(s);
  i += 3;
  // Then optionally `:MM`, then optionally `:SS`.
  let offset = oh * 3600;
  for (let unit = 60; i < n && unit >= 1; unit /= 60) {
    const part = s.charCodeAt(i) === 58 ? two(s, i + 1) : -1;
    if (part < 0) return slowTimestamptz(s);
    offset += part * unit;
    i += 3;
  }
  if (i !== n) return slowTimestamptz(s);
  const offsetMs = offset * 1000;
  const utc = Date.UTC(y1 * 100 + y2, mo - 1, d, h, mi, sec, ms);
  return new Date(sign === 43 ? utc - offsetMs : utc + offsetMs);
}

/** PostgreSQL's type oid of `text[]`. */
const TEXT_ARRAY = 1009;
const slowTextArray = pg.types.getTypeParser(TEXT_ARRAY as number) as (text: string) => string[];

/**
 * A `text[]`; the empty one without pg's array parser. Every page row has two (`replicated_regions`,
 * `variants_ready`), nearly always empty, and the parser's machinery per value was ~8% of a warm
 * page's allocations (docs/benchmarks.md).
 */
export function parseTextArray(s: string): string[] {
  return s === '{}' ? [] : slowTextArray(s);
}

/** node-postgres type parsers for Signet's pools: pg's own, but faster `timestamptz` and `text[]`. */
export const pgTypes = {
  getTypeParser(oid: number, format?: 'text' | 'binary') {
    if (format !== 'binary') {
      if (oid === TIMESTAMPTZ) return parseTimestamptz;
      if (oid === TEXT_ARRAY) return parseTextArray;
    }
    return pg.types.getTypeParser(oid, format);
  },
};
