/**
 * Compares two keys in UTF-8 byte order, the order S3 and COS list them in and PostgreSQL's
 * `COLLATE "C"`: code point order. JavaScript's `<` compares UTF-16 units, which differs where a
 * character beyond U+FFFF (two surrogates, 0xD800-0xDFFF) meets one of U+E000-U+FFFF: the
 * surrogate is the smaller unit but the larger code point. Linear, no allocation.
 */
export function compareKeys(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    const xs = x >= 0xd800 && x <= 0xdfff;
    const ys = y >= 0xd800 && y <= 0xdfff;
    if (xs !== ys) return xs ? 1 : -1;
    return x < y ? -1 : 1;
  }
  return a.length - b.length;
}
