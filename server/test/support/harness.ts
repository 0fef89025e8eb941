import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { Clock } from '../../src/clock.js';
import { type Config, loadConfig } from '../../src/config.js';
import { type Container, createContainer } from '../../src/container.js';
import type { Db } from '../../src/db/types.js';
import { createHttpApp, type HttpApp } from '../../src/http/app.js';
import type { RedisClient } from '../../src/redis/connect.js';
import type { Storage } from '../../src/storage/storage.js';
import type { UrlStore } from '../../src/urls/store.js';
import { type CosFixture, startCosFixture } from '../fixtures/cos-fixture.js';
import { type S3Fixture, startS3Fixture } from '../fixtures/s3-fixture.js';
import { createTestDatabase } from './database.js';
import { authEnv, COS_CREDENTIALS, cosEnv, redisReady, s3Env, TEST_S3 } from './env.js';
import { signToken } from './jwt.js';
import { captureLogger } from './logs.js';

export interface HarnessOptions {
  /**
   * 'cos' (default: the real SDK against the fixture), 's3' (client-s3 against s3rver behind the
   * SigV4-verifying front) or 'local'.
   */
  driver?: 'cos' | 's3' | 'local';
  /** Redis URL, or 'memory' for the in-process cache. */
  redis?: string | 'memory';
  /** 'postgres' (a fresh database) or 'pglite'. */
  database?: 'postgres' | 'pglite';
  clock?: Clock;
  env?: Record<string, string>;
  /** Starts the app's background work (access flushing, heartbeats, refresh jobs). */
  start?: boolean;
  /** Collects SQL statements (counting the hot path's cost). */
  onQuery?: (sql: string) => void;
  /**
   * Another node of the same deployment as this one: the same bucket (fixture or DATA_DIR),
   * database, Redis prefix and PUBLIC_URL. The first node owns them (and removes them).
   */
  nodeOf?: Harness;
}

export interface Harness {
  url: string;
  /** Every service of the node, from the one composition root. */
  container: Container;
  app: HttpApp;
  config: Config;
  db: Db;
  store: UrlStore;
  storage: Storage;
  redis: RedisClient | undefined;
  fixture: CosFixture | undefined;
  /** The S3 fixture (driver 's3'). */
  s3Fixture: S3Fixture | undefined;
  logs: string[];
  token(sub: string, claims?: Record<string, unknown>): Promise<string>;
  gql<T = unknown>(
    query: string,
    variables?: Record<string, unknown>,
    opts?: { token?: string | null },
  ): Promise<GqlResult<T>>;
  close(): Promise<void>;
}

export interface GqlResult<T> {
  status: number;
  data: T | null;
  errors: { message: string; extensions?: { code?: string } }[] | undefined;
  headers: Headers;
}

/** The real app on a real port, against real services, with everything it opened closed by close(). */
export async function startHarness(opts: HarnessOptions = {}): Promise<Harness> {
  const clock = opts.clock;
  const peer = opts.nodeOf;
  const fixture = peer
    ? peer.fixture
    : (opts.driver ?? 'cos') === 'cos'
      ? await startCosFixture({ ...COS_CREDENTIALS, ...(clock ? { now: () => clock.now() } : {}) })
      : undefined;
  const s3Fixture = peer
    ? peer.s3Fixture
    : opts.driver === 's3'
      ? await startS3Fixture({ ...TEST_S3, ...(clock ? { now: () => clock.now() } : {}) })
      : undefined;
  const dataDir = peer ? peer.config.dataDir : await mkdtemp(path.join(os.tmpdir(), 'signet-test-'));
  const database = opts.database ?? 'postgres';
  const pgdb = !peer && database === 'postgres' ? await createTestDatabase() : undefined;
  const env: Record<string, string> = {
    DATA_DIR: dataDir,
    ...authEnv(),
    LOG_LEVEL: 'info',
    STORAGE_DRIVER: opts.driver ?? 'cos',
    ...(fixture ? cosEnv(fixture) : {}),
    ...(s3Fixture ? s3Env(s3Fixture) : {}),
    ...(pgdb ? { DATABASE_URL: pgdb.url } : {}),
    ...(peer?.config.databaseUrl ? { DATABASE_URL: peer.config.databaseUrl } : {}),
    ...(opts.redis && opts.redis !== 'memory' ? { REDIS_URL: opts.redis } : {}),
    ...opts.env,
  };
  const { logger, logs } = captureLogger(env.LOG_LEVEL ?? 'info');
  // The port is only known after listen; PUBLIC_URL (used by local URLs) is fixed up below.
  const server: Server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  const config = loadConfig({ ...env, PUBLIC_URL: peer?.config.publicUrl ?? `http://127.0.0.1:${port}` });

  // Each harness gets its own Redis prefix, so tests sharing a Redis never see each other's keys.
  const cfg = { ...config, redisPrefix: peer?.config.redisPrefix ?? `signet-test:${port}:` };
  const container = await createContainer(cfg, {
    logger,
    ...(clock ? { clock } : {}),
    ...(opts.onQuery ? { onQuery: (e) => e.level === 'query' && opts.onQuery!(e.query.sql) } : {}),
  });
  const { db, store, storage, redis } = container;
  if (redis) await redisReady(redis, cfg.redisUrl ?? 'the configured Redis');
  const app = createHttpApp(container);
  if (opts.start) await container.start();
  server.on('request', app.handle);
  const url = `http://127.0.0.1:${port}`;

  const token = (sub: string, claims: Record<string, unknown> = {}) => signToken(sub, claims);
  const defaultToken = await token('alice');

  return {
    url,
    container,
    app,
    config: cfg,
    db,
    store,
    storage,
    redis,
    fixture,
    s3Fixture,
    logs,
    token,
    async gql<T>(query: string, variables?: Record<string, unknown>, o: { token?: string | null } = {}) {
      const t = o.token === undefined ? defaultToken : o.token;
      const res = await fetch(`${url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(t ? { authorization: `Bearer ${t}` } : {}) },
        body: JSON.stringify({ query, variables }),
      });
      const body = (await res.json()) as { data?: T; errors?: GqlResult<T>['errors'] };
      return { status: res.status, data: body.data ?? null, errors: body.errors, headers: res.headers };
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
      app.close();
      await container.close();
      if (peer) return;
      await pgdb?.drop();
      await fixture?.close();
      await s3Fixture?.close();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}
