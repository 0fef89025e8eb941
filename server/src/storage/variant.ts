/**
 * A variant of an image — what a storage makes of an original (resized, re-encoded) — in the one
 * concrete form every driver, the URL cache and the signatures agree on. The domain turns a preset
 * or a client's transform into a `Variant` already capped to the original's size
 * (`images/variants.ts`); drivers only render or sign what they are given. See
 * docs/architecture.md, "Variants".
 */

export const IMAGE_FITS = ['cover', 'contain', 'inside'] as const;
export type ImageFit = (typeof IMAGE_FITS)[number];
export const IMAGE_FORMATS = ['jpeg', 'png', 'webp', 'avif'] as const;
export type ImageFormat = (typeof IMAGE_FORMATS)[number];

/**
 * How every driver renders a variant, in this order:
 * 1. auto-orient (EXIF orientation applied) and strip all metadata (no GPS leaves in a variant);
 * 2. resize by `fit`, never enlarging the original:
 *    - `inside`: fit within width × height (a missing side is unbounded);
 *    - `cover`: fill exactly width × height, cropping the centre (both sides present);
 *    - `contain`: fit within width × height and pad to exactly that box (both sides present);
 * 3. encode as `format` (undefined: the original's format) at `quality` (undefined: the
 *    encoder's default).
 */
export interface VariantSpec {
  width: number | undefined;
  height: number | undefined;
  fit: ImageFit;
  format: ImageFormat | undefined;
  quality: number | undefined;
}

export interface Variant extends VariantSpec {
  /**
   * The canonical name of the spec, e.g. `320x320-cover-webp-75` or `1280x_-inside-_-_`: URL-,
   * path- and Redis-safe. It is part of each variant's cache id and of its signature.
   */
  readonly key: string;
}

const MISSING = '_';

export function variantOf(spec: VariantSpec): Variant {
  const part = (v: number | string | undefined) => (v === undefined ? MISSING : String(v));
  return {
    width: spec.width,
    height: spec.height,
    fit: spec.fit,
    format: spec.format,
    quality: spec.quality,
    key: `${part(spec.width)}x${part(spec.height)}-${spec.fit}-${part(spec.format)}-${part(spec.quality)}`,
  };
}

/** Largest width or height any variant key may name (a bound on parsing, not the config's limit). */
const KEY_MAX_DIMENSION = 65_535;

/**
 * Parses a canonical variant key (from a URL or a cache id) strictly: only the exact form
 * `variantOf` writes is accepted, so one variant has one name. Linear, no regular expressions.
 */
export function parseVariantKey(key: string): Variant | null {
  if (key.length > 40) return null;
  const parts = key.split('-');
  if (parts.length !== 4) return null;
  const [size, fit, format, quality] = parts as [string, string, string, string];
  const x = size.indexOf('x');
  if (x < 0) return null;
  const width = parseOptionalInt(size.slice(0, x), 1, KEY_MAX_DIMENSION);
  const height = parseOptionalInt(size.slice(x + 1), 1, KEY_MAX_DIMENSION);
  const q = parseOptionalInt(quality, 1, 100);
  if (width === null || height === null || q === null) return null;
  if (!(IMAGE_FITS as readonly string[]).includes(fit)) return null;
  if (format !== MISSING && !(IMAGE_FORMATS as readonly string[]).includes(format)) return null;
  if (width === undefined && height === undefined) return null;
  if (fit !== 'inside' && (width === undefined || height === undefined)) return null;
  const v = variantOf({
    width,
    height,
    fit: fit as ImageFit,
    format: format === MISSING ? undefined : (format as ImageFormat),
    quality: q,
  });
  return v.key === key ? v : null;
}

/** undefined for `_`, null when not a canonical decimal in [min, max]. */
function parseOptionalInt(s: string, min: number, max: number): number | undefined | null {
  if (s === MISSING) return undefined;
  if (s.length === 0 || s.length > 5 || (s.length > 1 && s[0] === '0')) return null;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 48 || c > 57) return null;
  }
  const n = Number(s);
  return n >= min && n <= max ? n : null;
}

/**
 * The size of a variant's bytes for an original of `width` × `height` (as displayed), by the
 * rules of `VariantSpec`. Unknown original size: the box itself (never enlarging may make it
 * smaller).
 */
export function variantOutputSize(
  v: VariantSpec,
  original: { width: number | null; height: number | null },
): { width: number | undefined; height: number | undefined } {
  const ow = original.width ?? undefined;
  const oh = original.height ?? undefined;
  if (v.fit !== 'inside') {
    return { width: v.width, height: v.height };
  }
  if (ow === undefined || oh === undefined) return { width: v.width, height: v.height };
  const scale = Math.min(1, v.width ? v.width / ow : 1, v.height ? v.height / oh : 1);
  return { width: Math.max(1, Math.round(ow * scale)), height: Math.max(1, Math.round(oh * scale)) };
}

/** The url-cache id of an image's variant: `<image id>~<variant key>`; the image id for the original. */
export function urlIdOf(imageId: string, variant: Variant | undefined): string {
  return variant ? `${imageId}~${variant.key}` : imageId;
}

/** The image a url-cache id is of (its variant, if any, left out unparsed). */
export function imageIdOf(urlId: string): string {
  const t = urlId.indexOf('~');
  return t < 0 ? urlId : urlId.slice(0, t);
}

/** Splits a url-cache id back into the image id and the variant (undefined for the original). */
export function splitUrlId(urlId: string): { imageId: string; variant: Variant | undefined } | null {
  const t = urlId.indexOf('~');
  if (t < 0) return { imageId: urlId, variant: undefined };
  const variant = parseVariantKey(urlId.slice(t + 1));
  return variant ? { imageId: urlId.slice(0, t), variant } : null;
}
