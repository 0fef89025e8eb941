// Micro-measure: what the URL store's scripts cost Redis for pages of 100 never-seen images
// (the write-back of a cold page, and the access flush a second later), from `INFO
// commandstats` of a private redis-server. `npx tsx bench/tools/store-scripts.ts [pages]`.
import { Redis } from 'ioredis';
import { RedisUrlStore } from '../../server/src/urls/redis-store.js';
import { BenchRedis } from '../lib/redis.js';

const pages = Number(process.argv[2] ?? 300);
const server = await BenchRedis.start();
const redis = new Redis(server.url);
try {
  const store = new RedisUrlStore(redis, 'bench:');
  const now = Date.now();
  let n = 0;
  const newPage = () =>
    Array.from(
      { length: 100 },
      () => `0190${(n++).toString(16).padStart(8, '0')}-aaaa-7bbb-8ccc-dddddddddddd`,
    );
  const write = (ids: string[]) =>
    store.write(
      ids.map((id) => ({
        id,
        sig: { start: 1_700_000_000, end: 1_700_003_600, sig: 'a'.repeat(40) },
        ttlMs: 3_600_000,
        refreshAt: now + 3_000_000,
      })),
      'miss',
    );
  const flush = (ids: string[]) =>
    store.recordAccess(new Map(ids.map((id) => [id, { count: 1, lastAt: now }])));
  for (let i = 0; i < 50; i++) await write(newPage()); // scripts loaded, sets not empty
  for (const [what, run] of [
    ['write-back', write],
    ['access flush', flush],
  ] as const) {
    await redis.config('RESETSTAT');
    for (let i = 0; i < pages; i++) await run(newPage());
    const stats = (await redis.info('commandstats'))
      .split('\n')
      .map((l) => /^cmdstat_([\w|]+):calls=\d+,usec=(\d+)/.exec(l))
      .filter((m) => m !== null && m[1] !== 'config|resetstat')
      .map((m) => `${m![1]} ${(Number(m![2]) / pages).toFixed(0)} µs`);
    // evalsha is the scripts' whole time, the commands they call included.
    process.stdout.write(`${what}, per page of 100 new images: ${stats.join(', ')}\n`);
  }
} finally {
  redis.disconnect();
  await server.stop();
}
