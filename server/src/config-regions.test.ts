import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from './config.js';

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
