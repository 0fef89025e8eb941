import { configDefaults, defineConfig } from 'vitest/config';

// Two projects: fast unit tests beside the code, and integration tests that talk to the real
// Redis, PostgreSQL, COS fixture server and child processes. Integration files run
// TEST_INTEGRATION_WORKERS at a time (2 by default): each owns server-side state such as Redis
// INFO counters and FLUSHALL, so each worker has a Redis of its own (server/test/worker-redis*.ts),
// every file makes its own databases, and servers listen on ports the OS picks.
const integrationWorkers = Math.max(1, Number(process.env.TEST_INTEGRATION_WORKERS ?? 2) || 1);

export default defineConfig({
  // graphql ships both .mjs and .js; vitest would load one for our code and the other for
  // CJS dependencies (Pothos), and graphql-js refuses two realms. Pin one entry.
  resolve: { alias: { graphql: 'graphql/index.js' } },
  test: {
    projects: [
      {
        extends: true,
        test: {
          name: 'unit',
          include: ['server/src/**/*.test.ts'],
          environment: 'node',
          // A hang guard, not a speed check: the property tests run thousands of cases on the
          // CPU the integration files share, and one took over 5 s (vitest's default) under load.
          testTimeout: 30_000,
        },
      },
      {
        extends: true,
        test: {
          name: 'integration',
          include: ['server/test/**/*.test.ts'],
          // Faults under load run on their own: `npm run test:faults` (vitest.faults.config.ts).
          exclude: [...configDefaults.exclude, 'server/test/faults/**'],
          environment: 'node',
          testTimeout: 60_000,
          hookTimeout: 60_000,
          maxWorkers: integrationWorkers,
          // After the unit, vue and web files (their worker count differs from this one's).
          sequence: { groupOrder: 1 },
          globalSetup: ['server/test/global-setup.ts', 'server/test/worker-redis-setup.ts'],
          setupFiles: ['server/test/worker-redis.ts'],
        },
      },
      'packages/vue/vitest.config.ts',
      'web/vitest.config.ts',
    ],
  },
});
