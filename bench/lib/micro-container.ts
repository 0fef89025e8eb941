import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { loadConfig } from '../../server/src/config.js';
import { type Container, createContainer } from '../../server/src/container.js';
import { bullPrefix } from '../../server/src/jobs/bullmq-engine.js';
import { createLogger } from '../../server/src/logger.js';
import { cosEnv } from '../../server/test/support/env.js';
import { COS } from './config.js';
import { forEachKeyBatch } from './redis.js';

const REDIS_URL = 'redis://127.0.0.1:6379';

/**
 * The gateway's container for an in-process micro-measure (bench/tools/*-micro.ts): the cos driver
 * (nothing is fetched), the local Redis under a prefix of its own, PostgreSQL at
 * BENCH_DATABASE_URL (default the test database). `close` removes every key it wrote.
 */
export async function openMicroContainer(): Promise<{ c: Container; close: () => Promise<void> }> {
  const prefix = `micro${Date.now()}:`;
  const config = loadConfig({
    NODE_ENV: 'production',
    DATABASE_URL: process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test',
    REDIS_URL,
    REDIS_PREFIX: prefix,
    ...cosEnv({ host: '127.0.0.1:9' }, COS),
    AUTH_JWT_SECRET: 'x'.repeat(40),
    PROXY_TOKEN_SECRET: 'y'.repeat(40),
    SIGNET_ROLE: 'api',
    LOG_LEVEL: 'warn',
    SEED_DEMO: 'false',
  });
  const c = await createContainer(config, { logger: createLogger('warn') });
  const redis = c.redis!;
  if (redis.status !== 'ready') await new Promise<void>((r) => redis.once('ready', () => r()));
  return {
    c,
    async close() {
      await c.close();
      const r = new Redis(REDIS_URL);
      // The URL store's keys and the job queues' (BullMQ's own prefix).
      for (const pattern of [`${prefix}*`, `${bullPrefix(prefix)}*`])
        await forEachKeyBatch(r, pattern, (keys) => r.unlink(...keys));
      await r.quit();
    },
  };
}

type Page = { id: string; key: string; minTtl: number }[];

/** A page of `size` never-seen images as the URL service is asked for them. */
export function newPage(size = 100): Page {
  return Array.from({ length: size }, () => {
    const id = randomUUID();
    return { id, key: `u/bench/${id}.jpg`, minTtl: 60 };
  });
}

/**
 * The pages a micro-measure asks for, `count` requests of them: `warm` (asked first, to cache it)
 * and `at(i)`, the i-th request's page: a page never seen before each time when cold, `warm`
 * again and again when warm.
 */
export function pageSequence(mode: 'cold' | 'warm', count: number): { warm: Page; at: (i: number) => Page } {
  const pages = Array.from({ length: count + 1 }, () => newPage());
  const warm = pages[0]!;
  return { warm, at: (i) => (mode === 'cold' ? pages[i + 1]! : warm) };
}
