import { BoundedMap } from '../lib/bounded-map.js';
import type { Variant } from '../storage/variant.js';

/**
 * Images whose preset variants are kept worked out: a few KB each at most (variants, url ids, the
 * last srcset strings), so a few tens of MB at worst; enough for the pages a node serves often.
 */
const PLANNED_IMAGES = 10_000;

/** One entry of a srcset: the variant and the width its bytes will have. */
export interface SrcsetEntry {
  variant: Variant | undefined;
  width: number | undefined;
}

/** One preset of one image, worked out: what `signedUrl(preset)` and `srcset(preset)` ask for. */
export interface PresetPlan {
  /** 1x first (also the variant `signedUrl(preset)` is), then 2x unless capping dropped it. */
  readonly entries: readonly SrcsetEntry[];
  /** The url id of each entry (`urlIdOf`). */
  readonly ids: readonly string[];
  /** What follows each URL in the srcset: ` 320w`, or ` 1x` when a width cannot be known. */
  readonly descriptors: readonly string[];
  /** The last srcset joined and the URLs it was joined of. */
  last?: { urls: readonly string[]; joined: string };
}

/** What a plan depends on besides the preset (the row's columns; the config is fixed). */
interface PlannedImage {
  contentType: string;
  width: number | null;
  height: number | null;
  /** The row records animation (every entry is then the original: images/variants.ts). */
  animated: boolean;
  byPreset: Map<string, PresetPlan>;
}

/**
 * The preset plans of recently seen images. A warm page asks for the same images' presets
 * request after request; capping each box, naming each variant and its url id, and joining each
 * srcset gave the same objects and strings every time (per URL, garbage that lives across the
 * request's round trips). A plan is used only while the row's type, size and animation are what
 * it was made for (the animation backfill changes a row's); the presets cannot change in a
 * running process.
 */
export class PresetPlans {
  private readonly images = new BoundedMap<string, PlannedImage>(PLANNED_IMAGES);

  /** The plan of `preset` for this image, made by `make` when not known (or the row changed). */
  get(
    image: {
      id: string;
      contentType: string;
      width: number | null;
      height: number | null;
      animated?: boolean | null;
    },
    preset: string,
    make: () => PresetPlan,
  ): PresetPlan {
    let known = this.images.get(image.id);
    const animated = image.animated === true;
    if (
      !known ||
      known.contentType !== image.contentType ||
      known.width !== image.width ||
      known.height !== image.height ||
      known.animated !== animated
    ) {
      known = {
        contentType: image.contentType,
        width: image.width,
        height: image.height,
        animated,
        byPreset: new Map(),
      };
      this.images.set(image.id, known);
    }
    let plan = known.byPreset.get(preset);
    if (!plan) {
      plan = make();
      known.byPreset.set(preset, plan);
    }
    return plan;
  }
}

/**
 * The srcset attribute of a plan's URLs (`URL 320w, URL 640w`). While a step lasts a warm page's
 * URLs are the same strings (the URL memo hands out one object per signature), so the last join
 * is handed out again.
 */
export function joinSrcset(plan: PresetPlan, urls: readonly string[]): string {
  const last = plan.last;
  if (last && last.urls.length === urls.length && last.urls.every((u, i) => u === urls[i])) {
    return last.joined;
  }
  const joined = urls.map((u, i) => `${u}${plan.descriptors[i]}`).join(', ');
  plan.last = { urls: [...urls], joined };
  return joined;
}
