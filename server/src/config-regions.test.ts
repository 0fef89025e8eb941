import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from './config.js';
import { createRegionStorages, createStorage } from './container.js';
import type { Storage } from './storage/storage.js';

type Env = Record<string, string>;

const COS: Env = {
  STORAGE_DRIVER: 'cos',
  COS_SECRET_ID: 'AKIDexample',
  COS_SECRET_KEY: 'example-key',
  COS_BUCKET: 'photos-gz-1250000000',
  COS_REGION: 'ap-guangzhou',
};
const REGIONS: Env = {
  ...COS,
  SIGNET_REGION: 'ap-guangzhou',
  STORAGE_REGIONS: 'ap-guangzhou=photos-gz-1250000000, ap-singapore=photos-sg-1250000000@cos.sg.example:9000',
};

function rejected(env: Env, variable: string): string {
  try {
    loadConfig(env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).variable).toBe(variable);
    expect((err as Error).message.startsWith(`${variable}: `)).toBe(true);
    return (err as Error).message;
  }
  throw new Error(`loadConfig accepted ${JSON.stringify(env)}`);
}

describe('regions config (SIGNET_REGION, STORAGE_REGIONS, REPLICATION_DELAY_SECONDS)', () => {
  it('is absent without them: one region, as before', () => {
    expect(loadConfig(COS).regions).toBeUndefined();
    expect(loadConfig({}).regions).toBeUndefined();
  });

  it('parses the regions, their buckets and endpoints, in order', () => {
    const c = loadConfig({ ...REGIONS, REPLICATION_DELAY_SECONDS: '900' });
    expect(c.regions).toEqual({
      self: 'ap-guangzhou',
      buckets: [
        { name: 'ap-guangzhou', bucket: 'photos-gz-1250000000', host: undefined },
        { name: 'ap-singapore', bucket: 'photos-sg-1250000000', host: 'cos.sg.example:9000' },
      ],
      replicationDelaySeconds: 900,
    });
    expect(loadConfig(REGIONS).regions?.replicationDelaySeconds).toBeUndefined();
  });

  it('stops start-up on bad values, naming the variable', () => {
    rejected({ ...COS, SIGNET_REGION: 'a' }, 'STORAGE_REGIONS');
    rejected({ ...COS, STORAGE_REGIONS: 'a=b' }, 'SIGNET_REGION');
    rejected({ ...COS, REPLICATION_DELAY_SECONDS: '5' }, 'REPLICATION_DELAY_SECONDS');
    expect(rejected({ ...REGIONS, SIGNET_REGION: 'eu-west-1' }, 'SIGNET_REGION')).toContain(
      'not a region of STORAGE_REGIONS',
    );
    expect(
      rejected(
        { ...REGIONS, STORAGE_REGIONS: 'ap-guangzhou=photos-gz-1250000000,ap-guangzhou=other-1' },
        'STORAGE_REGIONS',
      ),
    ).toContain('named twice');
    expect(
      rejected(
        { ...REGIONS, STORAGE_REGIONS: 'ap-guangzhou=photos-gz-1250000000,ap-singapore=' },
        'STORAGE_REGIONS',
      ),
    ).toContain('bucket is empty');
    rejected({ ...REGIONS, STORAGE_REGIONS: 'ap-guangzhou' }, 'STORAGE_REGIONS');
    rejected({ ...REGIONS, STORAGE_REGIONS: 'AP=photos-gz-1250000000' }, 'STORAGE_REGIONS');
    rejected(
      { ...REGIONS, STORAGE_REGIONS: 'ap-guangzhou=photos-gz-1250000000@http://x/' },
      'STORAGE_REGIONS',
    );
    rejected({ ...REGIONS, STORAGE_REGIONS: ' , ' }, 'STORAGE_REGIONS');
    rejected({ ...REGIONS, REPLICATION_DELAY_SECONDS: '-1' }, 'REPLICATION_DELAY_SECONDS');
    rejected({ ...REGIONS, REPLICATION_DELAY_SECONDS: '1e3' }, 'REPLICATION_DELAY_SECONDS');
  });

  it("refuses an entry for this node's region that is not the driver's bucket or endpoint", () => {
    expect(rejected({ ...REGIONS, COS_BUCKET: 'other-1250000000' }, 'STORAGE_REGIONS')).toContain(
      'COS_BUCKET',
    );
    expect(
      rejected(
        {
          ...REGIONS,
          STORAGE_REGIONS: 'ap-guangzhou=photos-gz-1250000000@elsewhere:1,ap-singapore=photos-sg-1250000000',
        },
        'STORAGE_REGIONS',
      ),
    ).toContain('COS_DOMAIN');
    const own = loadConfig({
      ...REGIONS,
      COS_DOMAIN: '127.0.0.1:9000',
      STORAGE_REGIONS: 'ap-guangzhou=photos-gz-1250000000@127.0.0.1:9000,ap-singapore=photos-sg-1250000000',
    });
    expect(own.regions?.buckets[0]?.host).toBe('127.0.0.1:9000');
  });

  it('needs a bucket driver (the local folder is one bucket)', () => {
    expect(rejected({ SIGNET_REGION: 'a', STORAGE_REGIONS: 'a=one,b=two' }, 'STORAGE_REGIONS')).toContain(
      'STORAGE_DRIVER',
    );
  });
});

