import type { ByteRange } from '../storage/storage.js';

export type RangeResult =
  | { kind: 'full' }
  | { kind: 'partial'; range: ByteRange }
  | { kind: 'unsatisfiable' };

/**
 * One `Range: bytes=…` header against an object of `size` bytes (RFC 9110 §14). Anything we do
 * not understand — other units, several ranges, garbage — is ignored (200 with the whole object),
 * as the RFC allows; a well-formed range that misses the object is 416.
 */
export function parseRange(header: string | null | undefined, size: number): RangeResult {
  if (!header) return { kind: 'full' };
  const m = /^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/i.exec(header);
  if (!m) return { kind: 'full' };
  const [, a, b] = m;
  if (a === '' && b === '') return { kind: 'full' };
  if (a === '') {
    // Suffix range: the last n bytes.
    const n = position(b!);
    if (n === 0) return { kind: 'unsatisfiable' };
    if (size === 0) return { kind: 'unsatisfiable' };
    return { kind: 'partial', range: { start: Math.max(0, size - n), end: size - 1 } };
  }
  const start = position(a!);
  const last = b === '' ? Number.POSITIVE_INFINITY : position(b!);
  if (last < start) return { kind: 'full' };
  if (start >= size) return { kind: 'unsatisfiable' };
  return { kind: 'partial', range: { start, end: Math.min(last, size - 1) } };
}

/**
 * A byte position from its digits. Past 15 significant digits it lies beyond any object we hold
 * (and beyond exact doubles): Infinity, so it is cut to the end or unsatisfiable, never rounded.
 */
function position(digits: string): number {
  const d = digits.replace(/^0+(?=\d)/, '');
  return d.length > 15 ? Number.POSITIVE_INFINITY : Number(d);
}

/** `If-None-Match` matches an ETag (weak comparison, `*` matches anything). */
export function etagMatches(header: string | null | undefined, etag: string | undefined): boolean {
  if (!header || !etag) return false;
  const bare = (t: string) => t.trim().replace(/^W\//, '');
  const want = bare(etag);
  return header.split(',').some((t) => t.trim() === '*' || bare(t) === want);
}
