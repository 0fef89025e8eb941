/**
 * What an upload really is, decided by its first bytes only: never by the file name or the
 * content type the client claims (both are free text).
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

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
const AVIF_BRANDS = new Set(['avif', 'avis']);

/** How far into a text file an `<svg` root element may start (prolog, comments, doctype). */
const SVG_SNIFF_BYTES = 4096;
// An optional XML declaration, then comments, processing instructions or a doctype (with an
// optional internal subset), then the svg root element. Anything else is not SVG.
const SVG_PROLOG =
  /^(?:<\?xml[^>]*\?>\s*)?(?:<!--[\s\S]*?-->\s*|<\?[\s\S]*?\?>\s*|<!DOCTYPE[^[>]*(?:\[[\s\S]*?\])?\s*>\s*)*<svg[\s/>]/i;

const ascii = (b: Buffer, start: number, end: number) => b.toString('latin1', start, end);

/** The format of an upload, or null when it is none of the image formats Signet knows. */
export function detectFormat(b: Buffer): ImageFormat | null {
  if (b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return 'jpeg';
  if (b.length >= 8 && b.subarray(0, 8).equals(PNG_SIGNATURE)) return 'png';
  if (b.length >= 6 && /^GIF8[79]a$/.test(ascii(b, 0, 6))) return 'gif';
  if (b.length >= 12 && ascii(b, 0, 4) === 'RIFF' && ascii(b, 8, 12) === 'WEBP') return 'webp';
  if (isAvif(b)) return 'avif';
  if (looksLikeSvg(b)) return 'svg';
  return null;
}

/** ISO BMFF with an `ftyp` box naming AVIF as its major or a compatible brand (HEIC is not AVIF). */
function isAvif(b: Buffer): boolean {
  if (b.length < 16 || ascii(b, 4, 8) !== 'ftyp') return false;
  const size = b.readUInt32BE(0);
  if (size < 16 || size > b.length || size % 4 !== 0) return false;
  if (AVIF_BRANDS.has(ascii(b, 8, 12))) return true;
  for (let at = 16; at + 4 <= size; at += 4) if (AVIF_BRANDS.has(ascii(b, at, at + 4))) return true;
  return false;
}

function looksLikeSvg(b: Buffer): boolean {
  let text = b.toString('utf8', 0, Math.min(b.length, SVG_SNIFF_BYTES));
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  return SVG_PROLOG.test(text.trimStart());
}
