/**
 * What an upload really is, decided by its first bytes only: never by the file name or the
 * content type the client claims (both are free text).
 *
 * Everything here reads at most SNIFF_BYTES of the upload and walks them once, left to right,
 * without regular expressions: the bytes are the client's, and a backtracking pattern over them
 * lets a few hundred bytes hold the event loop for minutes.
 */
export type ImageFormat = 'jpeg' | 'png' | 'gif' | 'webp' | 'avif' | 'svg';

export const FORMATS: Record<ImageFormat, { contentType: string; ext: string; label: string }> = {
  jpeg: { contentType: 'image/jpeg', ext: 'jpg', label: 'JPEG' },
  png: { contentType: 'image/png', ext: 'png', label: 'PNG' },
  gif: { contentType: 'image/gif', ext: 'gif', label: 'GIF' },
  webp: { contentType: 'image/webp', ext: 'webp', label: 'WebP' },
  avif: { contentType: 'image/avif', ext: 'avif', label: 'AVIF' },
  svg: { contentType: 'image/svg+xml', ext: 'svg', label: 'SVG' },
};

/**
 * How many leading bytes decide the format. It is also how far into a text file the `<svg` root
 * element may start (after a prolog of comments, processing instructions and a doctype).
 */
export const SNIFF_BYTES = 4096;

/**
 * The first read of an upload (images/upload.ts) and of a stored PNG's head (the animation
 * backfill). Enough for every header reader but JPEG's and AVIF's: PNG needs 33 bytes, GIF 13,
 * WebP 30, the type sniff SNIFF_BYTES and the SVG size reader its first 64 KB.
 */
export const SNIFF_FIRST_BYTES = 64 * 1024;

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
const AVIF_BRANDS = new Set(['avif', 'avis']);

const ascii = (b: Buffer, start: number, end: number) => b.toString('latin1', start, end);

export interface DetectOptions {
  /**
   * Whether SVG is looked for at all (default true). When SVG uploads are refused anyway, the
   * caller passes false and text uploads are not scanned.
   */
  allowSvg?: boolean;
}

/** The format of an upload, or null when it is none of the image formats Signet knows. */
export function detectFormat(b: Buffer, opts: DetectOptions = {}): ImageFormat | null {
  if (b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return 'jpeg';
  if (b.length >= 8 && b.subarray(0, 8).equals(PNG_SIGNATURE)) return 'png';
  if (b.length >= 6 && isGifSignature(ascii(b, 0, 6))) return 'gif';
  if (b.length >= 12 && ascii(b, 0, 4) === 'RIFF' && ascii(b, 8, 12) === 'WEBP') return 'webp';
  if (isAvif(b)) return 'avif';
  if (opts.allowSvg !== false && svgRootAt(svgPrefix(b)) >= 0) return 'svg';
  return null;
}

const isGifSignature = (s: string) => s === 'GIF87a' || s === 'GIF89a';

/**
 * ISO BMFF with an `ftyp` box naming AVIF as its major or a compatible brand (HEIC is not AVIF).
 * Only brands within the first SNIFF_BYTES count: a real `ftyp` lists a handful, and a box
 * declaring megabytes of brands must not cost a walk over all of them.
 */
function isAvif(b: Buffer): boolean {
  if (b.length < 16 || ascii(b, 4, 8) !== 'ftyp') return false;
  const size = b.readUInt32BE(0);
  if (size < 16 || size > b.length || size % 4 !== 0) return false;
  if (AVIF_BRANDS.has(ascii(b, 8, 12))) return true;
  const end = Math.min(size, SNIFF_BYTES);
  for (let at = 16; at + 4 <= end; at += 4) if (AVIF_BRANDS.has(ascii(b, at, at + 4))) return true;
  return false;
}

/**
 * The first SNIFF_BYTES of a text upload, one character per byte, without a UTF-8 byte order
 * mark. Markup delimiters are ASCII, and no byte of a multi-byte UTF-8 sequence is ASCII, so
 * reading bytes as latin1 finds the same markup as decoding UTF-8 would.
 */
export function svgPrefix(b: Buffer, limit = SNIFF_BYTES): string {
  const bom = b.length >= 3 && b[0] === 0xef && b[1] === 0xbb && b[2] === 0xbf ? 3 : 0;
  return b.toString('latin1', bom, Math.min(b.length, limit));
}

/** XML's whitespace (space, tab, CR, LF). */
export const isXmlSpace = (c: number) => c === 0x20 || c === 0x09 || c === 0x0d || c === 0x0a;

export function skipXmlSpace(s: string, at: number): number {
  while (at < s.length && isXmlSpace(s.charCodeAt(at))) at++;
  return at;
}

/** `s` holds `word` at `at`, ASCII letters compared without case. */
function hasAt(s: string, at: number, word: string): boolean {
  if (at + word.length > s.length) return false;
  for (let i = 0; i < word.length; i++) {
    let c = s.charCodeAt(at + i);
    if (c >= 0x41 && c <= 0x5a) c += 0x20;
    if (c !== word.charCodeAt(i)) return false;
  }
  return true;
}

/**
 * Where the `<svg` root element starts in `s`, or -1 when `s` is not an SVG document: optional
 * whitespace, then any number of comments, processing instructions (the XML declaration is one)
 * and doctypes (with an optional internal subset), then `<svg` followed by whitespace, `/` or `>`.
 * Anything else first (an `<html>`, text) means it is not SVG.
 *
 * One pass: each step moves past what it recognised, and the searches for a closing delimiter
 * (indexOf) start where the construct began, so no character is examined more than a bounded
 * number of times.
 */
export function svgRootAt(s: string): number {
  let at = 0;
  for (;;) {
    at = skipXmlSpace(s, at);
    if (s.startsWith('<!--', at)) {
      const close = s.indexOf('-->', at + 4);
      if (close < 0) return -1;
      at = close + 3;
    } else if (s.startsWith('<?', at)) {
      const close = s.indexOf('?>', at + 2);
      if (close < 0) return -1;
      at = close + 2;
    } else if (hasAt(s, at, '<!doctype')) {
      at = doctypeEnd(s, at + 9);
      if (at < 0) return -1;
    } else if (hasAt(s, at, '<svg')) {
      const next = s.charCodeAt(at + 4);
      return isXmlSpace(next) || next === 0x2f || next === 0x3e ? at : -1;
    } else {
      return -1;
    }
  }
}

/**
 * The position after a doctype whose name part starts at `at`: up to the first `>` or `[`; an
 * internal subset ends at the first `]` followed by optional whitespace and `>`. -1 if unclosed.
 */
function doctypeEnd(s: string, at: number): number {
  while (at < s.length && s[at] !== '>' && s[at] !== '[') at++;
  if (at >= s.length) return -1;
  if (s[at] === '>') return at + 1;
  // Each `]` tried is followed only by the whitespace up to the next non-space character, which
  // the next search starts from: every character is looked at a bounded number of times.
  let from = at + 1;
  for (;;) {
    const close = s.indexOf(']', from);
    if (close < 0) return -1;
    const after = skipXmlSpace(s, close + 1);
    if (s[after] === '>') return after + 1;
    from = after;
  }
}
