import { describe, expect, it } from 'vitest';
import { parseImageConfig } from '../config-images.js';
import { AppError } from '../errors/index.js';
import { parseVariantKey, splitUrlId, urlIdOf, variantOf, variantOutputSize } from '../storage/variant.js';
import { VariantCatalog } from './variants.js';

const fail = (variable: string, message: string) => new Error(`${variable}: ${message}`);
const catalog = (env: Record<string, string> = {}) => new VariantCatalog(parseImageConfig(env, fail));
const photo = {
  id: 'a1',
  objectKey: 'k/a1.jpg',
  contentType: 'image/jpeg',
  width: 2400,
  height: 1600,
  homeRegion: null,
  replicatedRegions: [],
  createdAt: new Date(0),
};

function argumentOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(AppError);
    expect((err as AppError).code).toBe('BAD_USER_INPUT');
    return String((err as AppError).extensions.argument);
  }
  throw new Error('expected BAD_USER_INPUT');
}

describe('IMAGE_PRESETS', () => {
  it('parses the default presets', () => {
    const c = parseImageConfig({}, fail);
    expect(c.transforms).toBe('presets');
    expect(c.maxDimension).toBe(4096);
    expect(c.presets).toEqual([
      { name: 'thumb', width: 320, height: 320, fit: 'cover', format: 'webp', quality: 75 },
      { name: 'medium', width: 1280, height: 1280, fit: 'inside', format: 'webp', quality: 80 },
    ]);
  });

  it('takes open sides for inside, jpg for jpeg and left-out parts', () => {
    const c = parseImageConfig({ IMAGE_PRESETS: 'wide=1600x:inside:jpg;tiny=64x64:contain' }, fail);
    expect(c.presets).toEqual([
      { name: 'wide', width: 1600, height: undefined, fit: 'inside', format: 'jpeg', quality: undefined },
      { name: 'tiny', width: 64, height: 64, fit: 'contain', format: undefined, quality: undefined },
    ]);
  });

  it.each([
    ['thumb', 'expected name=WxH'],
    ['Thumb=1x1', 'preset name'],
    ['t=320:cover', 'is not WxH'],
    ['t=0x10', 'width "0"'],
    ['t=5000x10', 'IMAGE_MAX_DIMENSION'],
    ['t=x', 'give a width'],
    ['t=10x10:stretch', 'fit "stretch"'],
    ['t=10x:cover', 'needs both'],
    ['t=10x10:cover:gif', 'format "gif"'],
    ['t=10x10:cover:webp:101', 'quality "101"'],
    ['t=10x10:cover:webp:75:x', 'too many parts'],
    ['a=1x1;a=2x2', 'defined twice'],
  ])('refuses %s naming IMAGE_PRESETS', (value, message) => {
    expect(() => parseImageConfig({ IMAGE_PRESETS: value }, fail)).toThrow(/^IMAGE_PRESETS: .*/);
    expect(() => parseImageConfig({ IMAGE_PRESETS: value }, fail)).toThrow(message);
  });

  it('refuses bad IMAGE_TRANSFORMS and IMAGE_MAX_DIMENSION', () => {
    expect(() => parseImageConfig({ IMAGE_TRANSFORMS: 'some' }, fail)).toThrow(/^IMAGE_TRANSFORMS:/);
    expect(() => parseImageConfig({ IMAGE_MAX_DIMENSION: '0' }, fail)).toThrow(/^IMAGE_MAX_DIMENSION:/);
    expect(() => parseImageConfig({ IMAGE_MAX_DIMENSION: '99999' }, fail)).toThrow(/^IMAGE_MAX_DIMENSION:/);
  });

  it('off: no presets at all', () => {
    expect(parseImageConfig({ IMAGE_TRANSFORMS: 'off' }, fail).presets).toEqual([]);
    expect(argumentOf(() => catalog({ IMAGE_TRANSFORMS: 'off' }).preset('thumb'))).toBe('preset');
  });
});

