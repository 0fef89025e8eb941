import type { SmartImageDeps } from '@signet/vue';
import type { GalleryImageFragment } from '../gql/graphql';

/**
 * A gallery image as the gateway answers it: image `n` of the demo viewer, with the `thumb`
 * preset's URLs, or with `thumb` false (a gateway without that preset) the original's. For unit
 * tests only.
 */
export const galleryImage = (n: number, thumb = true): GalleryImageFragment & { __typename: 'Image' } => ({
  __typename: 'Image',
  id: `img-${n}`,
  key: `u/demo/img-${n}.png`,
  contentType: 'image/png',
  byteSize: 3,
  width: 640,
  height: 480,
  createdAt: '2030-01-01T12:00:00.000Z',
  placeholder: null,
  visibility: 'PRIVATE',
  proxyUrl: `http://gateway.test/proxy/img-${n}`,
  ...(thumb
    ? {
        thumb: { url: `http://bucket.test/img-${n}.webp`, expiresAt: '2030-01-01T13:00:00.000Z' },
        thumbSrcset: `http://bucket.test/img-${n}.webp 320w`,
        thumbProxyUrl: `http://gateway.test/proxy/img-${n}?p=thumb`,
      }
    : {
        original: { url: `http://bucket.test/img-${n}.png`, expiresAt: '2030-01-01T13:00:00.000Z' },
        originalProxyUrl: `http://gateway.test/proxy/img-${n}?m=stream`,
      }),
});

/** The gateway's answer to ImagePresets: these names (the default IMAGE_PRESETS' by default). */
export const presetsAnswer = (names: readonly string[] = ['thumb', 'medium']) => ({
  data: { imagePresets: names.map((name) => ({ __typename: 'ImagePreset', name })) },
});

/** SmartImage with nothing on screen and nothing to ask (provided as SMART_IMAGE_DEPS). */
export const quietImages: SmartImageDeps = {
  observe: () => () => {},
  urls: { track: () => () => {}, refresh: async () => null, current: async () => null },
  variantUrls: () => quietImages.urls,
  now: () => Date.now(),
  backoffMs: () => 0,
};
