import { defineConfig } from 'vitest/config';

// End-to-end tests: the built gateway as a child process, driven through Debian's Chromium.
// `npm run test:e2e` builds first. One file at a time: each owns a gateway, a browser and ports.
export default defineConfig({
  test: {
    name: 'e2e',
    root: new URL('.', import.meta.url).pathname,
    include: ['**/*.e2e.test.ts'],
    environment: 'node',
    testTimeout: 180_000,
    hookTimeout: 120_000,
    fileParallelism: false,
  },
});
