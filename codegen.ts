import type { CodegenConfig } from '@graphql-codegen/cli';

// Typed documents for the web app, generated from the checked-in schema.graphql.
const config: CodegenConfig = {
  schema: 'schema.graphql',
  documents: ['web/src/**/*.{ts,vue}', '!web/src/gql/**'],
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
