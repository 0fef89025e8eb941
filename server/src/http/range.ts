import type { IncomingHttpHeaders } from 'node:http';
import type { ByteRange } from '../storage/storage.js';

export type RangeResult =
  | { kind: 'full' }
  | { kind: 'partial'; range: ByteRange }
  | { kind: 'unsatisfiable' };

/**
 * Range headers longer than this are ignored (the whole object). A single range of two 15-digit
 * positions with generous whitespace fits in a few dozen characters.
 */
export const MAX_RANGE_HEADER_LENGTH = 1024;

/**
 * One `Range: bytes=…` header against an object of `size` bytes (RFC 9110 §14). Anything we do
 * not understand — other units, several ranges, garbage, a header over MAX_RANGE_HEADER_LENGTH —
 * is ignored (200 with the whole object), as the RFC allows; a well-formed range that misses the
 * object is 416.
 *
 * Parsed by hand in one left-to-right pass: the header is the client's, and the regular
 * expression this replaced backtracked on runs of spaces (minutes of CPU for 15 KB).
 */
export function parseRange(header: string | null | undefined, size: number): RangeResult {
  if (!header || header.length > MAX_RANGE_HEADER_LENGTH) return { kind: 'full' };
  const spec = singleByteRange(header);
  if (!spec) return { kind: 'full' };
  const { first: a, last: b } = spec;
  if (a === '' && b === '') return { kind: 'full' };
  if (a === '') {
    // Suffix range: the last n bytes.
    const n = position(b);
    if (n === 0) return { kind: 'unsatisfiable' };
    if (size === 0) return { kind: 'unsatisfiable' };
    return { kind: 'partial', range: { start: Math.max(0, size - n), end: size - 1 } };
  }
  const start = position(a);
  const last = b === '' ? Number.POSITIVE_INFINITY : position(b);
  if (last < start) return { kind: 'full' };
  if (start >= size) return { kind: 'unsatisfiable' };
  return { kind: 'partial', range: { start, end: Math.min(last, size - 1) } };
}

const isSpace = (c: number) => c === 0x20 || c === 0x09; // HTTP's optional whitespace: SP, HTAB
const isDigit = (c: number) => c >= 0x30 && c <= 0x39;

/**
 * `bytes = first - last` with optional whitespace around each token, either number possibly
 * empty (the caller decides what an empty one means); null for anything else.
 */
function singleByteRange(h: string): { first: string; last: string } | null {
  let at = 0;
  const skipSpace = () => {
    while (at < h.length && isSpace(h.charCodeAt(at))) at++;
  };
  const digits = () => {
    const start = at;
    while (at < h.length && isDigit(h.charCodeAt(at))) at++;
    return h.slice(start, at);
  };
  skipSpace();
  if (h.slice(at, at + 5).toLowerCase() !== 'bytes') return null;
  at += 5;
  skipSpace();
  if (h[at++] !== '=') return null;
  skipSpace();
  const first = digits();
  skipSpace();
  if (h[at++] !== '-') return null;
  skipSpace();
  const last = digits();
  skipSpace();
  return at === h.length ? { first, last } : null;
}

/**
 * A byte position from its digits. Past 15 significant digits it lies beyond any object we hold
 * (and beyond exact doubles): Infinity, so it is cut to the end or unsatisfiable, never rounded.
 */
function position(digits: string): number {
  let lead = 0;
  while (lead < digits.length - 1 && digits[lead] === '0') lead++;
  return digits.length - lead > 15 ? Number.POSITIVE_INFINITY : Number(digits.slice(lead));
}

/** `If-None-Match` matches an ETag (weak comparison, `*` matches anything). */
export function etagMatches(header: string | null | undefined, etag: string | undefined): boolean {
  if (!header || !etag) return false;
  const bare = (t: string) => t.trim().replace(/^W\//, '');
  const want = bare(etag);
  return header.split(',').some((t) => t.trim() === '*' || bare(t) === want);
}

/** An HTTP date is 29 characters; anything much longer is not one and is not parsed. */
const MAX_DATE_HEADER_LENGTH = 64;

const DAY = '(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)';
const MONTH = '(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)';
const TIME = '\\d{2}:\\d{2}:\\d{2}';
/**
 * The three forms of an HTTP-date (RFC 9110 §5.6.7): IMF-fixdate, RFC 850 and asctime. Fixed
 * fields and literal alternatives only, anchored: linear on any input. `Date.parse` alone takes
 * `3000` or `2099-01-01` too, and a date a client sends that is not an HTTP-date must be ignored.
 */
const HTTP_DATE = new RegExp(
  `^(?:${DAY}, \\d{2} ${MONTH} \\d{4} ${TIME} GMT|(?:Mon|Tues|Wednes|Thurs|Fri|Satur|Sun)day, \\d{2}-${MONTH}-\\d{2} ${TIME} GMT|${DAY} ${MONTH} [ \\d]\\d ${TIME} \\d{4})$`,
);

/** An HTTP-date's time (ms), or NaN for anything that is not one (asctime is GMT too). */
export function parseHttpDate(value: string): number {
  if (value.length > MAX_DATE_HEADER_LENGTH || !HTTP_DATE.test(value)) return Number.NaN;
  return Date.parse(value.endsWith('GMT') ? value : `${value} GMT`);
}

/**
 * `If-Range` (RFC 9110 §13.1.5) holds our ETag (a strong match) or our date; anything else drops
 * the range and the whole object is sent, so a resumed download never stitches bytes of two
 * versions together. Absent, the range stands.
 */
export function ifRangeHolds(
  header: string | string[] | undefined,
  etag: string | undefined,
  lastModified: string | undefined,
): boolean {
  if (header === undefined) return true;
  if (typeof header !== 'string') return false;
  const h = header.trim();
  if (h.startsWith('"') || h.startsWith('W/')) return !h.startsWith('W/') && h === etag;
  return lastModified !== undefined && h === lastModified;
}

/**
 * Whether a GET or HEAD may be answered 304 (RFC 9110 §13.1.1, §13.1.3): `If-None-Match` against
 * the ETag; `If-Modified-Since` only when no `If-None-Match` was sent (§13.2.2) and the object has
 * a date, compared at the one-second precision of an HTTP date. What is not an HTTP-date is ignored.
 */
export function notModified(
  headers: IncomingHttpHeaders,
  etag: string | undefined,
  lastModified: Date | undefined,
): boolean {
  const inm = headers['if-none-match'];
  if (inm) return etagMatches(inm, etag);
  const ims = headers['if-modified-since'];
  if (!ims || !lastModified || ims.length > MAX_DATE_HEADER_LENGTH) return false;
  const since = parseHttpDate(ims.trim());
  return Number.isFinite(since) && Math.floor(lastModified.getTime() / 1000) * 1000 <= since;
}
