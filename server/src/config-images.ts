import {
  IMAGE_FITS,
  IMAGE_FORMATS,
  type ImageFit,
  type ImageFormat,
  type VariantSpec,
} from './storage/variant.js';

/** A named variant of `IMAGE_PRESETS` (the schema's `ImagePreset`). */
export interface ImagePreset extends VariantSpec {
  name: string;
}

/** The variants part of the typed config (docs/architecture.md, "Variants"). */
export interface ImageConfig {
  presets: ImagePreset[];
  /**
   * IMAGE_TRANSFORMS: `presets` (only named presets), `any` (also a client's own `transform`),
   * `off` (no variants at all: every URL is the original's).
   */
  transforms: 'presets' | 'any' | 'off';
  /** IMAGE_MAX_DIMENSION: the largest width or height a variant may ask for. */
  maxDimension: number;
}

export const DEFAULT_IMAGE_PRESETS = 'thumb=320x320:cover:webp:75;medium=1280x1280:inside:webp:80';

type ConfigErrorFactory = (variable: string, message: string) => Error;

/**
 * Parses IMAGE_PRESETS, IMAGE_TRANSFORMS and IMAGE_MAX_DIMENSION. Preset syntax:
 * `name=WxH:fit:format:quality;…` — W or H may be empty for `inside` (`1280x`), and trailing
 * parts may be left out (format: the original's, quality: the encoder's default).
 */
export function parseImageConfig(
  env: Record<string, string | undefined>,
  fail: ConfigErrorFactory,
): ImageConfig {
  const maxRaw = env.IMAGE_MAX_DIMENSION?.trim() || '4096';
  const maxDimension = Number(maxRaw);
  if (!/^[1-9]\d{0,4}$/.test(maxRaw) || maxDimension > 16384) {
    throw fail('IMAGE_MAX_DIMENSION', `must be an integer from 1 to 16384, got "${maxRaw}"`);
  }
  const transformsRaw = env.IMAGE_TRANSFORMS?.trim() || 'presets';
  if (transformsRaw !== 'presets' && transformsRaw !== 'any' && transformsRaw !== 'off') {
    throw fail('IMAGE_TRANSFORMS', `must be presets, any or off, got "${transformsRaw}"`);
  }
  const raw = env.IMAGE_PRESETS?.trim() || DEFAULT_IMAGE_PRESETS;
  const presets = raw
    .split(';')
    .map((s) => s.trim())
    .filter((s) => s !== '')
    .map((entry) => parsePreset(entry, maxDimension, (m) => fail('IMAGE_PRESETS', `"${entry}": ${m}`)));
  const names = new Set<string>();
  for (const p of presets) {
    if (names.has(p.name)) throw fail('IMAGE_PRESETS', `preset "${p.name}" is defined twice`);
    names.add(p.name);
  }
  return { presets: transformsRaw === 'off' ? [] : presets, transforms: transformsRaw, maxDimension };
}

function parsePreset(entry: string, maxDimension: number, fail: (m: string) => Error): ImagePreset {
  const eq = entry.indexOf('=');
  if (eq <= 0) throw fail('expected name=WxH:fit:format:quality');
  const name = entry.slice(0, eq).trim();
  if (!/^[a-z][a-z0-9_-]{0,31}$/.test(name)) {
    throw fail('a preset name is 1-32 of a-z, 0-9, _ and -, starting with a letter');
  }
  const [size = '', fitRaw = 'inside', formatRaw = '', qualityRaw = '', ...extra] = entry
    .slice(eq + 1)
    .split(':')
    .map((s) => s.trim());
  if (extra.length > 0) throw fail('too many parts (name=WxH:fit:format:quality)');
  const x = size.indexOf('x');
  if (x < 0) throw fail(`size "${size}" is not WxH`);
  const dim = (s: string, which: string): number | undefined => {
    if (s === '') return undefined;
    if (!/^[1-9]\d{0,4}$/.test(s) || Number(s) > maxDimension) {
      throw fail(`${which} "${s}" must be an integer from 1 to IMAGE_MAX_DIMENSION (${maxDimension})`);
    }
    return Number(s);
  };
  const width = dim(size.slice(0, x), 'width');
  const height = dim(size.slice(x + 1), 'height');
  if (width === undefined && height === undefined) throw fail('give a width, a height or both');
  const fit = fitRaw.toLowerCase() as ImageFit;
  if (!IMAGE_FITS.includes(fit)) throw fail(`fit "${fitRaw}" is not one of ${IMAGE_FITS.join(', ')}`);
  if (fit !== 'inside' && (width === undefined || height === undefined)) {
    throw fail(`fit ${fit} needs both a width and a height`);
  }
  const formatLower = formatRaw.toLowerCase();
  const format = (formatLower === 'jpg' ? 'jpeg' : formatLower) as ImageFormat | '';
  if (format !== '' && !IMAGE_FORMATS.includes(format)) {
    throw fail(`format "${formatRaw}" is not one of ${IMAGE_FORMATS.join(', ')}`);
  }
  let quality: number | undefined;
  if (qualityRaw !== '') {
    quality = Number(qualityRaw);
    if (!/^\d{1,3}$/.test(qualityRaw) || quality < 1 || quality > 100) {
      throw fail(`quality "${qualityRaw}" must be an integer from 1 to 100`);
    }
  }
  return { name, width, height, fit, format: format === '' ? undefined : format, quality };
}
