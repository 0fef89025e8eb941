import type { CodegenConfig } from '@graphql-codegen/cli';

// Typed documents for the web app, generated from the checked-in schema.graphql
// (SIGNET_SCHEMA points at another SDL file, e.g. while the server is still growing).
const config: CodegenConfig = {
  schema: process.env.SIGNET_SCHEMA ?? 'schema.graphql',
  // Operations live in .graphql files; the app imports their typed nodes from gql/graphql.ts
  // (no runtime document map, so unused operations and their source text stay out of the bundle).
  documents: ['web/src/**/*.graphql', 'web/src/**/*.{ts,vue}', '!web/src/gql/**'],
  ignoreNoDocuments: true,
  generates: {
    'web/src/gql/': {
      preset: 'client',
      config: { useTypeImports: true, scalars: { DateTime: 'string', File: 'File' } },
      presetConfig: { fragmentMasking: false },
    },
  },
};

export default config;
