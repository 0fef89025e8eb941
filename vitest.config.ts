import { defineConfig } from 'vitest/config';

// Two projects: fast unit tests beside the code, and integration tests that talk to the real
// Redis, PostgreSQL, COS fixture server and child processes (run one file at a time: they own
// ports and server-side state such as Redis INFO counters).
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['server/src/**/*.test.ts'],
          environment: 'node',
        },
      },
      {
        test: {
          name: 'integration',
          include: ['server/test/**/*.test.ts'],
          environment: 'node',
          testTimeout: 60_000,
          hookTimeout: 60_000,
          fileParallelism: false,
          globalSetup: ['server/test/global-setup.ts'],
        },
      },
      'web/vitest.config.ts',
    ],
  },
});
