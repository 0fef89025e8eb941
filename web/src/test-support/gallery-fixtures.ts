import type { SmartImageDeps } from '@signet/vue';
import type { GalleryImageFragment } from '../gql/graphql';

/** A gallery image as the gateway answers it: image `n` of the demo viewer. For unit tests only. */
export const galleryImage = (n: number): GalleryImageFragment & { __typename: 'Image' } => ({
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
  thumb: { url: `http://bucket.test/img-${n}.webp`, expiresAt: '2030-01-01T13:00:00.000Z' },
  thumbSrcset: `http://bucket.test/img-${n}.webp 320w`,
  thumbProxyUrl: `http://gateway.test/proxy/img-${n}?p=thumb`,
});

/** SmartImage with nothing on screen and nothing to ask (provided as SMART_IMAGE_DEPS). */
export const quietImages: SmartImageDeps = {
  observe: () => () => {},
  urls: { track: () => () => {}, refresh: async () => null, current: async () => null },
  variantUrls: () => quietImages.urls,
  now: () => Date.now(),
  backoffMs: () => 0,
};
