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
    "fragment SignetImage on Image {\n  id\n  width\n  height\n  placeholder\n  signedUrl {\n    url\n    expiresAt\n  }\n  proxyUrl(mode: STREAM)\n}": typeof types.SignetImageFragmentDoc,
    "subscription SignedUrlRefreshed($ids: [ID!]!, $preset: String) {\n  signedUrlRefreshed(ids: $ids, preset: $preset) {\n    imageId\n    signedUrl {\n      url\n      expiresAt\n      refreshAt\n      cached\n    }\n    srcset\n  }\n}\n\nquery ImageUrls($ids: [ID!]!) {\n  imagesByIds(ids: $ids) {\n    id\n    signedUrl {\n      url\n      expiresAt\n      refreshAt\n      cached\n    }\n  }\n}\n\nquery ImageVariantUrls($ids: [ID!]!, $preset: String!) {\n  imagesByIds(ids: $ids) {\n    id\n    signedUrl(preset: $preset) {\n      url\n      expiresAt\n      refreshAt\n      cached\n    }\n    srcset(preset: $preset)\n  }\n}\n\nmutation RefreshSignedUrls($ids: [ID!]!) {\n  refreshSignedUrls(ids: $ids) {\n    url\n    expiresAt\n    refreshAt\n    cached\n  }\n}": typeof types.SignedUrlRefreshedDocument,
};
const documents: Documents = {
    "fragment SignetImage on Image {\n  id\n  width\n  height\n  placeholder\n  signedUrl {\n    url\n    expiresAt\n  }\n  proxyUrl(mode: STREAM)\n}": types.SignetImageFragmentDoc,
    "subscription SignedUrlRefreshed($ids: [ID!]!, $preset: String) {\n  signedUrlRefreshed(ids: $ids, preset: $preset) {\n    imageId\n    signedUrl {\n      url\n      expiresAt\n      refreshAt\n      cached\n    }\n    srcset\n  }\n}\n\nquery ImageUrls($ids: [ID!]!) {\n  imagesByIds(ids: $ids) {\n    id\n    signedUrl {\n      url\n      expiresAt\n      refreshAt\n      cached\n    }\n  }\n}\n\nquery ImageVariantUrls($ids: [ID!]!, $preset: String!) {\n  imagesByIds(ids: $ids) {\n    id\n    signedUrl(preset: $preset) {\n      url\n      expiresAt\n      refreshAt\n      cached\n    }\n    srcset(preset: $preset)\n  }\n}\n\nmutation RefreshSignedUrls($ids: [ID!]!) {\n  refreshSignedUrls(ids: $ids) {\n    url\n    expiresAt\n    refreshAt\n    cached\n  }\n}": types.SignedUrlRefreshedDocument,
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
export function graphql(source: "fragment SignetImage on Image {\n  id\n  width\n  height\n  placeholder\n  signedUrl {\n    url\n    expiresAt\n  }\n  proxyUrl(mode: STREAM)\n}"): (typeof documents)["fragment SignetImage on Image {\n  id\n  width\n  height\n  placeholder\n  signedUrl {\n    url\n    expiresAt\n  }\n  proxyUrl(mode: STREAM)\n}"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "subscription SignedUrlRefreshed($ids: [ID!]!, $preset: String) {\n  signedUrlRefreshed(ids: $ids, preset: $preset) {\n    imageId\n    signedUrl {\n      url\n      expiresAt\n      refreshAt\n      cached\n    }\n    srcset\n  }\n}\n\nquery ImageUrls($ids: [ID!]!) {\n  imagesByIds(ids: $ids) {\n    id\n    signedUrl {\n      url\n      expiresAt\n      refreshAt\n      cached\n    }\n  }\n}\n\nquery ImageVariantUrls($ids: [ID!]!, $preset: String!) {\n  imagesByIds(ids: $ids) {\n    id\n    signedUrl(preset: $preset) {\n      url\n      expiresAt\n      refreshAt\n      cached\n    }\n    srcset(preset: $preset)\n  }\n}\n\nmutation RefreshSignedUrls($ids: [ID!]!) {\n  refreshSignedUrls(ids: $ids) {\n    url\n    expiresAt\n    refreshAt\n    cached\n  }\n}"): (typeof documents)["subscription SignedUrlRefreshed($ids: [ID!]!, $preset: String) {\n  signedUrlRefreshed(ids: $ids, preset: $preset) {\n    imageId\n    signedUrl {\n      url\n      expiresAt\n      refreshAt\n      cached\n    }\n    srcset\n  }\n}\n\nquery ImageUrls($ids: [ID!]!) {\n  imagesByIds(ids: $ids) {\n    id\n    signedUrl {\n      url\n      expiresAt\n      refreshAt\n      cached\n    }\n  }\n}\n\nquery ImageVariantUrls($ids: [ID!]!, $preset: String!) {\n  imagesByIds(ids: $ids) {\n    id\n    signedUrl(preset: $preset) {\n      url\n      expiresAt\n      refreshAt\n      cached\n    }\n    srcset(preset: $preset)\n  }\n}\n\nmutation RefreshSignedUrls($ids: [ID!]!) {\n  refreshSignedUrls(ids: $ids) {\n    url\n    expiresAt\n    refreshAt\n    cached\n  }\n}"];

export function graphql(source: string) {
  return (documents as any)[source] ?? {};
}

export type DocumentType<TDocumentNode extends DocumentNode<any, any>> = TDocumentNode extends DocumentNode<  infer TType,  any>  ? TType  : never;