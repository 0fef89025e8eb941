import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from './config.js';

type Env = Record<string, string>;

const S3: Env = {
  STORAGE_DRIVER: 's3',
  S3_BUCKET: 'signet-images',
  S3_REGION: 'eu-west-1',
  S3_ACCESS_KEY_ID: 'AKIAEXAMPLE',
  S3_SECRET_ACCESS_KEY: 'example/secret+key',
};

function rejectedVariable(env: Env): ConfigError {
  try {
    loadConfig(env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    const e = err as ConfigError;
    // The message a user sees at start-up names the variable.
    expect(e.message.startsWith(`${e.variable}: `)).toBe(true);
    return e;
  }
  throw new Error(`loadConfig accepted ${JSON.stringify(env)}`);
}

describe('STORAGE_DRIVER=s3', () => {
  it('reads an AWS bucket: the region’s endpoint, virtual-hosted, the same public endpoint', () => {
    const c = loadConfig(S3);
    expect(c.storageDriver).toBe('s3');
    expect(c.s3).toEqual({
      bucket: 'signet-images',
      region: 'eu-west-1',
      endpoint: 'https://s3.eu-west-1.amazonaws.com',
      publicEndpoint: 'https://s3.eu-west-1.amazonaws.com',
      forcePathStyle: false,
      accessKeyId: 'AKIAEXAMPLE',
      secretAccessKey: 'example/secret+key',
      sessionToken: undefined,
      timeoutMs: 10_000,
      putMinBytesPerSecond: 256 * 1024,
    });
  });

  it('reads a MinIO-style endpoint with a public one for browsers, path-style and a session token', () => {
    const c = loadConfig({
      ...S3,
      S3_REGION: '',
      S3_ENDPOINT: 'http://minio:9000/',
      S3_PUBLIC_ENDPOINT: 'https://images.example.com',
      S3_FORCE_PATH_STYLE: 'true',
      S3_SESSION_TOKEN: 'tok',
    });
    expect(c.s3).toMatchObject({
      region: 'us-east-1',
      endpoint: 'http://minio:9000',
      publicEndpoint: 'https://images.example.com',
      forcePathStyle: true,
      sessionToken: 'tok',
    });
  });

  it('ignores S3_* with another driver', () => {
    expect(loadConfig({ S3_ENDPOINT: 'not a url', S3_FORCE_PATH_STYLE: 'maybe' }).s3).toBeUndefined();
  });

  it('stops start-up naming the variable for each bad or missing value', () => {
    const cases: [Env, string][] = [
      [{ ...S3, S3_BUCKET: '' }, 'S3_BUCKET'],
      [{ ...S3, S3_BUCKET: 'no/slash' }, 'S3_BUCKET'],
      [{ ...S3, S3_BUCKET: '10.0.0.1' }, 'S3_BUCKET'],
      [{ ...S3, S3_BUCKET: 'fast--usw2-az1--x-s3' }, 'S3_BUCKET'],
      [{ ...S3, S3_REGION: '' }, 'S3_REGION'],
      [{ ...S3, S3_REGION: 'EU West' }, 'S3_REGION'],
      [{ ...S3, S3_ENDPOINT: 'minio:9000' }, 'S3_ENDPOINT'],
      [{ ...S3, S3_ENDPOINT: 'not a url' }, 'S3_ENDPOINT'],
      [{ ...S3, S3_ENDPOINT: 'ftp://minio' }, 'S3_ENDPOINT'],
      [{ ...S3, S3_ENDPOINT: 'https://minio/base' }, 'S3_ENDPOINT'],
      [{ ...S3, S3_ENDPOINT: 'https://user:pw@minio' }, 'S3_ENDPOINT'],
      [{ ...S3, S3_PUBLIC_ENDPOINT: 'https://cdn.example?x=1' }, 'S3_PUBLIC_ENDPOINT'],
      [{ ...S3, S3_FORCE_PATH_STYLE: 'yes' }, 'S3_FORCE_PATH_STYLE'],
      [{ ...S3, S3_ACCESS_KEY_ID: '' }, 'S3_ACCESS_KEY_ID'],
      [{ ...S3, S3_SECRET_ACCESS_KEY: ' ' }, 'S3_SECRET_ACCESS_KEY'],
      [{ ...S3, STORAGE_DRIVER: 's4' }, 'STORAGE_DRIVER'],
    ];
    for (const [env, variable] of cases) {
      expect(rejectedVariable(env).variable, JSON.stringify(env)).toBe(variable);
    }
  });

  it('refuses IMAGE_TRANSFORMS=any with s3, saying why', () => {
    const err = rejectedVariable({ ...S3, IMAGE_TRANSFORMS: 'any' });
    expect(err.variable).toBe('IMAGE_TRANSFORMS');
    expect(err.message).toMatch(/STORAGE_DRIVER=s3/);
    expect(err.message).toMatch(/presets/);
    expect(loadConfig({ ...S3, IMAGE_TRANSFORMS: 'presets' }).storageDriver).toBe('s3');
  });

  it('gives the orphan sweep a grace longer than the largest s3 put', () => {
    expect(rejectedVariable({ ...S3, ORPHAN_SWEEP_GRACE_SECONDS: '60' }).variable).toBe(
      'ORPHAN_SWEEP_GRACE_SECONDS',
    );
  });

  it("names the s3 driver's fixed put deadline, not the COS_* settings that do nothing on s3", () => {
    const err = rejectedVariable({ ...S3, ORPHAN_SWEEP_GRACE_SECONDS: '60' });
    expect(err.message).not.toMatch(/COS_/);
    expect(err.message).toMatch(/fixed 10 s/);
    expect(err.message).toMatch(/256 KiB\/s/);
    expect(err.message).toMatch(/UPLOAD_MAX_BYTES/);
  });
});
