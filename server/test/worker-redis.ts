import { inject } from 'vitest';

// Runs in each integration worker before its test file: the file's Redis is its worker's own
// (worker-redis-setup.ts). Pool ids are 1..maxWorkers and no two running files share one, so
// two files at once never share a Redis. Set in the environment, so the child processes a test
// starts with the parent's environment see the same one as testRedisUrl().
const urls = inject('testRedisUrls');
const poolId = Number(process.env.VITEST_POOL_ID ?? '1');
const url = urls[poolId - 1];
if (url === undefined) throw new Error(`no Redis for integration worker ${poolId}`);
process.env.TEST_REDIS_URL = url;