describe("each region's bucket (createRegionStorages)", () => {
  const window = { start: 1_800_000_000, end: 1_800_003_600 };
  const hostOf = (s: Storage | undefined) =>
    new URL(s!.urlFor('u/a/1.png', { ...window, sig: s!.signMany(['u/a/1.png'], window)[0]! })).host;

  it('cos: the region name is the cloud region without @host; @host is the endpoint', () => {
    const config = loadConfig({
      ...REGIONS,
      STORAGE_REGIONS:
        'ap-guangzhou=photos-gz-1250000000,ap-singapore=photos-sg-1250000000,eu=photos-eu-1250000000@cos.eu.example:9000',
    });
    const own = createStorage(config);
    const all = createRegionStorages(config, own);
    expect(all.get('ap-guangzhou')).toBe(own);
    expect(hostOf(own)).toBe('photos-gz-1250000000.cos.ap-guangzhou.myqcloud.com');
    expect(hostOf(all.get('ap-singapore'))).toBe('photos-sg-1250000000.cos.ap-singapore.myqcloud.com');
    expect(hostOf(all.get('eu'))).toBe('cos.eu.example:9000');
  });

  it('s3: the regional endpoint on AWS, a custom endpoint kept for every bucket', () => {
    const s3 = {
      STORAGE_DRIVER: 's3',
      S3_BUCKET: 'photos-eu',
      S3_REGION: 'eu-west-1',
      S3_ACCESS_KEY_ID: 'AKIAEXAMPLE',
      S3_SECRET_ACCESS_KEY: 'secret',
      SIGNET_REGION: 'eu-west-1',
      STORAGE_REGIONS: 'eu-west-1=photos-eu,us-east-2=photos-us',
    };
    const aws = loadConfig(s3);
    const onAws = createRegionStorages(aws, createStorage(aws));
    expect(hostOf(onAws.get('eu-west-1'))).toBe('photos-eu.s3.eu-west-1.amazonaws.com');
    expect(hostOf(onAws.get('us-east-2'))).toBe('photos-us.s3.us-east-2.amazonaws.com');
    const minio = loadConfig({
      ...s3,
      S3_ENDPOINT: 'http://minio.example:9000',
      S3_FORCE_PATH_STYLE: 'true',
    });
    const onMinio = createRegionStorages(minio, createStorage(minio));
    const url = onMinio
      .get('us-east-2')!
      .urlFor('k', { ...window, sig: onMinio.get('us-east-2')!.signMany(['k'], window)[0]! });
    expect(new URL(url).host).toBe('minio.example:9000');
    expect(new URL(url).pathname).toBe('/photos-us/k');
  });

  it('one region: none', () => {
    const config = loadConfig(COS);
    expect(createRegionStorages(config, createStorage(config)).size).toBe(0);
  });
});
