import { describe, expect, it } from 'vitest';
import { galleryImage, presetsAnswer } from '../test-support/gallery-fixtures';
import { createApolloClient } from './apollo';
import {
  choosePresets,
  type DetailRow,
  detailPreset,
  detailSource,
  loadPresets,
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
