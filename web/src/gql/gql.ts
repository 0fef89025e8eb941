/* eslint-disable */
import * as types from './graphql';
import type { TypedDocumentNode as DocumentNode } from '@graphql-typed-document-node/core';

/**
 * Map of all GraphQL operations in the project.
 *
 * This map has several performance disadvantages:
 * 1. It is not tree-shakeable, so it will include all operations in the project.
 * 2. It is not minifiable, so the string of a GraphQL query will be multiple times inside the bundle.
 * 3. It does not support dead code elimination, so it will add unused operations.
 *
 * Therefore it is highly recommended to use the babel or swc plugin for production.
 * Learn more about it here: https://the-guild.dev/graphql/codegen/plugins/presets/preset-client#reducing-bundle-size
 */
type Documents = {
    "fragment GalleryImage on Image {\n  id\n  key\n  contentType\n  byteSize\n  width\n  height\n  createdAt\n  placeholder\n  visibility\n  proxyUrl\n  thumb: signedUrl(preset: \"thumb\") {\n    url\n    expiresAt\n  }\n  thumbSrcset: srcset(preset: \"thumb\")\n  thumbProxyUrl: proxyUrl(mode: STREAM, preset: \"thumb\")\n}\n\nquery GalleryPage($first: Int!, $after: String) {\n  images(first: $first, after: $after) {\n    totalCount\n    pageInfo {\n      hasNextPage\n      endCursor\n    }\n    edges {\n      cursor\n      node {\n        ...GalleryImage\n      }\n    }\n  }\n}\n\nquery ImageDetail($id: ID!) {\n  imagesByIds(ids: [$id]) {\n    id\n    medium: signedUrl(preset: \"medium\") {\n      url\n      expiresAt\n    }\n    mediumSrcset: srcset(preset: \"medium\")\n    mediumProxyUrl: proxyUrl(mode: STREAM, preset: \"medium\")\n  }\n}\n\nmutation UploadImage($file: File!) {\n  uploadImage(file: $file) {\n    ...GalleryImage\n  }\n}\n\nmutation DeleteImage($id: ID!) {\n  deleteImage(id: $id)\n}\n\nmutation SetImageVisibility($id: ID!, $visibility: ImageVisibility!) {\n  setImageVisibility(id: $id, visibility: $visibility) {\n    id\n    visibility\n  }\n}\n\nquery ImageById($id: ID!) {\n  image(id: $id) {\n    ...GalleryImage\n  }\n}": typeof types.GalleryImageFragmentDoc,
    "query Viewer {\n  viewer {\n    id\n    isAdmin\n  }\n}\n\nquery UrlStats($days: Int!) {\n  urlStats(days: $days) {\n    requests\n    cacheHits\n    cacheMisses\n    hitRate\n    refreshes\n    errors\n    avgResolveMs\n    uniqueImages\n    refreshBacklog\n    refreshLagSeconds\n    workers {\n      id\n      role\n      alive\n      lastHeartbeatAt\n      refreshed\n    }\n    days {\n      date\n      requests\n      cacheHits\n      cacheMisses\n      refreshes\n      errors\n    }\n  }\n}\n\nquery UploadLimits {\n  viewer {\n    id\n    uploadLimits {\n      maxFileBytes\n      contentTypes\n      formatNames\n      maxConcurrent\n      quota {\n        maxBytes\n        maxFiles\n        usedBytes\n        usedFiles\n      }\n    }\n  }\n}": typeof types.ViewerDocument,
    "\n  query Viewer {\n    viewer {\n      id\n      isAdmin\n    }\n  }\n": typeof types.ViewerDocument,
};
const documents: Documents = {
    "fragment GalleryImage on Image {\n  id\n  key\n  contentType\n  byteSize\n  width\n  height\n  createdAt\n  placeholder\n  visibility\n  proxyUrl\n  thumb: signedUrl(preset: \"thumb\") {\n    url\n    expiresAt\n  }\n  thumbSrcset: srcset(preset: \"thumb\")\n  thumbProxyUrl: proxyUrl(mode: STREAM, preset: \"thumb\")\n}\n\nquery GalleryPage($first: Int!, $after: String) {\n  images(first: $first, after: $after) {\n    totalCount\n    pageInfo {\n      hasNextPage\n      endCursor\n    }\n    edges {\n      cursor\n      node {\n        ...GalleryImage\n      }\n    }\n  }\n}\n\nquery ImageDetail($id: ID!) {\n  imagesByIds(ids: [$id]) {\n    id\n    medium: signedUrl(preset: \"medium\") {\n      url\n      expiresAt\n    }\n    mediumSrcset: srcset(preset: \"medium\")\n    mediumProxyUrl: proxyUrl(mode: STREAM, preset: \"medium\")\n  }\n}\n\nmutation UploadImage($file: File!) {\n  uploadImage(file: $file) {\n    ...GalleryImage\n  }\n}\n\nmutation DeleteImage($id: ID!) {\n  deleteImage(id: $id)\n}\n\nmutation SetImageVisibility($id: ID!, $visibility: ImageVisibility!) {\n  setImageVisibility(id: $id, visibility: $visibility) {\n    id\n    visibility\n  }\n}\n\nquery ImageById($id: ID!) {\n  image(id: $id) {\n    ...GalleryImage\n  }\n}": types.GalleryImageFragmentDoc,
    "query Viewer {\n  viewer {\n    id\n    isAdmin\n  }\n}\n\nquery UrlStats($days: Int!) {\n  urlStats(days: $days) {\n    requests\n    cacheHits\n    cacheMisses\n    hitRate\n    refreshes\n    errors\n    avgResolveMs\n    uniqueImages\n    refreshBacklog\n    refreshLagSeconds\n    workers {\n      id\n      role\n      alive\n      lastHeartbeatAt\n      refreshed\n    }\n    days {\n      date\n      requests\n      cacheHits\n      cacheMisses\n      refreshes\n      errors\n    }\n  }\n}\n\nquery UploadLimits {\n  viewer {\n    id\n    uploadLimits {\n      maxFileBytes\n      contentTypes\n      formatNames\n      maxConcurrent\n      quota {\n        maxBytes\n        maxFiles\n        usedBytes\n        usedFiles\n      }\n    }\n  }\n}": types.ViewerDocument,
    "\n  query Viewer {\n    viewer {\n      id\n      isAdmin\n    }\n  }\n": types.ViewerDocument,
};

