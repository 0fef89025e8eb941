import { createHash } from 'node:crypto';
import type { ImageConfig, ImagePreset } from '../config-images.js';
import { badInput } from '../errors/index.js';
import { derivedKeyOf } from '../storage/derived-variants.js';
import {
  type ImageFit,
  type ImageFormat,
  urlIdOf,
  type Variant,
  type VariantSpec,
  variantOf,
  variantOutputSize,
} from '../storage/variant.js';
import type { ObjectPlacement, UrlRequest } from '../urls/resolved-url.js';
import { joinSrcset, type PresetPlan, PresetPlans, type SrcsetEntry } from './preset-plans.js';

export type { SrcsetEntry } from './preset-plans.js';

/** `ImageTransform` as the schema hands it over (enum values already lower-case). */
export interface TransformInput {
  width?: number | null;
  height?: number | null;
  fit?: ImageFit | null;
  format?: ImageFormat | null;
  quality?: number | null;
}

/** What an image row tells about the original a variant is made of. */
export interface VariantSource {
  contentType: string;
  width: number | null;
  height: number | null;
  /**
   * The row's `animated`: true for an animated WebP, APNG or AVIF sequence, whose variants are
   * then the original's URL; false, null (not looked at yet) or absent: a still as far as the
   * catalog knows (the renderer of `local` and `s3` still serves an animated original whole).
   */
  animated?: boolean | null;
}

/**
 * An image row as far as its URLs are concerned: where its object is (several regions) and
 * `variantsReady`, the variant keys whose derived objects exist (only where variants are derived
 * objects, the `s3` driver).
 */
export type UrlSource = VariantSource &
  ObjectPlacement & { id: string; objectKey: string; variantsReady?: readonly string[] };

export interface VariantCatalogOptions {
  /**
   * Variants are derived objects Signet makes after upload (`s3`): a variant's URL signs its
   * derived object once the row says it exists, else the original's (docs/architecture.md,
   * "Variants on s3").
   */
  derivedObjects?: boolean;
  /** A preset's URL handed out as the original's, its object not made yet (a metric). */
  onFallback?: (preset: string) => void;
}

/** A srcset's URL requests (one per entry) and how to join their URLs into the attribute. */
export interface SrcsetPlan {
  requests: UrlRequest[];
  join(urls: readonly string[]): string;
}

/**
 * Originals a variant can be made of. SVG (scripts, external references) and GIF (animation)
 * are handed out as they are: a variant of them is the original's URL.
 */
const RASTER_TYPES = new Set(['image/jpeg', 'image/png', 'image/webp', 'image/avif']);

/**
 * Whether every variant of this original is the original's URL: a type no variant is made of, or
 * an original its row records as animated (a variant would keep its first frame only). Then a
 * preset, a transform and each srcset entry are the original's URL, exactly as for a GIF.
 */
function handedOutWhole(image: VariantSource): boolean {
  return !RASTER_TYPES.has(image.contentType) || image.animated === true;
}

/**
 * The variants domain: which variant a `preset` or a `transform` argument asks for (checked,
 * with BAD_USER_INPUT naming the argument), and the concrete `Variant` of one image — its box
 * capped to the original's size, so a variant is never larger than the original and one variant
 * of one image has one name (and one URL per step). See docs/architecture.md, "Variants".
 */
export class VariantCatalog {
  private readonly byName = new Map<string, ImagePreset>();
  /** Each recent image's presets worked out once (a warm page asks for the same ones). */
  private readonly plans = new PresetPlans();

  constructor(
    private readonly config: ImageConfig,
    private readonly options: VariantCatalogOptions = {},
  ) {
    for (const p of config.presets) this.byName.set(p.name, p);
  }

  /**
   * A short name of what the presets ask of every image (the presets and IMAGE_MAX_DIMENSION,
   * which caps 2× entries): derived objects made for another tag are made again.
   */
  presetsTag(): string {
    const what = JSON.stringify([this.config.presets, this.config.maxDimension]);
    return createHash('sha256').update(what).digest('base64url').slice(0, 16);
  }

  /** Whether variants are derived objects made by Signet (the `s3` driver). */
  get derivedObjects(): boolean {
    return this.options.derivedObjects === true;
  }

