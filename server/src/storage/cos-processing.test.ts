import { describe, expect, it } from 'vitest';
import { cosProcessing } from './cos-processing.js';
import { variantOf } from './variant.js';

describe('cosProcessing', () => {
  it('renders cover as the minimum-size thumbnail, then a centred crop of exactly the box', () => {
    const thumb = variantOf({ width: 320, height: 320, fit: 'cover', format: 'webp', quality: 75 });
    expect(cosProcessing(thumb)).toBe(
      'imageMogr2/auto-orient/thumbnail/!320x320r/gravity/center/crop/320x320/format/webp/quality/75!/strip',
    );
  });

  it('renders inside as a shrink-only thumbnail, or a one-sided one', () => {
    const medium = variantOf({ width: 1280, height: 1280, fit: 'inside', format: 'webp', quality: 80 });
    expect(cosProcessing(medium)).toBe(
      'imageMogr2/auto-orient/thumbnail/1280x1280>/format/webp/quality/80!/strip',
    );
    const wide = variantOf({
      width: 640,
      height: undefined,
      fit: 'inside',
      format: undefined,
      quality: undefined,
    });
    expect(cosProcessing(wide)).toBe('imageMogr2/auto-orient/thumbnail/640x/strip');
    const tall = variantOf({ width: undefined, height: 480, fit: 'inside', format: 'jpeg', quality: 90 });
    expect(cosProcessing(tall)).toBe('imageMogr2/auto-orient/thumbnail/x480/format/jpg/quality/90!/strip');
  });

  it('renders contain as a thumbnail padded to the box', () => {
    const boxed = variantOf({ width: 400, height: 300, fit: 'contain', format: 'avif', quality: 50 });
    expect(cosProcessing(boxed)).toBe(
      'imageMogr2/auto-orient/thumbnail/400x300/pad/1/format/avif/quality/50!/strip',
    );
  });

  it('leaves quality out for PNG (lossless) and format out when the original format is kept', () => {
    const png = variantOf({ width: 100, height: 100, fit: 'cover', format: 'png', quality: 60 });
    expect(cosProcessing(png)).toBe(
      'imageMogr2/auto-orient/thumbnail/!100x100r/gravity/center/crop/100x100/format/png/strip',
    );
    const same = variantOf({ width: 100, height: 50, fit: 'inside', format: undefined, quality: 70 });
    expect(cosProcessing(same)).toBe('imageMogr2/auto-orient/thumbnail/100x50>/quality/70!/strip');
  });

  it('always orients first and strips last, and never asks COS to fall back to the original', () => {
    for (const fit of ['cover', 'contain', 'inside'] as const) {
      const p = cosProcessing(variantOf({ width: 10, height: 20, fit, format: 'webp', quality: 1 }));
      expect(p.startsWith('imageMogr2/auto-orient/')).toBe(true);
      expect(p.endsWith('/strip')).toBe(true);
      expect(p).not.toContain('ignore-error');
    }
  });

  it('refuses a cover or contain box without both sides', () => {
    const spec = { width: 10, height: undefined, format: undefined, quality: undefined };
    expect(() => cosProcessing({ ...spec, fit: 'cover' })).toThrow(/both sides/);
    expect(() => cosProcessing({ ...spec, fit: 'contain' })).toThrow(/both sides/);
  });
});
