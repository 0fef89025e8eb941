import source from './graphql/signet-image.graphql?raw';

/**
 * The SignetImage fragment's source text, to interpolate into a graphql-tag query that spreads
 * `...SignetImage` (graphql-tag reads an interpolated document's source text, which the typed
 * `SignetImageFragmentDoc` does not carry; that one is for codegen-typed documents).
 */
export const signetImageFragment: string = source;
