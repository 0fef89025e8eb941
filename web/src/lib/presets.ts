import type { SmartImageSource } from '@signet/vue';
import type { GalleryImageFragment } from '../gql/graphql';

/**
 * The presets the app shows (names from the gateway's IMAGE_PRESETS, docs/architecture.md). The
 * queries in graphql/images.graphql name them too: a GraphQL document cannot import a constant.
 */
export const TILE_PRESET = 'thumb';
export const DETAIL_PRESET = 'medium';

/**
 * How wide a gallery tile is laid out, for `<img sizes>` (mirrors `.grid` in styles.css): two
 * columns on narrow screens, else auto-fill columns of at least 232 px, at most ~370 px when two
 * fit and ~320 px from three on.
 */
export const TILE_SIZES = '(max-width: 640px) calc(50vw - 1.5rem), (max-width: 800px) 370px, 320px';

/** The detail view: the picture spans the dialog, up to the page's width. */
export const DETAIL_SIZES = '(max-width: 1280px) 100vw, 1240px';

const tiles = new WeakMap<GalleryImageFragment, SmartImageSource>();

/**
 * What a tile shows: the `thumb` preset's URL with its srcset, its proxy link, the placeholder.
 * One object per cached node (Apollo hands out the same object until the node changes), so a
 * re-render gives SmartImage the same props rather than a copy.
 */
export function tile(node: GalleryImageFragment): SmartImageSource {
  let source = tiles.get(node);
  if (!source) {
    source = {
      id: node.id,
      width: node.width,
      height: node.height,
      placeholder: node.placeholder,
      signedUrl: { ...node.thumb, srcset: node.thumbSrcset },
      proxyUrl: node.thumbProxyUrl,
    };
    tiles.set(node, source);
  }
  return source;
}