/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 *
 *
 * @example
 * ```ts
 * const query = graphql(`query GetUser($id: ID!) { user(id: $id) { name } }`);
 * ```
 *
 * The query argument is unknown!
 * Please regenerate the types.
 */
export function graphql(source: string): unknown;

/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "fragment GalleryImage on Image {\n  id\n  key\n  contentType\n  byteSize\n  width\n  height\n  createdAt\n  placeholder\n  visibility\n  proxyUrl\n  thumb: signedUrl(preset: \"thumb\") {\n    url\n    expiresAt\n  }\n  thumbSrcset: srcset(preset: \"thumb\")\n  thumbProxyUrl: proxyUrl(mode: STREAM, preset: \"thumb\")\n}\n\nquery GalleryPage($first: Int!, $after: String) {\n  images(first: $first, after: $after) {\n    totalCount\n    pageInfo {\n      hasNextPage\n      endCursor\n    }\n    edges {\n      cursor\n      node {\n        ...GalleryImage\n      }\n    }\n  }\n}\n\nquery ImageDetail($id: ID!) {\n  imagesByIds(ids: [$id]) {\n    id\n    medium: signedUrl(preset: \"medium\") {\n      url\n      expiresAt\n    }\n    mediumSrcset: srcset(preset: \"medium\")\n    mediumProxyUrl: proxyUrl(mode: STREAM, preset: \"medium\")\n  }\n}\n\nmutation UploadImage($file: File!) {\n  uploadImage(file: $file) {\n    ...GalleryImage\n  }\n}\n\nmutation DeleteImage($id: ID!) {\n  deleteImage(id: $id)\n}\n\nmutation SetImageVisibility($id: ID!, $visibility: ImageVisibility!) {\n  setImageVisibility(id: $id, visibility: $visibility) {\n    id\n    visibility\n  }\n}\n\nquery ImageById($id: ID!) {\n  image(id: $id) {\n    ...GalleryImage\n  }\n}"): (typeof documents)["fragment GalleryImage on Image {\n  id\n  key\n  contentType\n  byteSize\n  width\n  height\n  createdAt\n  placeholder\n  visibility\n  proxyUrl\n  thumb: signedUrl(preset: \"thumb\") {\n    url\n    expiresAt\n  }\n  thumbSrcset: srcset(preset: \"thumb\")\n  thumbProxyUrl: proxyUrl(mode: STREAM, preset: \"thumb\")\n}\n\nquery GalleryPage($first: Int!, $after: String) {\n  images(first: $first, after: $after) {\n    totalCount\n    pageInfo {\n      hasNextPage\n      endCursor\n    }\n    edges {\n      cursor\n      node {\n        ...GalleryImage\n      }\n    }\n  }\n}\n\nquery ImageDetail($id: ID!) {\n  imagesByIds(ids: [$id]) {\n    id\n    medium: signedUrl(preset: \"medium\") {\n      url\n      expiresAt\n    }\n    mediumSrcset: srcset(preset: \"medium\")\n    mediumProxyUrl: proxyUrl(mode: STREAM, preset: \"medium\")\n  }\n}\n\nmutation UploadImage($file: File!) {\n  uploadImage(file: $file) {\n    ...GalleryImage\n  }\n}\n\nmutation DeleteImage($id: ID!) {\n  deleteImage(id: $id)\n}\n\nmutation SetImageVisibility($id: ID!, $visibility: ImageVisibility!) {\n  setImageVisibility(id: $id, visibility: $visibility) {\n    id\n    visibility\n  }\n}\n\nquery ImageById($id: ID!) {\n  image(id: $id) {\n    ...GalleryImage\n  }\n}"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "query Viewer {\n  viewer {\n    id\n    isAdmin\n  }\n}\n\nquery UrlStats($days: Int!) {\n  urlStats(days: $days) {\n    requests\n    cacheHits\n    cacheMisses\n    hitRate\n    refreshes\n    errors\n    avgResolveMs\n    uniqueImages\n    refreshBacklog\n    refreshLagSeconds\n    workers {\n      id\n      role\n      alive\n      lastHeartbeatAt\n      refreshed\n    }\n    days {\n      date\n      requests\n      cacheHits\n      cacheMisses\n      refreshes\n      errors\n    }\n  }\n}\n\nquery UploadLimits {\n  viewer {\n    id\n    uploadLimits {\n      maxFileBytes\n      contentTypes\n      formatNames\n      maxConcurrent\n      quota {\n        maxBytes\n        maxFiles\n        usedBytes\n        usedFiles\n      }\n    }\n  }\n}"): (typeof documents)["query Viewer {\n  viewer {\n    id\n    isAdmin\n  }\n}\n\nquery UrlStats($days: Int!) {\n  urlStats(days: $days) {\n    requests\n    cacheHits\n    cacheMisses\n    hitRate\n    refreshes\n    errors\n    avgResolveMs\n    uniqueImages\n    refreshBacklog\n    refreshLagSeconds\n    workers {\n      id\n      role\n      alive\n      lastHeartbeatAt\n      refreshed\n    }\n    days {\n      date\n      requests\n      cacheHits\n      cacheMisses\n      refreshes\n      errors\n    }\n  }\n}\n\nquery UploadLimits {\n  viewer {\n    id\n    uploadLimits {\n      maxFileBytes\n      contentTypes\n      formatNames\n      maxConcurrent\n      quota {\n        maxBytes\n        maxFiles\n        usedBytes\n        usedFiles\n      }\n    }\n  }\n}"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query Viewer {\n    viewer {\n      id\n      isAdmin\n    }\n  }\n"): (typeof documents)["\n  query Viewer {\n    viewer {\n      id\n      isAdmin\n    }\n  }\n"];

export function graphql(source: string) {
  return (documents as any)[source] ?? {};
}

export type DocumentType<TDocumentNode extends DocumentNode<any, any>> = TDocumentNode extends DocumentNode<  infer TType,  any>  ? TType  : never;