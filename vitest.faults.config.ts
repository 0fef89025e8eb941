import { defineConfig } from 'vitest/config';

// `npm run test:faults`: faults injected under a steady load (Redis killed or slowed, PostgreSQL
// stopped, the origin failing or hanging, a worker SIGKILLed). Minutes, not seconds, so it is
// kept out of `npm test`; `.ci/run` runs both. One file at a time: each owns servers and ports.
export default defineConfig({
  // The same pin as vitest.config.ts: one graphql realm for our code and Pothos.
  resolve: { alias: { graphql: 'graphql/index.js' } },
  test: {
    name: 'faults',
    include: ['server/test/faults/**/*.test.ts'],
    environment: 'node',
    testTimeout: 120_000,
    hookTimeout: 90_000,
    fileParallelism: false,
    globalSetup: ['server/test/global-setup.ts'],
  },
});
