import { describe, expect, it } from 'vitest';
import { galleryImage, presetsAnswer } from '../test-support/gallery-fixtures';
import { createApolloClient } from './apollo';
import {
  choosePresets,
  DETAIL_BAR_PX,
  type DetailRow,
  detailPreset,
  detailSizes,
  detailSource,
  loadPresets,
  TILE_SIZES,
  tile,
  tilePreset,
} from './presets';

describe('choosePresets', () => {
  it('takes `thumb` and `medium` when the gateway has them, and nothing it does not have', () => {
    expect(choosePresets(['thumb', 'medium'])).toEqual({ tile: 'thumb', detail: 'medium' });
    expect(choosePresets(['medium', 'hero', 'thumb'])).toEqual({ tile: 'thumb', detail: 'medium' });
    expect(choosePresets(['thumb'])).toEqual({ tile: 'thumb', detail: undefined });
    expect(choosePresets(['hero'])).toEqual({ tile: undefined, detail: undefined });
    // IMAGE_TRANSFORMS=off: imagePresets is empty.
    expect(choosePresets([])).toEqual({ tile: undefined, detail: undefined });
  });
});

describe('loadPresets', () => {
  it('asks the gateway once: the answer is read from the Apollo cache after that', async () => {
    let asked = 0;
    const client = createApolloClient('/graphql', (async () => {
      asked++;
      return new Response(JSON.stringify(presetsAnswer(['hero', 'medium'])), {
        headers: { 'content-type': 'application/json' },
      });
    }) as typeof fetch);
    expect(await loadPresets(client)).toEqual({ tile: undefined, detail: 'medium' });
    expect(await loadPresets(client)).toEqual({ tile: undefined, detail: 'medium' });
    expect(asked).toBe(1);
  });
});

describe('tile', () => {
  it('shows the `thumb` preset with its srcset and its stream link, following the preset’s live URLs', () => {
    const node = galleryImage(1);
    expect(tile(node)).toEqual({
      id: 'img-1',
      width: 640,
      height: 480,
      placeholder: null,
      signedUrl: { ...node.thumb, srcset: node.thumbSrcset },
      proxyUrl: node.thumbProxyUrl,
    });
    expect(tilePreset(node)).toBe('thumb');
  });

  it('shows the original, without a srcset, where the gateway has no `thumb`', () => {
    const node = galleryImage(2, false);
    expect(tile(node)).toEqual({
      id: 'img-2',
      width: 640,
      height: 480,
      placeholder: null,
      signedUrl: { ...node.original, srcset: null },
      proxyUrl: node.originalProxyUrl,
    });
    expect(tilePreset(node)).toBeUndefined();
  });

  it('is the same object for the same node (SmartImage gets the same props on a re-render)', () => {
    const node = galleryImage(3);
    expect(tile(node)).toBe(tile(node));
    expect(tile({ ...node })).not.toBe(tile(node));
  });

  it('refuses a node that brought no URL at all', () => {
    const { thumb: _, ...bare } = galleryImage(4);
    expect(() => tile(bare)).toThrow(/neither a preset nor the original/);
  });
});

describe('detailSource', () => {
  const image = galleryImage(1);
  const url = (u: string) => ({ url: u, expiresAt: '2030-01-01T13:00:00Z' });

  it('shows the `medium` preset with its srcset over the tile’s placeholder and size', () => {
    const row: DetailRow = {
      id: 'img-1',
      medium: url('http://bucket.test/m.webp'),
      mediumSrcset: 'http://bucket.test/m.webp 1280w',
      mediumProxyUrl: 'http://gateway.test/proxy/m',
    };
    expect(detailSource(row, image)).toEqual({
      id: 'img-1',
      width: 640,
      height: 480,
      placeholder: null,
      signedUrl: { ...url('http://bucket.test/m.webp'), srcset: 'http://bucket.test/m.webp 1280w' },
      proxyUrl: 'http://gateway.test/proxy/m',
    });
    expect(detailPreset(row)).toBe('medium');
  });

  it('shows the original, without a srcset, where the gateway has no `medium`', () => {
    const row: DetailRow = {
      id: 'img-1',
      original: url('http://bucket.test/o.png'),
      originalProxyUrl: 'http://gateway.test/proxy/o',
    };
    expect(detailSource(row, image)).toMatchObject({
      signedUrl: { ...url('http://bucket.test/o.png'), srcset: null },
      proxyUrl: 'http://gateway.test/proxy/o',
    });
    expect(detailPreset(row)).toBeUndefined();
  });
});

describe('TILE_SIZES', () => {
  /** A tile's picture, px, in a window `vw` wide (no scrollbar), as styles.css lays out `.page` and `.grid`. */
  function laidOut(vw: number): number {
    if (vw <= 640) return (vw - 2 * 16 - 12) / 2 - 2; // 1rem padding, two columns, 0.75rem gap, 1 px borders
    const content = Math.min(vw, 1240) - 2 * 24; // --page-max, 1.5rem padding
    const columns = Math.max(1, Math.floor((content + 20) / (232 + 20))); // auto-fill, 232 px min, 1.25rem gap
    return (content - 20 * (columns - 1)) / columns - 2;
  }
  /** What TILE_SIZES says at `vw` (its entries are `(max-width: Npx) calc((100vw - Apx) / D)` and a last length). */
  function said(vw: number): number {
    for (const entry of TILE_SIZES.split(', ')) {
      const m = /^\(max-width: (\d+)px\) calc\(\(100vw - (\d+)px\) \/ (\d+)\)$/.exec(entry);
      if (m) {
        if (vw <= Number(m[1])) return (vw - Number(m[2])) / Number(m[3]);
        continue;
      }
      const last = /^(\d+)px$/.exec(entry);
      if (!last) throw new Error(`an entry this test does not read: ${entry}`);
      return Number(last[1]);
    }
    throw new Error('no entry matched');
  }

  it('says the tile’s laid-out width at every window width from 320 to 2000 px', () => {
    for (let vw = 320; vw <= 2000; vw++) expect(said(vw), `at ${vw} px`).toBeCloseTo(laidOut(vw), 5);
  });
});

describe('detailSizes', () => {
  it('is the picture’s width from its ratio and the bar: the screen’s width or its height, whichever binds', () => {
    expect(detailSizes(1600 / 2400, 69)).toBe(
      '(max-width: 640px) min(100vw, (100vh - 69px) * 0.6667), min(100vw - 48px, 1240px, (100vh - 117px) * 0.6667)',
    );
    expect(detailSizes(1.5, 68.6)).toBe(
      '(max-width: 640px) min(100vw, (100vh - 69px) * 1.5), min(100vw - 48px, 1240px, (100vh - 117px) * 1.5)',
    );
  });

  it('without a usable ratio, the 4:3 the view lays out; without a measured bar, the CSS’s 4.5rem', () => {
    expect(detailSizes(Number.NaN)).toBe(detailSizes(4 / 3, DETAIL_BAR_PX));
    expect(detailSizes(0)).toContain('* 1.3333');
    expect(detailSizes(2)).toContain('(100vh - 120px) * 2)');
  });
});