  /**
   * The object a URL of `variant` of this image signs: the original for the original, and for a
   * variant the original too unless variants are derived objects and this one is made (the row
   * carries which: no I/O). A variant asked for by `preset` and handed out as the original is
   * counted.
   */
  objectKeyFor(image: UrlSource, variant: Variant | undefined, preset?: string): string {
    if (!variant || !this.options.derivedObjects) return image.objectKey;
    if (image.variantsReady?.includes(variant.key)) return derivedKeyOf(image.objectKey, variant);
    if (preset !== undefined) this.options.onFallback?.(preset);
    return image.objectKey;
  }

  /**
   * Every variant the presets ask of one image (each preset at 1× and 2×, capped, deduplicated):
   * what is made after upload where variants are derived objects. None for a non-raster image,
   * nor for an animated one.
   */
  presetVariants(image: VariantSource): Variant[] {
    const out = new Map<string, Variant>();
    for (const p of this.config.presets) {
      for (const e of this.srcset(p, image)) if (e.variant) out.set(e.variant.key, e.variant);
    }
    return [...out.values()];
  }

  presets(): readonly ImagePreset[] {
    return this.config.presets;
  }

  /** The spec a field's arguments ask for; undefined for the original. */
  specFor(
    preset: string | null | undefined,
    transform: TransformInput | null | undefined,
  ): VariantSpec | undefined {
    if (preset != null && transform != null) {
      throw badInput('Give either preset or transform, not both', { argument: 'preset' });
    }
    if (preset != null) return this.preset(preset);
    if (transform != null) return this.transform(transform);
    return undefined;
  }

  /** A named preset, or BAD_USER_INPUT naming `argument`. */
  preset(name: string, argument = 'preset'): ImagePreset {
    const p = this.byName.get(name);
    if (p) return p;
    if (this.config.transforms === 'off') {
      throw badInput('Variants are off on this gateway (IMAGE_TRANSFORMS=off)', { argument });
    }
    const known = this.config.presets.map((x) => x.name).join(', ');
    throw badInput(`Unknown preset "${name.slice(0, 64)}" (known: ${known})`, { argument });
  }

  private transform(t: TransformInput): VariantSpec {
    if (this.config.transforms !== 'any') {
      throw badInput(
        'transform is not allowed on this gateway (IMAGE_TRANSFORMS is not "any"): use a preset',
        { argument: 'transform' },
      );
    }
    const max = this.config.maxDimension;
    const dim = (v: number | null | undefined, name: string) => {
      if (v == null) return undefined;
      if (!Number.isInteger(v) || v < 1 || v > max) {
        throw badInput(`transform.${name} must be from 1 to ${max}`, { argument: `transform.${name}` });
      }
      return v;
    };
    const width = dim(t.width, 'width');
    const height = dim(t.height, 'height');
    const fit = t.fit ?? 'inside';
    if (width === undefined && height === undefined) {
      throw badInput('transform needs a width, a height or both', { argument: 'transform.width' });
    }
    if (fit !== 'inside' && (width === undefined || height === undefined)) {
      throw badInput(`transform.fit ${fit.toUpperCase()} needs both width and height`, {
        argument: 'transform.fit',
      });
    }
    if (t.quality != null && (!Number.isInteger(t.quality) || t.quality < 1 || t.quality > 100)) {
      throw badInput('transform.quality must be from 1 to 100', { argument: 'transform.quality' });
    }
    return { width, height, fit, format: t.format ?? undefined, quality: t.quality ?? undefined };
  }

