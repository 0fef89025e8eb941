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
 * How wide a gallery tile is laid out, for `<img sizes>` (mirrors `.grid` in styles.css): two
 * columns on narrow screens, else auto-fill columns of at least 232 px, at most ~370 px when two
 * fit and ~320 px from three on.
 */
export const TILE_SIZES = '(max-width: 640px) calc(50vw - 1.5rem), (max-width: 800px) 370px, 320px';

/** The detail view: the picture spans the dialog, up to the page's width. */
export const DETAIL_SIZES = '(max-width: 1280px) 100vw, 1240px';

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
