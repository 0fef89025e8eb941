import net from 'node:net';
import pg from 'pg';
import { testDatabaseUrl, testRedisUrl } from './support/env.js';

async function redisAnswers(url: string): Promise<string | null> {
  const u = new URL(url);
  return new Promise((resolve) => {
    const sock = net.connect({ host: u.hostname, port: Number(u.port || 6379) });
    const done = (err: string | null) => {
      sock.destroy();
      resolve(err);
    };
    sock.setTimeout(2000, () => done('timed out'));
    sock.on('error', (e) => done(e.message));
    sock.on('connect', () => sock.write('PING\r\n'));
    sock.on('data', (d) => done(d.toString().startsWith('+PONG') ? null : `answered ${d.toString().trim()}`));
  });
}

/** Integration tests need the real services: say clearly which one is missing, never skip. */
export default async function setup(): Promise<void> {
  const problems: string[] = [];
  const redisErr = await redisAnswers(testRedisUrl());
  if (redisErr) {
    problems.push(
      `Redis is not answering at ${testRedisUrl()} (${redisErr}). Start it (redis-server --daemonize yes --port 6379 --save "") or set TEST_REDIS_URL.`,
    );
  }
  const client = new pg.Client({ connectionString: testDatabaseUrl(), connectionTimeoutMillis: 3000 });
  try {
    await client.connect();
    await client.query('select 1');
  } catch (err) {
    problems.push(
      `PostgreSQL is not answering at ${testDatabaseUrl()} (${(err as Error).message}). Start it or set TEST_DATABASE_URL.`,
    );
  } finally {
    await client.end().catch(() => {});
  }
  if (problems.length > 0)
    throw new Error(`Integration tests need real services:\n- ${problems.join('\n- ')}`);
}
