import type { CodegenConfig } from '@graphql-codegen/cli';

// Typed documents for the web app and for @signet/vue, generated from the checked-in
// schema.graphql (SIGNET_SCHEMA points at another SDL file, e.g. while the server is still growing).
const schema = process.env.SIGNET_SCHEMA ?? 'schema.graphql';
const output = {
  preset: 'client',
  config: { useTypeImports: true, scalars: { DateTime: 'string', File: 'File' } },
  presetConfig: { fragmentMasking: false },
} as const;

const config: CodegenConfig = {
  schema,
  ignoreNoDocuments: true,
  generates: {
    // Operations live in .graphql files; code imports their typed nodes from gql/graphql.ts (no
    // runtime document map, so unused operations and their source text stay out of the bundle).
    'web/src/gql/': {
      ...output,
      documents: ['web/src/**/*.graphql', 'web/src/**/*.{ts,vue}', '!web/src/gql/**'],
    },
    // The package's live-URL operations and the SignetImage fragment a host app spreads.
    'packages/vue/src/gql/': {
      ...output,
      documents: ['packages/vue/src/**/*.graphql', '!packages/vue/src/gql/**'],
    },
  },
};

export default config;