  /**
   * The concrete variant of `spec` for one image, or undefined when the image is handed out as
   * its original (not a raster image, or animated: `handedOutWhole`). The box is capped to the original (as displayed): a
   * `cover`/`contain` box larger than the original shrinks, keeping its aspect ratio; an `inside`
   * box never exceeds the original's sides. Unknown original sizes leave the box as asked (the
   * renderer never enlarges).
   */
  forImage(spec: VariantSpec, image: VariantSource, scale = 1): Variant | undefined {
    if (handedOutWhole(image)) return undefined;
    let width = spec.width === undefined ? undefined : spec.width * scale;
    let height = spec.height === undefined ? undefined : spec.height * scale;
    // A 2x entry stays within IMAGE_MAX_DIMENSION too (keeping the box's aspect ratio).
    const over = Math.max(width ?? 0, height ?? 0) / this.config.maxDimension;
    if (over > 1) {
      if (width !== undefined) width = Math.max(1, Math.floor(width / over));
      if (height !== undefined) height = Math.max(1, Math.floor(height / over));
    }
    const ow = image.width;
    const oh = image.height;
    if (ow !== null && oh !== null && ow > 0 && oh > 0) {
      if (spec.fit === 'inside') {
        if (width !== undefined) width = Math.min(width, ow);
        if (height !== undefined) height = Math.min(height, oh);
      } else if (width !== undefined && height !== undefined && (width > ow || height > oh)) {
        const s = Math.min(ow / width, oh / height);
        width = Math.max(1, Math.floor(width * s));
        height = Math.max(1, Math.floor(height * s));
      }
    }
    return variantOf({ ...spec, width, height });
  }

  /**
   * The URL request of one image for a field's arguments: the original, a preset's variant or a
   * client's transform (checked here: BAD_USER_INPUT names the argument).
   */
  urlRequest(
    image: UrlSource,
    minTtl: number,
    preset: string | null | undefined,
    transform: TransformInput | null | undefined,
  ): UrlRequest {
    let id: string;
    let variant: Variant | undefined;
    if (preset != null && transform == null) {
      // A preset's URL is its srcset's 1x entry.
      const plan = this.planOf(image, this.preset(preset));
      id = plan.ids[0]!;
      variant = plan.entries[0]!.variant;
    } else {
      const spec = this.specFor(preset, transform);
      variant = spec && this.forImage(spec, image);
      id = urlIdOf(image.id, variant);
    }
    const name = variant ? (preset ?? 'transform') : undefined;
    return {
      id,
      key: this.objectKeyFor(image, variant, name),
      placement: image,
      minTtl,
      variant,
      preset: name,
    };
  }

  /**
   * `srcset(preset)` of one image: the requests of its entries and the join of their URLs into
   * `URL 320w, URL 640w` (`1x`/`2x` descriptors when a width cannot be known).
   */
  srcsetPlan(image: UrlSource, presetName: string, minTtl: number): SrcsetPlan {
    const plan = this.planOf(image, this.preset(presetName));
    const requests = plan.entries.map((e, i) => ({
      id: plan.ids[i]!,
      key: this.objectKeyFor(image, e.variant, presetName),
      placement: image,
      minTtl,
      variant: e.variant,
      preset: e.variant ? presetName : undefined,
    }));
    return { requests, join: (urls) => joinSrcset(plan, urls) };
  }

  /** A preset of one image worked out (its srcset entries, their url ids and descriptors). */
  private planOf(image: UrlSource, preset: ImagePreset): PresetPlan {
    return this.plans.get(image, preset.name, () => {
      const entries = this.srcset(preset, image);
      const byWidth = entries.every((e) => e.width !== undefined);
      return {
        entries,
        ids: entries.map((e) => urlIdOf(image.id, e.variant)),
        descriptors: entries.map((e, i) => (byWidth ? ` ${e.width}w` : ` ${i + 1}x`)),
      };
    });
  }

  /** The url ids of every preset's variants of one image (1× and 2×): what a delete purges. */
  presetUrlIds(image: VariantSource & { id: string }): string[] {
    return this.presetVariants(image).map((v) => urlIdOf(image.id, v));
  }

  /**
   * `srcset(preset)`: the preset at 1× and 2×, each capped to the original; the 2× entry is left
   * out when capping made it the same as (or no wider than) the 1× one.
   */
  srcset(spec: VariantSpec, image: VariantSource): SrcsetEntry[] {
    const entries: SrcsetEntry[] = [];
    for (const scale of [1, 2]) {
      const variant = this.forImage(spec, image, scale);
      const width = variant ? variantOutputSize(variant, image).width : (image.width ?? undefined);
      const last = entries.at(-1);
      if (last && (last.variant?.key === variant?.key || (width ?? 0) <= (last.width ?? 0))) continue;
      entries.push({ variant, width });
    }
    return entries;
  }
}