describe('variant keys', () => {
  it('round-trip exactly and refuse every other spelling', () => {
    const v = variantOf({ width: 320, height: 320, fit: 'cover', format: 'webp', quality: 75 });
    expect(v.key).toBe('320x320-cover-webp-75');
    expect(parseVariantKey(v.key)).toEqual(v);
    const open = variantOf({
      width: 1280,
      height: undefined,
      fit: 'inside',
      format: undefined,
      quality: undefined,
    });
    expect(open.key).toBe('1280x_-inside-_-_');
    expect(parseVariantKey(open.key)).toEqual(open);
    for (const bad of [
      '0320x320-cover-webp-75',
      '320x320-cover-webp-0',
      '320x320-cover-gif-75',
      '320x_-cover-webp-75',
      '_x_-inside-_-_',
      '320x320-cover-webp',
      '320X320-cover-webp-75',
      '',
      `${'9'.repeat(50)}x1-inside-_-_`,
    ]) {
      expect(parseVariantKey(bad), bad).toBeNull();
    }
  });

  it('url ids name the image and the variant', () => {
    const v = variantOf({ width: 320, height: 320, fit: 'cover', format: 'webp', quality: 75 });
    expect(urlIdOf('a1', undefined)).toBe('a1');
    expect(splitUrlId(urlIdOf('a1', v))).toEqual({ imageId: 'a1', variant: v });
    expect(splitUrlId('a1~nonsense')).toBeNull();
  });
});

