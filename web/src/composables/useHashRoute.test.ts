import { describe, expect, it } from 'vitest';
import { imageHref, parseImageId } from './useHashRoute';

describe('the detail view in the hash', () => {
  it('reads the open image from #/gallery/<id>, and nothing from other views', () => {
    expect(parseImageId('#/gallery/5f0c2a9e-1b7d-4c35-9a51-0d1e2f3a4b5c')).toBe(
      '5f0c2a9e-1b7d-4c35-9a51-0d1e2f3a4b5c',
    );
    expect(parseImageId('#/gallery/abc?x=1')).toBe('abc');
    expect(parseImageId('#/gallery')).toBeNull();
    expect(parseImageId('#/gallery/')).toBeNull();
    expect(parseImageId('#/upload/abc')).toBeNull();
    expect(parseImageId('')).toBeNull();
  });

  it('imageHref and parseImageId round-trip, whatever the id holds', () => {
    for (const id of ['abc', 'a b/c', 'ü~1']) expect(parseImageId(imageHref(id))).toBe(id);
  });
});
