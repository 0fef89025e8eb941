import { mkdir, mkdtemp, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkDependencies } from '../../src/cli/check.js';
import { loadConfig } from '../../src/config.js';
import { OwnedPostgres } from '../faults/helpers/owned-postgres.js';
import { startCosFixture } from '../fixtures/cos-fixture.js';
import { runCli } from '../support/cli.js';
import { createTestDatabase } from '../support/database.js';
import { COS_CREDENTIALS, cosEnv, testRedisUrl } from '../support/env.js';
import { freePort } from '../support/ports.js';
import { RedisSentinelGroup } from '../support/redis-sentinel.js';

/** The table's rows by name: [status, latency, detail]. */
function table(stdout: string): Map<string, { status: string; line: string }> {
  const rows = new Map<string, { status: string; line: string }>();
  const lines = stdout.trim().split('\n');
  expect(lines[0]).toMatch(/^NAME\s+STATUS\s+LATENCY\s+DETAIL$/);
  for (const line of lines.slice(1)) {
    const [name, status] = line.split(/\s+/);
    rows.set(name!, { status: status!, line });
  }
  return rows;
}

describe('signet check', () => {
  let db: { url: string; drop: () => Promise<void> };
  let dataDir: string;
  let base: Record<string, string>;

  beforeAll(async () => {
    db = await createTestDatabase();
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'signet-check-'));
    // As a node's first start leaves it: a check never makes the bucket folder.
    await mkdir(path.join(dataDir, 'bucket'));
    base = { DATA_DIR: dataDir, DATABASE_URL: db.url, REDIS_URL: testRedisUrl(), STORAGE_DRIVER: 'local' };
  });
  afterAll(async () => {
    await db?.drop();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it('reports every dependency ok (exit 0)', async () => {
    const run = await runCli(['check'], base);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const rows = table(run.stdout);
    expect([...rows.keys()]).toEqual([
      'config',
      'database',
      'clock',
      'database-read',
      'database-direct',
      'redis',
      'storage',
    ]);
    for (const [name, row] of rows)
      expect(row.status, name).toBe(
        name === 'database-read' || name === 'database-direct' ? 'skipped' : 'ok',
      );
    expect(rows.get('database')!.line).toMatch(/\d+ ms/);
    expect(rows.get('storage')!.line).toContain(`local ${dataDir}/bucket`);
    // This host and the test PostgreSQL share a clock.
    expect(rows.get('clock')!.line).toMatch(
      /this host's clock is (in step with|0\.\d{3} s (ahead of|behind)) PostgreSQL's \(±\d+ ms\)/,
    );
  });

  it("a clock more than a second from PostgreSQL's is down, saying by how much and which way", async () => {
    const config = loadConfig({ ...base });
    const ahead = await checkDependencies(config, 5000, { now: () => Date.now() + 90_000 });
    const row = ahead.find((r) => r.name === 'clock')!;
    expect(row.status).toBe('down');
    expect(row.detail).toMatch(
      /this host's clock is (89\.9|90\.0|90\.1) s ahead of PostgreSQL's .*more than 1 s; keep every host on NTP/,
    );
    const behind = await checkDependencies(config, 5000, { now: () => Date.now() - 2_500 });
    expect(behind.find((r) => r.name === 'clock')).toMatchObject({
      status: 'down',
      detail: expect.stringMatching(/this host's clock is 2\.(49\d|5\d\d) s behind PostgreSQL's/),
    });
    // Within the tolerance: ok, with the figure.
    const near = await checkDependencies(config, 5000, { now: () => Date.now() + 300 });
    expect(near.find((r) => r.name === 'clock')).toMatchObject({
      status: 'ok',
      detail: expect.stringMatching(/0\.(29\d|30\d|31\d) s ahead of PostgreSQL's/),
    });
  });

  it('a database that does not answer skips the clock row (the database row says why)', async () => {
    const dead = await freePort();
    const rows = await checkDependencies(
      loadConfig({ ...base, DATABASE_URL: `postgres://postgres@127.0.0.1:${dead}/test` }),
    );
    expect(rows.find((r) => r.name === 'clock')).toMatchObject({
      status: 'skipped',
      detail: 'the database did not answer',
    });
  });

  it('a local bucket folder that is not there is storage down, and the check does not make it', async () => {
    // A mistyped DATA_DIR, or a volume not mounted: the check used to make an empty bucket and say ok.
    const typo = path.join(dataDir, 'typo');
    const run = await runCli(['check'], { ...base, DATA_DIR: typo });
    expect(run.code).toBe(1);
    const storage = table(run.stdout).get('storage')!;
    expect(storage.status).toBe('down');
    expect(storage.line).toContain(`the local bucket ${typo}/bucket does not exist`);
    await expect(stat(typo)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('reports a down Redis and a down database, each within its bound (exit 1)', async () => {
    // Ports nothing listens on: connections are refused at once.
    const deadRedis = await freePort();
    const deadDb = await freePort();
    const started = Date.now();
    const run = await runCli(['check'], {
      ...base,
      REDIS_URL: `redis://127.0.0.1:${deadRedis}`,
      DATABASE_URL: `postgres://postgres@127.0.0.1:${deadDb}/test`,
    });
    expect(run.code).toBe(1);
    const rows = table(run.stdout);
    expect(rows.get('config')!.status).toBe('ok');
    expect(rows.get('storage')!.status).toBe('ok');
    expect(rows.get('redis')!.status).toBe('down');
    expect(rows.get('redis')!.line).toMatch(/ECONNREFUSED|no answer/);
    expect(rows.get('database')!.status).toBe('down');
    expect(rows.get('database')!.line).toMatch(/ECONNREFUSED|no answer/);
    // Each check waits 5 s at most; the process start (tsx) is most of the rest.
    expect(Date.now() - started).toBeLessThan(45_000);
  });

  it('without REDIS_URL, Redis is skipped (the in-process cache), not down', async () => {
    const { REDIS_URL: _, ...noRedis } = base;
    const run = await runCli(['check'], noRedis);
    expect(run.code).toBe(0);
    expect(table(run.stdout).get('redis')!.status).toBe('skipped');
  });

  it('does not migrate the database (a check changes nothing)', async () => {
    const fresh = await createTestDatabase();
    try {
      const run = await runCli(['check'], { ...base, DATABASE_URL: fresh.url });
      expect(run.code).toBe(0);
      expect(table(run.stdout).get('database')!.status).toBe('ok');
      const c = new pg.Client({ connectionString: fresh.url });
      await c.connect();
      try {
        const { rows } = await c.query(
          `select table_name from information_schema.tables where table_schema = 'public'`,
        );
        expect(rows).toEqual([]);
      } finally {
        await c.end();
      }
    } finally {
      await fresh.drop();
    }
  });

  it('pings DATABASE_READ_URL as its own row, down when the replica is (exit 1)', async () => {
    const dead = await freePort();
    const down = await runCli(['check'], {
      ...base,
      DATABASE_READ_URL: `postgres://postgres@127.0.0.1:${dead}/test`,
    });
    expect(down.code).toBe(1);
    const rows = table(down.stdout);
    expect(rows.get('database')!.status).toBe('ok');
    expect(rows.get('database-read')!.status).toBe('down');
    expect(rows.get('database-read')!.line).toMatch(/ECONNREFUSED|no answer/);
  });

  it('DATABASE_READ_URL on a primary (the primary itself) is down: not a replica (exit 1); on a streaming replica ok', async () => {
    // A DATA_DIR whose local bucket a first start has made: only the database rows decide.
    const started = await mkdtemp(path.join(os.tmpdir(), 'signet-check-'));
    try {
      await mkdir(path.join(started, 'bucket'));
      const env = { ...base, DATA_DIR: started };
      // The URL of the primary itself answers a ping, but the gateway would never read from it.
      const self = await runCli(['check'], { ...env, DATABASE_READ_URL: db.url });
      const rows = table(self.stdout);
      expect(rows.get('database')!.status).toBe('ok');
      expect(rows.get('storage')!.status).toBe('ok');
      expect(rows.get('database-read')!.status).toBe('down');
      expect(rows.get('database-read')!.line).toContain('not a replica: pg_is_in_recovery() is false');
      expect(self.code).toBe(1);

      // A private primary and its streaming replica (pg_basebackup -R): in recovery.
      const primary = await OwnedPostgres.start();
      try {
        const replica = await primary.replica();
        try {
          const up = await runCli(['check'], { ...env, DATABASE_READ_URL: replica.url });
          const row = table(up.stdout).get('database-read')!;
          expect(row.status).toBe('ok');
          expect(row.line).toContain('streaming replica, in recovery');
          expect(up.code).toBe(0);
        } finally {
          await replica.destroy();
        }
      } finally {
        await primary.destroy();
      }
    } finally {
      await rm(started, { recursive: true, force: true });
    }
  }, 120_000);

  it('with REDIS_SENTINELS, reaches the primary through the sentinels (not skipped)', async () => {
    const group = await RedisSentinelGroup.start();
    try {
      const { REDIS_URL: _, ...noUrl } = base;
      const run = await runCli(['check'], { ...noUrl, REDIS_SENTINELS: group.sentinels });
      expect(run.code).toBe(0);
      const redis = table(run.stdout).get('redis')!;
      expect(redis.status).toBe('ok');
      expect(redis.line).toContain('sentinel mymaster');
    } finally {
      await group.stop();
    }
    // Sentinels that do not answer: the gateway could not reach Redis, so the check is down.
    const dead = await freePort();
    const { REDIS_URL: _, ...noUrl } = base;
    const run = await runCli(['check'], { ...noUrl, REDIS_SENTINELS: `127.0.0.1:${dead}` });
    expect(run.code).toBe(1);
    expect(table(run.stdout).get('redis')!.status).toBe('down');
  }, 120_000);

  it("with several regions, every region's bucket is a row of its own, down when it does not answer (exit 1)", async () => {
    const [a, b] = await Promise.all([startCosFixture(COS_CREDENTIALS), startCosFixture(COS_CREDENTIALS)]);
    const nothing = await freePort();
    const env = (bHost: string) => ({
      ...base,
      ...cosEnv(a, { ...COS_CREDENTIALS, bucket: 'photos-a-1250000000', region: 'ap-test' }),
      SIGNET_REGION: 'a',
      STORAGE_REGIONS: `a=photos-a-1250000000@${a.host},b=photos-b-1250000000@${bHost}`,
    });
    try {
      const up = await runCli(['check'], env(b.host));
      expect(up.code, up.stdout).toBe(0);
      const rows = table(up.stdout);
      expect(rows.get('storage')!.status).toBe('ok');
      expect(rows.get('storage-b')!.status).toBe('ok');
      expect(rows.get('storage-b')!.line).toContain(`cos photos-b-1250000000 (${b.host})`);
      expect(rows.has('storage-a')).toBe(false);

      const down = await runCli(['check'], env(`127.0.0.1:${nothing}`));
      expect(down.code).toBe(1);
      expect(table(down.stdout).get('storage-b')!.status).toBe('down');
      expect(table(down.stdout).get('storage')!.status).toBe('ok');
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  }, 60_000);

  it('a bad configuration is one row naming the variable (exit 78)', async () => {
    const run = await runCli(['check'], { ...base, URL_TTL_SECONDS: 'an hour' });
    expect(run.code).toBe(78);
    const rows = table(run.stdout);
    expect([...rows.keys()]).toEqual(['config']);
    expect(rows.get('config')!.status).toBe('down');
    expect(rows.get('config')!.line).toContain('URL_TTL_SECONDS');
  });
});
