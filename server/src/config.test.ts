import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from './config.js';
import { putDeadlineMs } from './storage/put-body.js';

type Env = Record<string, string>;

const SECRET = 'x'.repeat(32);
const COS: Env = {
  STORAGE_DRIVER: 'cos',
  COS_SECRET_ID: 'AKIDexample',
  COS_SECRET_KEY: 'example-key',
  COS_BUCKET: 'photos-1250000000',
  COS_REGION: 'ap-guangzhou',
};

/** The ConfigError loadConfig throws for env (failing the test when it does not throw). */
function configError(env: Env): ConfigError {
  try {
    loadConfig(env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error(`loadConfig accepted ${JSON.stringify(env)}`);
}

function expectRejected(env: Env, variable: string) {
  const err = configError(env);
  expect(err.variable).toBe(variable);
  // The message a user sees at start-up names the variable.
  expect(err.message.startsWith(`${variable}: `)).toBe(true);
}

describe('loadConfig', () => {
  it('has the embedded defaults (README, Configuration) with an empty environment', () => {
    const c = loadConfig({});
    expect(c).toMatchObject({
      nodeEnv: 'development',
      port: 4000,
      // Auth is off: only this machine may call (every caller would be the admin).
      host: '127.0.0.1',
      publicUrl: 'http://localhost:4000',
      dataDir: path.resolve('data'),
      databaseUrl: undefined,
      redisUrl: undefined,
      redisClusterNodes: [],
      redisSentinels: [],
      redisSentinelName: 'mymaster',
      redisPrefix: 'signet:',
      storageDriver: 'local',
      urlTtlSeconds: 3600,
      refreshAheadSeconds: 900,
      defaultMinTtlSeconds: 300,
      proxyTokenTtlSeconds: 30 * 86400,
      role: 'all',
      logLevel: 'info',
      seedDemo: true,
    });
    // No secret outside production: auth is off (every request is the demo admin).
    expect(c.auth.disabled).toBe(true);
    expect(c.proxyTokenSecrets).toHaveLength(1);
  });

  it('reads what is set, trimming blanks and treating empty values as unset', () => {
    const c = loadConfig({
      PORT: ' 8080 ',
      DATA_DIR: '/var/lib/signet',
      DATABASE_URL: 'postgres://u@db:5432/signet',
      REDIS_URL: 'redis://cache:6379/0',
      URL_TTL_SECONDS: '600',
      REFRESH_AHEAD_SECONDS: '',
      AUTH_JWT_SECRET: SECRET,
      PROXY_TOKEN_SECRET: 'p'.repeat(16),
      AUTH_ISSUER: 'https://id.example/',
      AUTH_AUDIENCE: 'signet',
      SIGNET_ROLE: 'worker',
      LOG_LEVEL: 'warn',
    });
    expect(c).toMatchObject({
      port: 8080,
      dataDir: '/var/lib/signet',
      databaseUrl: 'postgres://u@db:5432/signet',
      redisUrl: 'redis://cache:6379/0',
      urlTtlSeconds: 600,
      refreshAheadSeconds: 150, // a quarter of a short TTL
      defaultMinTtlSeconds: 150,
      role: 'worker',
      logLevel: 'warn',
      seedDemo: false, // an external database is not seeded unless asked
    });
    expect(c.auth).toMatchObject({
      disabled: false,
      jwtSecret: SECRET,
      issuer: 'https://id.example/',
      audience: 'signet',
    });
  });

  it('PUBLIC_READ_ANONYMOUS is off unless set to true, and nothing else is accepted', () => {
    expect(loadConfig({}).auth.publicReadAnonymous).toBe(false);
    expect(loadConfig({ PUBLIC_READ_ANONYMOUS: 'true' }).auth.publicReadAnonymous).toBe(true);
    expect(loadConfig({ PUBLIC_READ_ANONYMOUS: 'false' }).auth.publicReadAnonymous).toBe(false);
    expectRejected({ PUBLIC_READ_ANONYMOUS: 'yes' }, 'PUBLIC_READ_ANONYMOUS');
  });

  it('REDIS_PREFIX holds no hash tag of its own on a Cluster (every key would land in one slot)', () => {
    const cluster = { REDIS_CLUSTER_NODES: '127.0.0.1:7000,127.0.0.1:7001' };
    expect(loadConfig({ ...cluster, REDIS_PREFIX: 'shop:images:' }).redisPrefix).toBe('shop:images:');
    expectRejected({ ...cluster, REDIS_PREFIX: '{signet}:' }, 'REDIS_PREFIX');
    expectRejected({ ...cluster, REDIS_PREFIX: 'signet}' }, 'REDIS_PREFIX');
    // A single Redis has no slots: kept as it is.
    expect(loadConfig({ REDIS_URL: 'redis://127.0.0.1:6379', REDIS_PREFIX: '{app}:' }).redisPrefix).toBe(
      '{app}:',
    );
  });

  it('works at both ends of the TTL range', () => {
    const short = loadConfig({ URL_TTL_SECONDS: '5' });
    expect(short.refreshAheadSeconds).toBeLessThan(5);
    expect(short.refreshAheadSeconds).toBeGreaterThanOrEqual(1);
    expect(short.defaultMinTtlSeconds).toBeLessThan(5);
    const long = loadConfig({ URL_TTL_SECONDS: '604800', REFRESH_AHEAD_SECONDS: '604799' });
    expect(long.urlTtlSeconds).toBe(604800);
    expect(long.refreshAheadSeconds).toBe(604799);
    expect(long.defaultMinTtlSeconds).toBe(300);
  });

  it.each(['abc', '-1', '65536', '80.5', '1e3', '0x50'])('PORT=%s stops start-up', (v) => {
    expectRejected({ PORT: v }, 'PORT');
  });

  it.each(['0.0.0.0:8080', 'http://0.0.0.0', '[::1]', 'my host', 'a..b', '-lead.example', 'x'.repeat(64)])(
    'HOST=%s stops start-up (a hostname or an IP address, no port)',
    (v) => {
      const err = configError({ HOST: v });
      expect(err.variable).toBe('HOST');
      expect(err.message).toMatch(/hostname or an IP address/);
    },
  );

  it.each(['0.0.0.0', '::', '::1', '127.0.0.1', 'localhost', 'signet-api.internal', 'app_1'])(
    'HOST=%s is accepted as given',
    (v) => {
      expect(loadConfig({ HOST: v }).host).toBe(v);
    },
  );

  it.each(['abc', '4', '0', '-3600', '604801', '3600s', '1.5'])('URL_TTL_SECONDS=%s stops start-up', (v) => {
    const err = configError({ URL_TTL_SECONDS: v });
    expect(err.variable).toBe('URL_TTL_SECONDS');
    if (/^-?\d+$/.test(v)) expect(err.message).toMatch(/5 and 604800/);
  });

  it('workers wait longer on Redis than the API does, unless told otherwise', () => {
    expect(loadConfig({}).redisCommandTimeoutMs).toBe(150);
    expect(loadConfig({ SIGNET_ROLE: 'api' }).redisCommandTimeoutMs).toBe(150);
    expect(loadConfig({ SIGNET_ROLE: 'worker' }).redisCommandTimeoutMs).toBe(2000);
    expect(loadConfig({ SIGNET_ROLE: 'worker', REDIS_COMMAND_TIMEOUT_MS: '300' }).redisCommandTimeoutMs).toBe(
      300,
    );
  });

  it('REFRESH_AHEAD_SECONDS must be below URL_TTL_SECONDS', () => {
    expectRejected({ URL_TTL_SECONDS: '60', REFRESH_AHEAD_SECONDS: '60' }, 'REFRESH_AHEAD_SECONDS');
    expectRejected({ URL_TTL_SECONDS: '60', REFRESH_AHEAD_SECONDS: '61' }, 'REFRESH_AHEAD_SECONDS');
    expectRejected({ REFRESH_AHEAD_SECONDS: '3600' }, 'REFRESH_AHEAD_SECONDS');
    expectRejected({ REFRESH_AHEAD_SECONDS: '0' }, 'REFRESH_AHEAD_SECONDS');
    expect(loadConfig({ URL_TTL_SECONDS: '60', REFRESH_AHEAD_SECONDS: '59' }).refreshAheadSeconds).toBe(59);
  });

  it('REFRESH_AHEAD_SECONDS must not be below the default minTtl (one URL per window)', () => {
    // TTL 3600: default minTtl 300. At 60 s ahead, default requests in a step's last 240 s would
    // each get an off-grid URL.
    const err = configError({ URL_TTL_SECONDS: '3600', REFRESH_AHEAD_SECONDS: '60' });
    expect(err.variable).toBe('REFRESH_AHEAD_SECONDS');
    expect(err.message).toMatch(/at least 300/);
    expect(err.message).toMatch(/minTtl/);
    expectRejected({ REFRESH_AHEAD_SECONDS: '299' }, 'REFRESH_AHEAD_SECONDS');
    expect(loadConfig({ REFRESH_AHEAD_SECONDS: '300' }).refreshAheadSeconds).toBe(300);
    // A short TTL: the default minTtl is a quarter of it (20 s of 80).
    expectRejected({ URL_TTL_SECONDS: '80', REFRESH_AHEAD_SECONDS: '19' }, 'REFRESH_AHEAD_SECONDS');
    expect(loadConfig({ URL_TTL_SECONDS: '80', REFRESH_AHEAD_SECONDS: '20' }).defaultMinTtlSeconds).toBe(20);
    // The defaults always satisfy it, at both ends of the TTL range.
    for (const ttl of ['5', '7', '60', '1199', '1200', '3600', '604800']) {
      const c = loadConfig({ URL_TTL_SECONDS: ttl });
      expect(c.refreshAheadSeconds).toBeGreaterThanOrEqual(c.defaultMinTtlSeconds);
    }
  });

  it('STORAGE_DRIVER=cos names the first missing COS_* variable', () => {
    expect(loadConfig(COS).cos).toMatchObject({ bucket: 'photos-1250000000', protocol: 'https:' });
    for (const name of ['COS_SECRET_ID', 'COS_SECRET_KEY', 'COS_BUCKET', 'COS_REGION']) {
      const { [name]: _missing, ...rest } = COS;
      expectRejected(rest, name);
      expectRejected({ ...rest, [name]: '   ' }, name);
    }
    expectRejected({ STORAGE_DRIVER: 'gcs' }, 'STORAGE_DRIVER');
    // s3 is a driver now (config-s3.test.ts): it names its first missing variable.
    expectRejected({ STORAGE_DRIVER: 's3' }, 'S3_BUCKET');
    expectRejected({ ...COS, COS_PROTOCOL: 'ftp' }, 'COS_PROTOCOL');
    expectRejected({ ...COS, COS_DOMAIN: 'http://cos.example/path' }, 'COS_DOMAIN');
    expect(loadConfig({ ...COS, COS_PROTOCOL: 'http:', COS_DOMAIN: '127.0.0.1:9000' }).cos).toMatchObject({
      protocol: 'http:',
      domain: '127.0.0.1:9000',
    });
  });

  it('NODE_ENV=production needs an auth secret and a proxy token secret', () => {
    const err = configError({ NODE_ENV: 'production', PROXY_TOKEN_SECRET: 'p'.repeat(16) });
    expect(err.variable).toBe('AUTH_JWT_SECRET');
    expect(err.message).toMatch(/AUTH_JWKS_URL/);
    expectRejected({ NODE_ENV: 'production', AUTH_JWT_SECRET: SECRET }, 'PROXY_TOKEN_SECRET');
    const ok = loadConfig({
      NODE_ENV: 'production',
      AUTH_JWT_SECRET: SECRET,
      PROXY_TOKEN_SECRET: 'p'.repeat(16),
    });
    expect(ok.auth.disabled).toBe(false);
    const jwks = loadConfig({
      NODE_ENV: 'production',
      AUTH_JWKS_URL: 'https://id.example/.well-known/jwks.json',
      AUTH_ISSUER: 'https://id.example/',
      AUTH_AUDIENCE: 'signet',
      PROXY_TOKEN_SECRET: 'p'.repeat(16),
    });
    expect(jwks.auth).toMatchObject({ disabled: false, jwksUrl: 'https://id.example/.well-known/jwks.json' });
  });

  it('auth on never uses the public development key, whatever NODE_ENV says', () => {
    for (const nodeEnv of ['development', 'staging', 'test', 'Production']) {
      expectRejected({ NODE_ENV: nodeEnv, AUTH_JWT_SECRET: SECRET }, 'PROXY_TOKEN_SECRET');
      expectRejected(
        { NODE_ENV: nodeEnv, AUTH_JWKS_URL: 'https://id.example/jwks.json' },
        'PROXY_TOKEN_SECRET',
      );
    }
    // Auth off (a developer's machine): the development key signs, and nobody else can call.
    const dev = loadConfig({ NODE_ENV: 'staging' });
    expect(dev.auth.disabled).toBe(true);
    expect(dev.host).toBe('127.0.0.1');
    expect(loadConfig({ HOST: '0.0.0.0' }).host).toBe('0.0.0.0');
    // Auth on listens everywhere by default.
    expect(loadConfig({ AUTH_JWT_SECRET: SECRET, PROXY_TOKEN_SECRET: 'p'.repeat(16) }).host).toBe('0.0.0.0');
  });

  it('the local bucket signs with a key derived from the proxy secret, never the proxy secret itself', () => {
    const c = loadConfig({ AUTH_JWT_SECRET: SECRET, PROXY_TOKEN_SECRET: 'p'.repeat(16) });
    expect(c.localSigningSecret).not.toBe('p'.repeat(16));
    expect(c.localSigningSecret).toMatch(/^[A-Za-z0-9_-]{43}$/);
    // Stable across starts (URLs signed before a restart still verify), distinct per secret.
    expect(
      loadConfig({ AUTH_JWT_SECRET: SECRET, PROXY_TOKEN_SECRET: 'p'.repeat(16) }).localSigningSecret,
    ).toBe(c.localSigningSecret);
    expect(
      loadConfig({ AUTH_JWT_SECRET: SECRET, PROXY_TOKEN_SECRET: 'q'.repeat(16) }).localSigningSecret,
    ).not.toBe(c.localSigningSecret);
    expect(loadConfig({ LOCAL_SIGNING_SECRET: 'own-local-secret-0123' }).localSigningSecret).toBe(
      'own-local-secret-0123',
    );
  });

  it('LOCAL_SIGNING_SECRET may list secrets (the first signs, all verify), and a derived one follows every proxy key', () => {
    const own = loadConfig({ LOCAL_SIGNING_SECRET: 'new-local-secret-01, old-local-secret-01' });
    expect(own.localSigningSecret).toBe('new-local-secret-01');
    expect(own.localVerifySecrets).toEqual(['new-local-secret-01', 'old-local-secret-01']);
    expect(configError({ LOCAL_SIGNING_SECRET: 'new-local-secret-01,short' }).variable).toBe(
      'LOCAL_SIGNING_SECRET',
    );
    // A proxy key rotation (add, promote, retire) keeps the local URLs signed before it working.
    const env = { AUTH_JWT_SECRET: SECRET };
    const before = loadConfig({ ...env, PROXY_TOKEN_SECRET: `k0:${'o'.repeat(16)}` });
    const added = loadConfig({ ...env, PROXY_TOKEN_SECRET: `k0:${'o'.repeat(16)},k1:${'n'.repeat(16)}` });
    const promoted = loadConfig({ ...env, PROXY_TOKEN_SECRET: `k1:${'n'.repeat(16)},k0:${'o'.repeat(16)}` });
    expect(added.localSigningSecret).toBe(before.localSigningSecret);
    expect(added.localVerifySecrets).toContain(promoted.localSigningSecret);
    expect(promoted.localVerifySecrets).toContain(before.localSigningSecret);
  });

  it('JWKS in production needs an issuer, an audience and https', () => {
    const base = { NODE_ENV: 'production', PROXY_TOKEN_SECRET: 'p'.repeat(16) };
    const url = 'https://id.example/jwks.json';
    // One key source: with both, which one decides would be a guess.
    expectRejected(
      { ...base, AUTH_JWT_SECRET: SECRET, AUTH_JWKS_URL: url, AUTH_ISSUER: 'i', AUTH_AUDIENCE: 'a' },
      'AUTH_JWKS_URL',
    );
    expectRejected({ AUTH_JWT_SECRET: SECRET, AUTH_JWKS_URL: url }, 'AUTH_JWKS_URL');
    expectRejected({ ...base, AUTH_JWKS_URL: url, AUTH_AUDIENCE: 'signet' }, 'AUTH_ISSUER');
    expectRejected({ ...base, AUTH_JWKS_URL: url, AUTH_ISSUER: 'https://id.example/' }, 'AUTH_AUDIENCE');
    expectRejected(
      { ...base, AUTH_JWKS_URL: 'http://id.example/jwks.json', AUTH_ISSUER: 'i', AUTH_AUDIENCE: 'a' },
      'AUTH_JWKS_URL',
    );
    // Outside production, a local identity provider over http is fine.
    const dev = loadConfig({
      AUTH_JWKS_URL: 'http://127.0.0.1:9/jwks.json',
      PROXY_TOKEN_SECRET: 'p'.repeat(16),
    });
    expect(dev.auth.jwksUrl).toBe('http://127.0.0.1:9/jwks.json');
  });

  it('METRICS_TOKEN needs 16 characters', () => {
    expectRejected({ METRICS_TOKEN: 'short' }, 'METRICS_TOKEN');
    expect(loadConfig({ METRICS_TOKEN: 'm'.repeat(16) }).metricsToken).toBe('m'.repeat(16));
  });

  it('AUTH_JWT_SECRET must be long enough for HS256; AUTH_JWKS_URL must be a URL', () => {
    const err = configError({ AUTH_JWT_SECRET: 'short' });
    expect(err.variable).toBe('AUTH_JWT_SECRET');
    expect(err.message).toMatch(/32/);
    expectRejected({ AUTH_JWT_SECRET: 'x'.repeat(31) }, 'AUTH_JWT_SECRET');
    expectRejected({ AUTH_JWKS_URL: 'not a url' }, 'AUTH_JWKS_URL');
    expectRejected({ AUTH_JWKS_URL: 'ftp://id.example/jwks' }, 'AUTH_JWKS_URL');
  });

  it.each(['localhost:6379', 'http://cache:6379', 'not a url', 'cache'])(
    'REDIS_URL=%s stops start-up',
    (v) => {
      expectRejected({ REDIS_URL: v }, 'REDIS_URL');
    },
  );

  it('accepts redis:// and rediss://', () => {
    expect(loadConfig({ REDIS_URL: 'rediss://:pw@cache.example:6380' }).redisUrl).toBe(
      'rediss://:pw@cache.example:6380',
    );
  });

  it('REDIS_CLUSTER_NODES is a host:port list', () => {
    expect(loadConfig({ REDIS_CLUSTER_NODES: 'r1:7000, r2:7001 ,10.0.0.3:7002' }).redisClusterNodes).toEqual([
      { host: 'r1', port: 7000 },
      { host: 'r2', port: 7001 },
      { host: '10.0.0.3', port: 7002 },
    ]);
    for (const v of [
      'r1',
      'r1:7000,r2',
      'r1:port',
      'r1:7000,',
      'r1:123456',
      'r1:70000',
      'r1:0',
      'redis://r1:7000',
    ]) {
      expectRejected({ REDIS_CLUSTER_NODES: v }, 'REDIS_CLUSTER_NODES');
    }
  });

  it('DATABASE_READ_URL is a postgres URL that needs DATABASE_URL; DATABASE_READ_MAX_LAG_MS bounds its lag', () => {
    const c = loadConfig({
      DATABASE_URL: 'postgres://u@primary:5432/signet',
      DATABASE_READ_URL: 'postgres://u@replica:5432/signet',
    });
    expect(c.databaseReadUrl).toBe('postgres://u@replica:5432/signet');
    expect(c.databaseReadMaxLagMs).toBe(5000);
    expect(loadConfig({}).databaseReadUrl).toBeUndefined();
    expectRejected({ DATABASE_READ_URL: 'postgres://u@replica/signet' }, 'DATABASE_READ_URL');
    expectRejected(
      { DATABASE_URL: 'postgres://u@p/s', DATABASE_READ_URL: 'mysql://u@replica/signet' },
      'DATABASE_READ_URL',
    );
    expectRejected(
      {
        DATABASE_URL: 'postgres://u@p/s',
        DATABASE_READ_URL: 'postgres://u@r/s',
        DATABASE_READ_MAX_LAG_MS: '10',
      },
      'DATABASE_READ_MAX_LAG_MS',
    );
  });

  it('DATABASE_DIRECT_URL is a postgres URL that needs DATABASE_URL (the pooler in front of it)', () => {
    const c = loadConfig({
      DATABASE_URL: 'postgres://u@pgbouncer:6432/signet',
      DATABASE_DIRECT_URL: 'postgres://u@primary:5432/signet',
    });
    expect(c.databaseDirectUrl).toBe('postgres://u@primary:5432/signet');
    expect(loadConfig({ DATABASE_URL: 'postgres://u@p/s' }).databaseDirectUrl).toBeUndefined();
    expectRejected({ DATABASE_DIRECT_URL: 'postgres://u@primary/signet' }, 'DATABASE_DIRECT_URL');
    expectRejected(
      { DATABASE_URL: 'postgres://u@p/s', DATABASE_DIRECT_URL: 'redis://primary' },
      'DATABASE_DIRECT_URL',
    );
  });

  it('REDIS_SENTINELS is a host:port list with a master name (default mymaster)', () => {
    const c = loadConfig({ REDIS_SENTINELS: 's1:26379,s2:26380, 10.0.0.3:26381' });
    expect(c.redisSentinels).toEqual([
      { host: 's1', port: 26379 },
      { host: 's2', port: 26380 },
      { host: '10.0.0.3', port: 26381 },
    ]);
    expect(c.redisSentinelName).toBe('mymaster');
    expect(c.redisUrl).toBeUndefined();
    expect(
      loadConfig({ REDIS_SENTINELS: 's1:26379', REDIS_SENTINEL_NAME: 'signet-cache' }).redisSentinelName,
    ).toBe('signet-cache');
    expect(loadConfig({}).redisSentinels).toEqual([]);
    for (const v of ['s1', 's1:26379,', 's1:0', 'redis://s1:26379']) {
      expectRejected({ REDIS_SENTINELS: v }, 'REDIS_SENTINELS');
    }
    expectRejected({ REDIS_SENTINELS: 's1:26379', REDIS_SENTINEL_NAME: 'a b' }, 'REDIS_SENTINEL_NAME');
  });

  it('REDIS_SENTINELS excludes REDIS_CLUSTER_NODES and REDIS_URL, naming both', () => {
    const both = configError({ REDIS_SENTINELS: 's1:26379', REDIS_CLUSTER_NODES: 'r1:7000' });
    expect(both.variable).toBe('REDIS_SENTINELS');
    expect(both.message).toContain('REDIS_CLUSTER_NODES');
    const withUrl = configError({ REDIS_SENTINELS: 's1:26379', REDIS_URL: 'redis://cache:6379' });
    expect(withUrl.variable).toBe('REDIS_SENTINELS');
    expect(withUrl.message).toContain('REDIS_URL');
  });

  it('REDIS_CLUSTER_NODES excludes REDIS_URL, naming both (the Cluster used to win in silence)', () => {
    const both = configError({ REDIS_CLUSTER_NODES: 'r1:7000,r2:7001', REDIS_URL: 'redis://cache:6379' });
    expect(both.variable).toBe('REDIS_CLUSTER_NODES');
    expect(both.message).toContain('REDIS_URL');
  });

  it('REDIS_USERNAME, REDIS_PASSWORD, REDIS_SENTINEL_* and REDIS_TLS: Sentinel and Cluster auth', () => {
    expect(loadConfig({ REDIS_SENTINELS: 's1:26379' }).redisAuth).toEqual({
      username: undefined,
      password: undefined,
      sentinelUsername: undefined,
      sentinelPassword: undefined,
      tls: false,
    });
    expect(
      loadConfig({
        REDIS_SENTINELS: 's1:26379',
        REDIS_USERNAME: 'signet',
        REDIS_PASSWORD: 'data-pw',
        REDIS_SENTINEL_USERNAME: 'watcher',
        REDIS_SENTINEL_PASSWORD: 'sentinel-pw',
        REDIS_TLS: 'true',
      }).redisAuth,
    ).toEqual({
      username: 'signet',
      password: 'data-pw',
      sentinelUsername: 'watcher',
      sentinelPassword: 'sentinel-pw',
      tls: true,
    });
    expect(
      loadConfig({ REDIS_CLUSTER_NODES: 'r1:7000', REDIS_PASSWORD: 'data-pw', REDIS_TLS: 'false' }).redisAuth,
    ).toMatchObject({ username: undefined, password: 'data-pw', tls: false });
    // A URL says it all itself: rediss:// with its user and password, so nothing is set beside it.
    expect(loadConfig({ REDIS_URL: 'rediss://u:p@cache:6380' }).redisAuth.tls).toBe(false);
  });

  it('refuses the Redis auth variables where they would be ignored, never quoting a password', () => {
    const secret = 'hunter2-Secret';
    const cases: [Env, string, string][] = [
      // With REDIS_URL they belong in the URL.
      [{ REDIS_URL: 'redis://cache:6379', REDIS_PASSWORD: secret }, 'REDIS_PASSWORD', 'REDIS_URL'],
      [
        { REDIS_URL: 'redis://cache:6379', REDIS_USERNAME: 'u', REDIS_PASSWORD: secret },
        'REDIS_USERNAME',
        'REDIS_URL',
      ],
      [{ REDIS_URL: 'redis://cache:6379', REDIS_TLS: 'true' }, 'REDIS_TLS', 'rediss://'],
      // The sentinels' own: only with REDIS_SENTINELS.
      [
        { REDIS_CLUSTER_NODES: 'r1:7000', REDIS_SENTINEL_PASSWORD: secret },
        'REDIS_SENTINEL_PASSWORD',
        'REDIS_SENTINELS',
      ],
      [
        { REDIS_URL: 'redis://cache:6379', REDIS_SENTINEL_PASSWORD: secret },
        'REDIS_SENTINEL_PASSWORD',
        'REDIS_SENTINELS',
      ],
      [
        { REDIS_CLUSTER_NODES: 'r1:7000', REDIS_SENTINEL_USERNAME: 'w', REDIS_SENTINEL_PASSWORD: secret },
        'REDIS_SENTINEL_USERNAME',
        'REDIS_SENTINELS',
      ],
      // No Redis at all (embedded): a topology variable was forgotten.
      [{ REDIS_PASSWORD: secret }, 'REDIS_PASSWORD', 'REDIS_SENTINELS or REDIS_CLUSTER_NODES'],
      [
        { REDIS_USERNAME: 'u', REDIS_PASSWORD: secret },
        'REDIS_USERNAME',
        'REDIS_SENTINELS or REDIS_CLUSTER_NODES',
      ],
      [{ REDIS_TLS: 'true' }, 'REDIS_TLS', 'REDIS_SENTINELS or REDIS_CLUSTER_NODES'],
      // A user without its password.
      [{ REDIS_SENTINELS: 's1:26379', REDIS_USERNAME: 'u' }, 'REDIS_USERNAME', 'REDIS_PASSWORD'],
      [
        { REDIS_SENTINELS: 's1:26379', REDIS_SENTINEL_USERNAME: 'w' },
        'REDIS_SENTINEL_USERNAME',
        'REDIS_SENTINEL_PASSWORD',
      ],
      // Only true or false, like every boolean here.
      [{ REDIS_SENTINELS: 's1:26379', REDIS_TLS: 'yes' }, 'REDIS_TLS', 'true, false'],
    ];
    for (const [env, variable, names] of cases) {
      expectRejected(env, variable);
      const err = configError(env);
      expect(err.message, variable).toContain(names);
      expect(err.message.includes('\n'), variable).toBe(false);
      expect(err.message.includes(secret), variable).toBe(false);
    }
  });

  it('PROXY_TOKEN_SECRET: one secret, or kid:secret pairs (first signs, all verify)', () => {
    expect(loadConfig({ PROXY_TOKEN_SECRET: 's'.repeat(16) }).proxyTokenSecrets).toEqual([
      { kid: 'k0', secret: 's'.repeat(16) },
    ]);
    expect(
      loadConfig({ PROXY_TOKEN_SECRET: 'k2:new-secret-new-secret, k1:old-secret-old-secret' })
        .proxyTokenSecrets,
    ).toEqual([
      { kid: 'k2', secret: 'new-secret-new-secret' },
      { kid: 'k1', secret: 'old-secret-old-secret' },
    ]);
    expectRejected({ PROXY_TOKEN_SECRET: 'short' }, 'PROXY_TOKEN_SECRET');
    expectRejected({ PROXY_TOKEN_SECRET: 'k1:new-secret-new-secret,k0:short' }, 'PROXY_TOKEN_SECRET');
    expectRejected({ PROXY_TOKEN_SECRET: 'bad kid!:new-secret-new-secret' }, 'PROXY_TOKEN_SECRET');
    expectRejected({ PROXY_TOKEN_SECRET: `${'k'.repeat(17)}:new-secret-new-secret` }, 'PROXY_TOKEN_SECRET');
  });

  it('PROXY_TOKEN_SECRET: a key id given twice is refused (new links would verify against the other key)', () => {
    // Two bare secrets are both k0: the natural first step of a rotation done without ids.
    const bare = configError({ PROXY_TOKEN_SECRET: 'new-secret-new-secret,old-secret-old-secret' });
    expect(bare.variable).toBe('PROXY_TOKEN_SECRET');
    expect(bare.message).toContain('"k0" is given twice');
    expectRejected(
      { PROXY_TOKEN_SECRET: 'k1:new-secret-new-secret,k1:old-secret-old-secret' },
      'PROXY_TOKEN_SECRET',
    );
  });

  it('SHUTDOWN_DELAY_SECONDS: 0 by default (stop accepting at once), whole seconds up to 300', () => {
    expect(loadConfig({}).shutdownDelaySeconds).toBe(0);
    expect(loadConfig({ SHUTDOWN_DELAY_SECONDS: ' 15 ' }).shutdownDelaySeconds).toBe(15);
    expect(loadConfig({ SHUTDOWN_DELAY_SECONDS: '300' }).shutdownDelaySeconds).toBe(300);
    expect(loadConfig({ SHUTDOWN_DELAY_SECONDS: '' }).shutdownDelaySeconds).toBe(0);
    for (const v of ['-1', '1.5', '5s', 'soon', '301'])
      expectRejected({ SHUTDOWN_DELAY_SECONDS: v }, 'SHUTDOWN_DELAY_SECONDS');
  });

  it('PRELOAD_RATE_LIMIT_PER_MINUTE and PRELOAD_QUEUE_MAX_JOBS: defaults, values and bounds', () => {
    expect(loadConfig({})).toMatchObject({ preloadRateLimitPerMinute: 30, preloadQueueMaxJobs: 200 });
    expect(loadConfig({ PRELOAD_RATE_LIMIT_PER_MINUTE: ' 5 ', PRELOAD_QUEUE_MAX_JOBS: '20' })).toMatchObject({
      preloadRateLimitPerMinute: 5,
      preloadQueueMaxJobs: 20,
    });
    for (const v of ['0', '-1', '1.5', 'lots', '100001'])
      expectRejected({ PRELOAD_RATE_LIMIT_PER_MINUTE: v }, 'PRELOAD_RATE_LIMIT_PER_MINUTE');
    // Below 20 the largest preload a call may ask for (20 jobs of 500 ids) could never fit.
    for (const v of ['19', '0', 'x', '100001'])
      expectRejected({ PRELOAD_QUEUE_MAX_JOBS: v }, 'PRELOAD_QUEUE_MAX_JOBS');
  });

  it('upload concurrency and quota: defaults, unset quota is no quota, bad values name the variable', () => {
    const c = loadConfig({});
    expect(c).toMatchObject({
      uploadConcurrencyPerViewer: 4,
      uploadConcurrency: 32,
      uploadQuotaBytes: undefined,
      uploadQuotaFiles: undefined,
    });
    expect(
      loadConfig({
        UPLOAD_CONCURRENCY_PER_VIEWER: '2',
        UPLOAD_CONCURRENCY: '64',
        UPLOAD_QUOTA_BYTES: '1073741824',
        UPLOAD_QUOTA_FILES: ' 500 ',
      }),
    ).toMatchObject({
      uploadConcurrencyPerViewer: 2,
      uploadConcurrency: 64,
      uploadQuotaBytes: 1073741824,
      uploadQuotaFiles: 500,
    });
    expect(loadConfig({ UPLOAD_QUOTA_BYTES: '' }).uploadQuotaBytes).toBeUndefined();
    for (const v of ['0', '-1', 'four', '2.5', '10001']) {
      expectRejected({ UPLOAD_CONCURRENCY_PER_VIEWER: v }, 'UPLOAD_CONCURRENCY_PER_VIEWER');
    }
    for (const v of ['0', 'lots', '100001']) expectRejected({ UPLOAD_CONCURRENCY: v }, 'UPLOAD_CONCURRENCY');
    for (const v of ['0', '-5', '1GB', '1e9'])
      expectRejected({ UPLOAD_QUOTA_BYTES: v }, 'UPLOAD_QUOTA_BYTES');
    for (const v of ['0', 'ten', '1000000001'])
      expectRejected({ UPLOAD_QUOTA_FILES: v }, 'UPLOAD_QUOTA_FILES');
  });

  it('COS put deadline grows with the size; COS_TIMEOUT_MS and the minimum rate are checked', () => {
    const c = loadConfig(COS);
    expect(c.cos).toMatchObject({ timeoutMs: 10_000, putMinBytesPerSecond: 256 * 1024 });
    // 20 MB at 256 KB/s: 80 s on top of the 10 s of any call.
    expect(putDeadlineMs(c.cos, 20 * 1024 * 1024)).toBe(90_000);
    expect(putDeadlineMs(c.cos, 0)).toBe(10_000);
    expect(loadConfig({ ...COS, COS_TIMEOUT_MS: '2500' }).cos.timeoutMs).toBe(2500);
    for (const v of ['0', '99', '600001', 'soon'])
      expectRejected({ ...COS, COS_TIMEOUT_MS: v }, 'COS_TIMEOUT_MS');
    for (const v of ['0', '1023', 'fast']) {
      expectRejected({ ...COS, COS_PUT_MIN_BYTES_PER_SECOND: v }, 'COS_PUT_MIN_BYTES_PER_SECOND');
    }
  });

  it('orphan sweep: every 10 minutes, with a grace that outlasts the longest upload put', () => {
    expect(loadConfig({})).toMatchObject({ orphanSweepIntervalSeconds: 600, orphanSweepGraceSeconds: 3600 });
    expect(loadConfig({ ORPHAN_SWEEP_INTERVAL_SECONDS: '0' }).orphanSweepIntervalSeconds).toBe(0);
    // A 5 GB upload limit at 256 KB/s: a put may take 20,490 s, so the default grace doubles that.
    const huge = loadConfig({ ...COS, UPLOAD_MAX_BYTES: String(5 * 1024 ** 3) });
    expect(huge.orphanSweepGraceSeconds).toBe(2 * 20_490);
    // A grace the longest put could outlast stops start-up (it could delete a live upload).
    const err = configError({ ...COS, ORPHAN_SWEEP_GRACE_SECONDS: '90' });
    expect(err.variable).toBe('ORPHAN_SWEEP_GRACE_SECONDS');
    expect(err.message).toMatch(/above 90 s/);
    expect(err.message).toMatch(/COS_TIMEOUT_MS/);
    expect(loadConfig({ ...COS, ORPHAN_SWEEP_GRACE_SECONDS: '91' }).orphanSweepGraceSeconds).toBe(91);
    // The local driver stores at once: any grace of a second or more will do.
    expect(loadConfig({ ORPHAN_SWEEP_GRACE_SECONDS: '1' }).orphanSweepGraceSeconds).toBe(1);
    for (const v of ['0', '-1', 'hour'])
      expectRejected({ ORPHAN_SWEEP_GRACE_SECONDS: v }, 'ORPHAN_SWEEP_GRACE_SECONDS');
    for (const v of ['-1', '604801', 'often']) {
      expectRejected({ ORPHAN_SWEEP_INTERVAL_SECONDS: v }, 'ORPHAN_SWEEP_INTERVAL_SECONDS');
    }
  });

  it('PORT=0 (a port chosen at listen) needs PUBLIC_URL: http://localhost:0 links go nowhere', () => {
    const err = configError({ PORT: '0' });
    expect(err.variable).toBe('PUBLIC_URL');
    expect(err.message).toMatch(/PORT=0/);
    expect(loadConfig({ PORT: '0', PUBLIC_URL: 'https://img.example' })).toMatchObject({
      port: 0,
      publicUrl: 'https://img.example',
    });
  });

  it('PUBLIC_URL is an origin with an optional path: no query, fragment or credentials', () => {
    for (const bad of [
      'https://img.example/?x=1',
      'https://img.example/#top',
      'https://img.example/base?',
      'https://img.example#',
      'https://user:pw@img.example',
    ]) {
      const err = configError({ PUBLIC_URL: bad });
      expect(err.variable, bad).toBe('PUBLIC_URL');
      expect(err.message, bad).toMatch(/without a query, fragment/);
    }
    expect(loadConfig({ PUBLIC_URL: 'https://img.example:8443/signet/' }).publicUrl).toBe(
      'https://img.example:8443/signet',
    );
    expect(loadConfig({ PUBLIC_URL: 'http://localhost:4000' }).publicUrl).toBe('http://localhost:4000');
  });

  it('LOCAL_SIGNING_SECRET, when set, has at least 16 characters (as PROXY_TOKEN_SECRET)', () => {
    const err = configError({ LOCAL_SIGNING_SECRET: 'short-secret' });
    expect(err.variable).toBe('LOCAL_SIGNING_SECRET');
    expect(err.message).toMatch(/at least 16/);
    expect(loadConfig({ LOCAL_SIGNING_SECRET: 'x'.repeat(16) }).localSigningSecret).toBe('x'.repeat(16));
  });

  it('SEED_DEMO is true or false like every boolean; 1 or yes no longer mean false silently', () => {
    for (const v of ['1', 'yes', 'TRUE', 'on', '0']) expectRejected({ SEED_DEMO: v }, 'SEED_DEMO');
    expect(loadConfig({ SEED_DEMO: 'true', DATABASE_URL: 'postgres://db/x' }).seedDemo).toBe(true);
    expect(loadConfig({ SEED_DEMO: 'false' }).seedDemo).toBe(false);
    // Unset: seed the embedded database only.
    expect(loadConfig({}).seedDemo).toBe(true);
    expect(loadConfig({ DATABASE_URL: 'postgres://db/x' }).seedDemo).toBe(false);
  });

  it('COS_BUCKET is <name>-<APPID> and COS_REGION is [a-z0-9-]+ (COS rules), checked at start', () => {
    for (const bucket of [
      'photos',
      'Photos-1250000000',
      '-photos-1250000000',
      'photos--1250000000',
      'photos_x-1',
      'photos-125a',
      'a.b-1250000000',
    ]) {
      expectRejected({ ...COS, COS_BUCKET: bucket }, 'COS_BUCKET');
    }
    for (const bucket of ['examplebucket-1-1250000000', '1-newproject-1250000000', 'b-1']) {
      expect(loadConfig({ ...COS, COS_BUCKET: bucket }).cos.bucket, bucket).toBe(bucket);
    }
    for (const region of ['AP-Guangzhou', 'ap_guangzhou', 'ap-guangzhou.myqcloud.com', 'cos.ap-guangzhou/']) {
      expectRejected({ ...COS, COS_REGION: region }, 'COS_REGION');
    }
    expect(loadConfig({ ...COS, COS_REGION: 'na-siliconvalley' }).cos.region).toBe('na-siliconvalley');
    // With another driver, COS_* are unused and not judged.
    expect(loadConfig({ COS_BUCKET: 'whatever' }).storageDriver).toBe('local');
  });

  it('STORAGE_DRIVER is local, cos or s3; only a bucket store can be a CDN origin', () => {
    const err = configError({ STORAGE_DRIVER: 'memory' });
    expect(err.variable).toBe('STORAGE_DRIVER');
    expect(err.message).toBe('STORAGE_DRIVER: must be one of local, cos, s3, got "memory"');
    const cdn = {
      CDN_DOMAIN: 'cdn.example.com',
      CDN_AUTH_TYPE: 'tencent-a',
      CDN_AUTH_KEY: 'a1B2c3D4e5F6g7H8',
    };
    const s3 = {
      STORAGE_DRIVER: 's3',
      S3_BUCKET: 'signet-images',
      S3_REGION: 'eu-west-1',
      S3_ACCESS_KEY_ID: 'AKIAEXAMPLE',
      S3_SECRET_ACCESS_KEY: 'example/secret+key',
    };
    expect(loadConfig({ ...COS, ...cdn }).cdn?.domain).toBe('https://cdn.example.com');
    expect(loadConfig({ ...s3, ...cdn }).cdn?.domain).toBe('https://cdn.example.com');
    const local = configError(cdn);
    expect(local.variable).toBe('CDN_DOMAIN');
    expect(local.message).toContain('needs STORAGE_DRIVER=cos or s3');
  });

  it('other enumerations and URLs name their variable', () => {
    expectRejected({ DATABASE_URL: 'mysql://db/signet' }, 'DATABASE_URL');
    expectRejected({ DATABASE_URL: 'db:5432' }, 'DATABASE_URL');
    expectRejected({ SIGNET_ROLE: 'both' }, 'SIGNET_ROLE');
    expectRejected({ LOG_LEVEL: 'verbose' }, 'LOG_LEVEL');
    expectRejected({ PUBLIC_URL: 'gateway.example' }, 'PUBLIC_URL');
    expectRejected({ PROXY_TOKEN_TTL_SECONDS: '-1' }, 'PROXY_TOKEN_TTL_SECONDS');
    expectRejected({ UPLOAD_MAX_BYTES: '0' }, 'UPLOAD_MAX_BYTES');
    expect(loadConfig({ PROXY_TOKEN_TTL_SECONDS: '0' }).proxyTokenTtlSeconds).toBe(0);
  });

  it('reads the local variant bounds (VARIANT_*), naming the variable when one is bad', () => {
    const c = loadConfig({});
    // One render per core, leaving a libuv thread (4 by default) for file reads.
    expect(c.variantConcurrency).toBeGreaterThanOrEqual(1);
    expect(c.variantConcurrency).toBeLessThanOrEqual(3);
    expect([c.variantQueueMax, c.variantTimeoutSeconds]).toEqual([64, 20]);
    expect(loadConfig({ UV_THREADPOOL_SIZE: '2' }).variantConcurrency).toBe(1);
    expect(
      loadConfig({ VARIANT_CONCURRENCY: '6', VARIANT_QUEUE_MAX: '0', VARIANT_TIMEOUT_SECONDS: '5' }),
    ).toMatchObject({ variantConcurrency: 6, variantQueueMax: 0, variantTimeoutSeconds: 5 });
    for (const v of ['0', 'two', '257']) expectRejected({ VARIANT_CONCURRENCY: v }, 'VARIANT_CONCURRENCY');
    for (const v of ['-1', 'many']) expectRejected({ VARIANT_QUEUE_MAX: v }, 'VARIANT_QUEUE_MAX');
    for (const v of ['0', '601', '1.5'])
      expectRejected({ VARIANT_TIMEOUT_SECONDS: v }, 'VARIANT_TIMEOUT_SECONDS');
  });
});
