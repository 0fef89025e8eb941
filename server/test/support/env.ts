import type { CosStorageOptions } from '../../src/storage/cos.js';

// The environments every test builds a gateway from, in one place: the test services, the fixed
// test credentials, and the variables of a production-shaped node.

export const testRedisUrl = () => process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

/**
 * Resolves when a Redis client is ready; fails within 5 s naming the Redis a test needs (a
 * missing service is a failing test with a clear message, never a hang or a skip).
 */
export function redisReady(
  client: { status: string; once(event: 'ready', listener: () => void): unknown },
  where: string = testRedisUrl(),
): Promise<void> {
  if (client.status === 'ready') return Promise.resolve();
  return new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`Redis at ${where} is needed for this test: not ready in 5 s`)),
      5000,
    );
    client.once('ready', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}
export const testDatabaseUrl = () =>
  process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/** Signs the tests' bearer JWTs (HS256); see jwt.ts. */
export const TEST_JWT_SECRET = 'test-secret-test-secret-test-secret-0123456789';
/** With auth on, proxy links need a secret of their own (the development key is refused). Key id k0. */
export const TEST_PROXY_SECRET = 'test-proxy-secret-0123456789';
export const COS_SECRET_ID = 'AKIDtestTESTtestTESTtestTESTtestTEST1';
export const COS_SECRET_KEY = 'testSecretKeyForTheFixture0123456';

/** The credentials the COS fixture checks signatures with: `startCosFixture(COS_CREDENTIALS)`. */
export const COS_CREDENTIALS = { secretId: COS_SECRET_ID, secretKey: COS_SECRET_KEY } as const;

/** A bucket and the credentials for it (the bench has an account of its own). */
export interface CosAccount {
  secretId: string;
  secretKey: string;
  bucket: string;
  region: string;
}

export const TEST_COS: CosAccount = { ...COS_CREDENTIALS, bucket: 'test-1250000000', region: 'ap-test' };

/** The environment that points the `cos` driver at a fixture server. */
export function cosEnv(fixture: { host: string }, account: CosAccount = TEST_COS): Record<string, string> {
  return {
    STORAGE_DRIVER: 'cos',
    COS_SECRET_ID: account.secretId,
    COS_SECRET_KEY: account.secretKey,
    COS_BUCKET: account.bucket,
    COS_REGION: account.region,
    COS_DOMAIN: fixture.host,
    COS_PROTOCOL: 'http',
  };
}

/** The options of `createCosStorage` for the same bucket (seeding a child gateway's bucket). */
export function cosStorageOptions(
  fixture: { host: string },
  account: CosAccount = TEST_COS,
): CosStorageOptions {
  return { ...account, domain: fixture.host, protocol: 'http:' };
}

/** The bucket and credentials of the S3 fixture (s3rver behind a SigV4-verifying front). */
export const TEST_S3 = {
  accessKeyId: 'AKIASIGNETTEST000001',
  secretAccessKey: 'signetTestS3SecretKey/0123456789+abcdef',
  bucket: 'signet-test',
  region: 'us-east-1',
} as const;

/** The environment that points the `s3` driver at the fixture's front (path-style, plain http). */
export function s3Env(fixture: { url: string }): Record<string, string> {
  return {
    STORAGE_DRIVER: 's3',
    S3_BUCKET: TEST_S3.bucket,
    S3_REGION: TEST_S3.region,
    S3_ENDPOINT: fixture.url,
    S3_FORCE_PATH_STYLE: 'true',
    S3_ACCESS_KEY_ID: TEST_S3.accessKeyId,
    S3_SECRET_ACCESS_KEY: TEST_S3.secretAccessKey,
  };
}

/** Auth on: bearer JWTs signed with TEST_JWT_SECRET, and the proxy-link secret auth on requires. */
export function authEnv(): Record<string, string> {
  return { AUTH_JWT_SECRET: TEST_JWT_SECRET, PROXY_TOKEN_SECRET: TEST_PROXY_SECRET };
}

/** A production-shaped node: PostgreSQL, the cos driver against the fixture, auth on. */
export function gatewayEnv(fixture: { host: string }, databaseUrl: string): Record<string, string> {
  return { ...cosEnv(fixture), DATABASE_URL: databaseUrl, ...authEnv() };
}

/** The same as an API node (no background work) logging at info, as a child process test runs it. */
export function apiNodeEnv(fixture: { host: string }, databaseUrl: string): Record<string, string> {
  return { ...gatewayEnv(fixture, databaseUrl), LOG_LEVEL: 'info', SIGNET_ROLE: 'api' };
}
