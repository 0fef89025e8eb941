/**
 * Whether an object key has a path segment that is `.` or `..` (the whole key, its first or last
 * segment, or one between slashes): such an object has no URL. A URL parser (WHATWG: browsers,
 * fetch) removes dot segments from the path, so the request names another key than the one
 * signed and the bucket answers 403 SignatureDoesNotMatch, or serves another object.
 *
 * Only the literal forms matter for a raw key. The parser also takes `%2e` for `.` (and `.%2e`,
 * `%2e.`, `%2e%2e` for `..`, any case), but no signed URL carries those: `encodeKeyPath`
 * (storage/storage.ts) leaves a key of unreserved characters (A-Z a-z 0-9 - _ . ~ /) as it is,
 * and any other key (`%` is not unreserved) is encodeURIComponent'd per segment, which writes a
 * key's `%` as `%25`: a key segment `%2e` goes out as `%252e`, which is no dot segment and is
 * decoded by the bucket back to the key. Those keys are addressable and are not matched here.
 *
 * One pass of indexOf over the key, no regular expression.
 */
export function hasDotSegment(key: string): boolean {
  let start = 0;
  for (;;) {
    const slash = key.indexOf('/', start);
    const end = slash === -1 ? key.length : slash;
    const len = end - start;
    if (
      (len === 1 || len === 2) &&
      key.charCodeAt(start) === DOT &&
      (len === 1 || key.charCodeAt(start + 1) === DOT)
    ) {
      return true;
    }
    if (slash === -1) return false;
    start = slash + 1;
  }
}

const DOT = 0x2e;
