import type { ApolloClient } from '@apollo/client/core';
import type { SmartImageSource } from '@signet/vue';
import { type GalleryImageFragment, type ImageDetailQuery, ImagePresetsDocument } from '../gql/graphql';

/**
 * The presets the app shows where the gateway has them (the defaults of IMAGE_PRESETS,
 * docs/architecture.md). The documents in graphql/images.graphql name them too (a GraphQL document
 * cannot import a constant), asked only when `$thumb` / `$medium` say the gateway has them.
 */
export const TILE_PRESET = 'thumb';
export const DETAIL_PRESET = 'medium';

/**
 * Which of the app's presets the gateway has (`imagePresets`). IMAGE_PRESETS is a setting and
 * IMAGE_TRANSFORMS=off has none: where a preset is missing (undefined) the app shows the
 * original's signed URL instead, without a srcset, and follows the originals' live URLs. Asking
 * the gateway for a preset it does not have would fail the whole request (a page of the gallery).
 */
export interface Presets {
  tile: typeof TILE_PRESET | undefined;
  detail: typeof DETAIL_PRESET | undefined;
}

/** The app's presets among the names the gateway has. */
export function choosePresets(names: readonly string[]): Presets {
  return {
    tile: names.includes(TILE_PRESET) ? TILE_PRESET : undefined,
    detail: names.includes(DETAIL_PRESET) ? DETAIL_PRESET : undefined,
  };
}

/**
 * The app's presets the gateway has, asked once: the answer stays in the Apollo cache, and views
 * asking after that read it there (composables/useImagePresets.ts is the same for a component).
 */
export async function loadPresets(client: Pick<ApolloClient<unknown>, 'query'>): Promise<Presets> {
  const { data } = await client.query({ query: ImagePresetsDocument });
  return choosePresets(data.imagePresets.map((p) => p.name));
}

/**
 * How wide a gallery tile's picture is laid out, for `<img sizes>`, at every width of the window
 * (mirrors `.page` and `.grid` in styles.css; the picture is the card less its 1 px borders):
 * - up to 640 px: two columns, 1rem of padding each side, a 0.75rem gap: (100vw - 48px) / 2;
 * - above, the page's content is 100vw - 3rem (at most 1192 px: --page-max 1240 less its padding),
 *   in auto-fill columns of at least 232 px with 1.25rem gaps: n columns from a content of
 *   252n - 20 px, so two up to a 783 px window, three up to 1035 px, four from there on (five
 *   would need 1240 px of content); at 1240 px and wider, four of 281 px.
 * The widths are a window without a scrollbar (phones, macOS): where the page's always-shown
 * scrollbar takes its 15 px, a tile is up to 8 px narrower than said, but in the 15 px above
 * each step, where it still has a column fewer (wider than said): the srcset's 1× and 2× entries
 * (320w, 640w) are far enough apart for either to matter little.
 * At 700 px the old value (370 px from 641 to 800) took the 640w thumbnails for 314 px tiles.
 */
export const TILE_SIZES = [
  '(max-width: 640px) calc((100vw - 48px) / 2)',
  '(max-width: 783px) calc((100vw - 72px) / 2)',
  '(max-width: 1035px) calc((100vw - 94px) / 3)',
  '(max-width: 1239px) calc((100vw - 116px) / 4)',
  '281px',
].join(', ');

/** The detail view's bar (its info and buttons) until measured: one line of it, as its CSS allows (4.5rem). */
export const DETAIL_BAR_PX = 72;

/**
 * How wide the detail view shows a picture of `ratio` (width / height), for `<img sizes>`, the bar
 * below it `barPx` tall (components/ImageDetail.vue's CSS): the picture fits the screen's height
 * less the bar, and its width, whichever is smaller.
 * - up to 640 px wide, the dialog is the whole screen: the picture, contained, is at most 100vw
 *   wide and as wide as the height above the bar allows;
 * - above, the dialog sits in 1.5rem of padding (3rem each way) and is at most 1240 px wide.
 * A portrait photo at 1280×800 is 455 px wide: `100vw` made a browser at DPR 1 take its 1600w
 * variant (about ten times the bytes) rather than the 853w one.
 */
export function detailSizes(ratio: number, barPx: number = DETAIL_BAR_PX): string {
  const r = Number((Number.isFinite(ratio) && ratio > 0 ? ratio : 4 / 3).toFixed(4));
  const bar = Math.max(0, Math.round(barPx));
  return [
    `(max-width: 640px) min(100vw, (100vh - ${bar}px) * ${r})`,
    `min(100vw - 48px, 1240px, (100vh - ${bar + 48}px) * ${r})`,
  ].join(', ');
}

interface Url {
  url: string;
  expiresAt: string;
}

/**
 * The URLs a document brought for a picture: the preset's (with its srcset and its stream link)
 * when it asked for the preset, else the original's (no srcset). Exactly one of the two is there:
 * the documents ask for the original with `@skip` on the same variable as the preset's `@include`.
 */
function urls(
  preset: { url?: Url | undefined; srcset?: string | undefined; proxyUrl?: string | undefined },
  original: { url?: Url | undefined; proxyUrl?: string | undefined },
): Pick<SmartImageSource, 'signedUrl' | 'proxyUrl'> {
  if (preset.url && preset.srcset !== undefined && preset.proxyUrl !== undefined)
    return { signedUrl: { ...preset.url, srcset: preset.srcset }, proxyUrl: preset.proxyUrl };
  if (original.url && original.proxyUrl !== undefined)
    return { signedUrl: { ...original.url, srcset: null }, proxyUrl: original.proxyUrl };
  throw new Error('an image without a URL: its document asked for neither a preset nor the original');
}

const tiles = new WeakMap<GalleryImageFragment, SmartImageSource>();

/**
 * What a tile shows: the `thumb` preset's URL with its srcset, its proxy link, the placeholder;
 * the original's URL and proxy link where the gateway has no `thumb`. One object per cached node
 * (Apollo hands out the same object until the node changes), so a re-render gives SmartImage the
 * same props rather than a copy.
 */
export function tile(node: GalleryImageFragment): SmartImageSource {
  let source = tiles.get(node);
  if (!source) {
    source = {
      id: node.id,
      width: node.width,
      height: node.height,
      placeholder: node.placeholder,
      ...urls(
        { url: node.thumb, srcset: node.thumbSrcset, proxyUrl: node.thumbProxyUrl },
        { url: node.original, proxyUrl: node.originalProxyUrl },
      ),
    };
    tiles.set(node, source);
  }
  return source;
}

/** The preset of a tile's URL, for SmartImage's live URLs: undefined for the original's. */
export const tilePreset = (node: GalleryImageFragment): string | undefined =>
  node.thumb ? TILE_PRESET : undefined;

export type DetailRow = NonNullable<ImageDetailQuery['imagesByIds'][number]>;

/** What the detail view shows of `image`: the `medium` preset (`row`), or the original without it. */
export function detailSource(row: DetailRow, image: GalleryImageFragment): SmartImageSource {
  return {
    id: row.id,
    width: image.width,
    height: image.height,
    placeholder: image.placeholder,
    ...urls(
      { url: row.medium, srcset: row.mediumSrcset, proxyUrl: row.mediumProxyUrl },
      { url: row.original, proxyUrl: row.originalProxyUrl },
    ),
  };
}

/** The preset of the detail view's URL, for SmartImage's live URLs: undefined for the original's. */
export const detailPreset = (row: DetailRow): string | undefined => (row.medium ? DETAIL_PRESET : undefined);