describe('VariantCatalog', () => {
  it('caps a box to the original: cover keeps its aspect, inside never exceeds a side', () => {
    const c = catalog();
    const thumb = c.preset('thumb');
    expect(c.forImage(thumb, photo)!.key).toBe('320x320-cover-webp-75');
    const small = { ...photo, width: 200, height: 100 };
    expect(c.forImage(thumb, small)!.key).toBe('100x100-cover-webp-75');
    const medium = c.preset('medium');
    expect(c.forImage(medium, small)!.key).toBe('200x100-inside-webp-80');
    expect(variantOutputSize(c.forImage(medium, photo)!, photo)).toEqual({ width: 1280, height: 853 });
    // A portrait original (as displayed) gives a portrait medium.
    const portrait = { ...photo, width: 3000, height: 4000 };
    expect(variantOutputSize(c.forImage(medium, portrait)!, portrait)).toEqual({ width: 960, height: 1280 });
  });

  it('hands out the original for SVG and GIF', () => {
    const c = catalog();
    expect(c.forImage(c.preset('thumb'), { ...photo, contentType: 'image/svg+xml' })).toBeUndefined();
    expect(c.forImage(c.preset('thumb'), { ...photo, contentType: 'image/gif' })).toBeUndefined();
  });

  it('srcset: 1x and 2x, the 2x left out when the original is too small for it', () => {
    const c = catalog();
    const plan = c.srcsetPlan(photo, 'thumb', 300);
    expect(plan.requests.map((r) => r.id)).toEqual(['a1~320x320-cover-webp-75', 'a1~640x640-cover-webp-75']);
    expect(plan.join(['U1', 'U2'])).toBe('U1 320w, U2 640w');
    const small = { ...photo, width: 800, height: 600 };
    const p2 = c.srcsetPlan(small, 'thumb', 300);
    expect(p2.requests.map((r) => r.variant?.key)).toEqual([
      '320x320-cover-webp-75',
      '600x600-cover-webp-75',
    ]);
    expect(p2.join(['U1', 'U2'])).toBe('U1 320w, U2 600w');
    const tiny = { ...photo, width: 100, height: 80 };
    expect(c.srcsetPlan(tiny, 'thumb', 300).requests).toHaveLength(1);
  });

  it('works out a preset of an image once, and again when its row changes', () => {
    const c = catalog();
    const first = c.srcsetPlan(photo, 'thumb', 300);
    const again = c.srcsetPlan({ ...photo }, 'thumb', 60);
    // The same variants and ids; the requests are this call's (its row, its minTtl).
    expect(again.requests[0]!.variant).toBe(first.requests[0]!.variant);
    expect(again.requests[0]!.minTtl).toBe(60);
    // signedUrl(preset) is the srcset's 1x entry.
    const one = c.urlRequest(photo, 300, 'thumb', undefined);
    expect(one.id).toBe('a1~320x320-cover-webp-75');
    expect(one.variant).toBe(first.requests[0]!.variant);
    // The same URLs give the same srcset string; other URLs (a new step) a new one.
    const joined = first.join(['U1', 'U2']);
    expect(again.join(['U1', 'U2'])).toBe(joined);
    expect(again.join(['V1', 'V2'])).toBe('V1 320w, V2 640w');
    // Another size or type of the same id is planned anew.
    const resized = c.srcsetPlan({ ...photo, width: 500, height: 400 }, 'thumb', 300);
    expect(resized.requests.map((r) => r.variant?.key)).toEqual([
      '320x320-cover-webp-75',
      '400x400-cover-webp-75',
    ]);
    expect(c.srcsetPlan({ ...photo, contentType: 'image/gif' }, 'thumb', 300).requests).toEqual([
      expect.objectContaining({ id: 'a1', variant: undefined }),
    ]);
  });

  it('hands out the original for an animated WebP, APNG or AVIF sequence, exactly as for a GIF', () => {
    const c = catalog({ IMAGE_TRANSFORMS: 'any' });
    for (const contentType of ['image/webp', 'image/png', 'image/avif']) {
      const animated = { ...photo, id: `an-${contentType}`, contentType, animated: true };
      const gif = { ...animated, contentType: 'image/gif', animated: false };
      expect(c.forImage(c.preset('thumb'), animated)).toBeUndefined();
      expect(c.presetVariants(animated)).toEqual([]);
      expect(c.presetUrlIds(animated)).toEqual([]);
      // A preset, a transform and the srcset: the original's url id, as a GIF's (one URL per window).
      for (const img of [animated, gif]) {
        expect(c.urlRequest(img, 300, 'thumb', undefined)).toMatchObject({
          id: img.id,
          key: img.objectKey,
          variant: undefined,
          preset: undefined,
        });
        expect(c.urlRequest(img, 300, undefined, { width: 200, format: 'jpeg' })).toMatchObject({
          id: img.id,
          variant: undefined,
        });
        const plan = c.srcsetPlan(img, 'medium', 300);
        expect(plan.requests).toEqual([expect.objectContaining({ id: img.id, variant: undefined })]);
        expect(plan.join(['U'])).toBe('U 2400w');
      }
      // A still of the type, or one not looked at yet (null), has its variants.
      for (const animatedOrNot of [false, null, undefined]) {
        const stillRow = { ...photo, contentType, animated: animatedOrNot };
        expect(c.forImage(c.preset('thumb'), stillRow)!.key).toBe('320x320-cover-webp-75');
      }
    }
  });

  it('plans a preset anew when the backfill records a row as animated', () => {
    const c = catalog();
    const row = { ...photo, contentType: 'image/webp', animated: null };
    expect(c.srcsetPlan(row, 'thumb', 300).requests).toHaveLength(2);
    const recorded = c.srcsetPlan({ ...row, animated: true }, 'thumb', 300);
    expect(recorded.requests).toEqual([expect.objectContaining({ id: 'a1', variant: undefined })]);
    expect(c.urlRequest({ ...row, animated: true }, 300, 'thumb', undefined).id).toBe('a1');
  });

  it('checks arguments, naming the one at fault', () => {
    const presetsOnly = catalog();
    expect(argumentOf(() => presetsOnly.specFor('nope', undefined))).toBe('preset');
    expect(argumentOf(() => presetsOnly.specFor(undefined, { width: 10 }))).toBe('transform');
    expect(argumentOf(() => presetsOnly.specFor('thumb', { width: 10 }))).toBe('preset');
    const any = catalog({ IMAGE_TRANSFORMS: 'any', IMAGE_MAX_DIMENSION: '2000' });
    expect(argumentOf(() => any.specFor(undefined, { width: 0 }))).toBe('transform.width');
    expect(argumentOf(() => any.specFor(undefined, { height: 2001 }))).toBe('transform.height');
    expect(argumentOf(() => any.specFor(undefined, { width: 10, quality: 0 }))).toBe('transform.quality');
    expect(argumentOf(() => any.specFor(undefined, { width: 10, quality: 101 }))).toBe('transform.quality');
    expect(argumentOf(() => any.specFor(undefined, { width: 10, fit: 'cover' }))).toBe('transform.fit');
    expect(argumentOf(() => any.specFor(undefined, {}))).toBe('transform.width');
    expect(any.specFor(undefined, { width: 500, format: 'avif', quality: 50 })).toEqual({
      width: 500,
      height: undefined,
      fit: 'inside',
      format: 'avif',
      quality: 50,
    });
  });
});
