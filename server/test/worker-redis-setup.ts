import type { TestProject } from 'vitest/node';
import { testRedisUrl } from './support/env.js';
import { OwnedRedis } from './support/redis-server.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** The Redis of each integration worker, by VITEST_POOL_ID - 1 (server/test/worker-redis.ts). */
    testRedisUrls: string[];
  }
}

/**
 * The integration project runs several files at once (vitest.config.ts). Each file owns its
 * Redis while it runs: tests read INFO counters, reset them and FLUSHALL. So each worker past the
 * first gets a private `redis-server` on a free port for the whole run, and the first keeps
 * TEST_REDIS_URL (the Redis the README names). PostgreSQL needs nothing of the kind: every file
 * makes databases of its own (support/database.ts).
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const workers = project.config.maxWorkers;
  const owned: OwnedRedis[] = [];
  try {
    for (let i = 1; i < workers; i++) owned.push(await OwnedRedis.start());
  } catch (err) {
    await Promise.all(owned.map((r) => r.kill()));
    throw new Error(
      `The integration tests run ${workers} files at once and start a redis-server for each worker past the first: ${(err as Error).message}. Install redis-server, or set TEST_INTEGRATION_WORKERS=1.`,
    );
  }
  project.provide('testRedisUrls', [testRedisUrl(), ...owned.map((r) => r.url)]);
  return async () => {
    await Promise.all(owned.map((r) => r.kill()));
  };
}
