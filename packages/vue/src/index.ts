// @signet/vue: images behind Signet's expiring signed URLs in a Vue 3 + Apollo Client app.
// Every export is side-effect free; SmartImage's stylesheet is `@signet/vue/style.css`.

export { signetImageFragment } from './fragment';
export {
  type ImageUrlsQuery,
  type RefreshSignedUrlsMutation,
  type SignedUrlRefreshedSubscription,
  type SignetImageFragment,
  SignetImageFragmentDoc,
} from './gql/graphql';
export { default as SmartImage } from './SmartImage.vue';
export { mergeSignedUrl, signetTypePolicies } from './signed-url';
export { createSignet, provideSignet, type Signet, type SignetOptions } from './signet';
export {
  defaultBackoffMs,
  type ImageUrls,
  MAX_REFRESH_ATTEMPTS,
  SMART_IMAGE_DEPS,
  type SmartImageDeps,
  type SmartImageSource,
} from './smart-image-deps';
export { SseLink, type SseLinkOptions } from './sse-link';
export { placeholderDataUrl } from './thumbhash';
export { type Client, rememberUrl, urlTransport } from './transport';
export {
  createUrlRefresh,
  defaultReconnectDelayMs,
  type FreshUrl,
  type LinkState,
  type StreamHandlers,
  UNREACHABLE,
  type Unreachable,
  URL_REFRESH,
  type UrlEvent,
  type UrlRefresh,
  type UrlRefreshOptions,
  type UrlRefreshTransport,
  useUrlRefresh,
} from './useUrlRefresh';
export { createVisibility, type Observe } from './visibility';
