import type { ImagePreset } from '../config-images.js';
import { IMAGE_FITS, IMAGE_FORMATS, type ImageFit, type ImageFormat } from '../storage/variant.js';
import { builder } from './builder.js';

const upper = <T extends string>(values: readonly T[]) =>
  Object.fromEntries(values.map((v) => [v.toUpperCase(), { value: v }])) as Record<
    Uppercase<T>,
    { value: T }
  >;

export const ImageFitEnum = builder.enumType('ImageFit', {
  description:
    'How a variant fills its box: INSIDE fits within it, COVER fills it exactly (centre crop), CONTAIN fits and pads to it. Never enlarges the original.',
  values: upper<ImageFit>(IMAGE_FITS),
});

export const ImageFormatEnum = builder.enumType('ImageFormat', {
  description: "A variant's encoding (unset: the original's format).",
  values: upper<ImageFormat>(IMAGE_FORMATS),
});

export const ImageTransformInput = builder.inputType('ImageTransform', {
  description:
    'A variant of your own (only when the gateway sets IMAGE_TRANSFORMS=any): a box of up to IMAGE_MAX_DIMENSION, a fit, a format, a quality 1..100.',
  fields: (t) => ({
    width: t.int({
      required: false,
      description: 'Pixels, 1..IMAGE_MAX_DIMENSION. A transform needs a width, a height or both.',
    }),
    height: t.int({ required: false, description: 'Pixels, 1..IMAGE_MAX_DIMENSION.' }),
    fit: t.field({
      type: ImageFitEnum,
      required: false,
      defaultValue: 'inside',
      description: 'INSIDE works with one side or both; every other fit needs both width and height.',
    }),
    format: t.field({ type: ImageFormatEnum, required: false, description: "Unset: the original's format." }),
    quality: t.int({ required: false, description: '1..100; not applied to PNG.' }),
  }),
});

const ImagePresetRef = builder.objectRef<ImagePreset>('ImagePreset').implement({
  description: 'A named variant configured on the gateway (IMAGE_PRESETS).',
  fields: (t) => ({
    name: t.exposeString('name'),
    width: t.exposeInt('width', { nullable: true }),
    height: t.exposeInt('height', { nullable: true }),
    fit: t.field({ type: ImageFitEnum, resolve: (p) => p.fit }),
    format: t.field({ type: ImageFormatEnum, nullable: true, resolve: (p) => p.format ?? null }),
    quality: t.exposeInt('quality', { nullable: true }),
  }),
});

builder.queryFields((t) => ({
  imagePresets: t.field({
    type: [ImagePresetRef],
    description: 'The configured named variants (empty when IMAGE_TRANSFORMS=off).',
    resolve: (_root, _args, ctx) => [...ctx.variants.presets()],
  }),
}));
