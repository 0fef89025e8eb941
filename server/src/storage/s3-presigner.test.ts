import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  amzDate,
  awsEndpoint,
  createS3Presigner,
  MAX_PRESIGN_SECONDS,
  type S3PresignerOptions,
  s3Base,
} from './s3-presigner.js';
import { OBJECT_CACHE_CONTROL, type SignWindow } from './storage.js';

const credentials = {
  accessKeyId: 'AKIAIOSFODNN7EXAMPLE',
  secretAccessKey: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY',
};
const sessionToken = 'IQoJb3JpZ2luX2VjEJr//////////wEaCXVzLWVhc3QtMSJHMEUCIQ+abc/def=';

/** The SDK's presigner for the same inputs (its client configured like the driver's). */
function sdkClient(o: S3PresignerOptions): S3Client {
  return new S3Client({
    region: o.region,
    endpoint: o.endpoint,
    forcePathStyle: o.forcePathStyle,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    credentials: {
      accessKeyId: o.accessKeyId,
      secretAccessKey: o.secretAccessKey,
      ...(o.sessionToken ? { sessionToken: o.sessionToken } : {}),
    },
  });
}

function sdkUrl(client: S3Client, bucket: string, key: string, w: SignWindow): Promise<string> {
  return getSignedUrl(
    client,
    new GetObjectCommand({ Bucket: bucket, Key: key, ResponseCacheControl: OBJECT_CACHE_CONTROL }),
    { signingDate: new Date(w.start * 1000), expiresIn: w.end - w.start },
  );
}

function ours(o: S3PresignerOptions, key: string, w: SignWindow): string {
  const p = createS3Presigner(o);
  const [sig] = p.signMany([key], w);
  return p.urlFor(key, { ...w, sig: sig! });
}

/** Keys that need encoding: the characters S3 keys meet in practice, and any unicode. */
const awkward = fc.constantFrom(
  ' ',
  '+',
  '%',
  '/',
  '~',
  '*',
  "'",
  '(',
  ')',
  '!',
  '&',
  '=',
  '?',
  '#',
  ':',
  '@',
  ',',
  ';',
  '$',
  '[',
  ']',
  '\\',
  '"',
  '<',
  '>',
  '^',
  '`',
  '{',
  '|',
  '}',
  '.',
  '..',
  '%2F',
  '%20',
  'é',
  '相册',
  '€',
  '😀',
  '\u00a0',
  '\t',
);
const keyArb = fc
  .oneof(
    { weight: 4, arbitrary: fc.array(fc.oneof(awkward, fc.string({ unit: 'grapheme' })), { maxLength: 30 }) },
    // Very long keys (S3 allows 1024 bytes).
    {
      weight: 1,
      arbitrary: fc.array(fc.oneof(awkward, fc.string({ unit: 'grapheme', minLength: 50 })), {
        minLength: 10,
        maxLength: 20,
      }),
    },
  )
  .map((parts) => `k${parts.join('')}`)
  .filter((k) => !k.startsWith('/') && Buffer.byteLength(k) <= 1024);
const windowArb = fc
  .record({
    start: fc.integer({ min: 1_600_000_000, max: 2_000_000_000 }),
    ttl: fc.integer({ min: 1, max: MAX_PRESIGN_SECONDS }),
  })
  .map(({ start, ttl }) => ({ start, end: start + ttl }));

const configs: { name: string; opts: S3PresignerOptions }[] = [];
for (const token of [undefined, sessionToken]) {
  const t = token ? ' + session token' : '';
  configs.push(
    {
      name: `virtual-hosted, custom endpoint${t}`,
      opts: {
        ...credentials,
        sessionToken: token,
        bucket: 'signet-images',
        region: 'eu-central-1',
        endpoint: 'https://storage.example.test',
        forcePathStyle: false,
      },
    },
    {
      name: `path-style, endpoint with a port${t}`,
      opts: {
        ...credentials,
        sessionToken: token,
        bucket: 'signet-images',
        region: 'us-east-1',
        endpoint: 'http://127.0.0.1:9000',
        forcePathStyle: true,
      },
    },
  );
}

describe('s3 presigner: byte-identical to @aws-sdk/s3-request-presigner', () => {
  for (const { name, opts } of configs) {
    it(`${name}: 5,000 random keys and windows`, async () => {
      const client = sdkClient(opts);
      const presigner = createS3Presigner(opts);
      const samples = fc.sample(fc.tuple(keyArb, windowArb), { numRuns: 5_000, seed: 18 });
      expect(samples.length).toBe(5_000);
      for (let i = 0; i < samples.length; i += 250) {
        const chunk = samples.slice(i, i + 250);
        const expected = await Promise.all(chunk.map(([k, w]) => sdkUrl(client, opts.bucket, k, w)));
        chunk.forEach(([k, w], j) => {
          const [sig] = presigner.signMany([k], w);
          expect(presigner.urlFor(k, { ...w, sig: sig! })).toBe(expected[j]);
        });
      }
    }, 300_000); // the SDK presigns ~1 ms a URL; a busy CI machine is slower
  }

  it('signs a whole batch like one key at a time (one window, many keys)', async () => {
    const opts = configs[0]!.opts;
    const client = sdkClient(opts);
    const presigner = createS3Presigner(opts);
    const keys = fc.sample(keyArb, { numRuns: 200, seed: 7 });
    const w = { start: 1_767_225_600, end: 1_767_229_200 };
    const sigs = presigner.signMany(keys, w);
    for (const [i, k] of keys.entries()) {
      expect(presigner.urlFor(k, { ...w, sig: sigs[i]! })).toBe(await sdkUrl(client, opts.bucket, k, w));
    }
  });

  it('addresses buckets where the SDK does: AWS default, dotted names, IPs, R2-style hosts', async () => {
    const cases: Partial<S3PresignerOptions>[] = [
      { endpoint: awsEndpoint('eu-west-1'), region: 'eu-west-1', forcePathStyle: false },
      { endpoint: awsEndpoint('eu-west-1'), region: 'eu-west-1', forcePathStyle: true },
      { endpoint: awsEndpoint('ap-south-1'), region: 'ap-south-1', bucket: 'dotted.bucket.name' },
      { endpoint: 'http://localhost:9000', region: 'us-east-1' },
      { endpoint: 'http://[::1]:9000', region: 'us-east-1' },
      { endpoint: 'https://minio.test:443', region: 'us-east-1' },
      { endpoint: 'https://minio.test', region: 'us-east-1', bucket: 'Upper' },
      { endpoint: 'https://0123abcd.r2.cloudflarestorage.com', region: 'auto' },
      { endpoint: 'https://cos.ap-guangzhou.myqcloud.com', region: 'ap-guangzhou', bucket: 'b-1250000000' },
    ];
    const w = { start: 1_767_225_600, end: 1_767_312_000 };
    for (const c of cases) {
      const opts: S3PresignerOptions = {
        ...credentials,
        bucket: 'signet-images',
        forcePathStyle: false,
        region: 'us-east-1',
        endpoint: '',
        ...c,
      };
      expect(ours(opts, 'dir/a b+c.jpg', w)).toBe(
        await sdkUrl(sdkClient(opts), opts.bucket, 'dir/a b+c.jpg', w),
      );
    }
    // Without an endpoint of its own, the SDK resolves the same AWS host.
    const noEndpoint = new S3Client({
      region: 'eu-west-1',
      credentials,
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
    expect(await sdkUrl(noEndpoint, 'signet-images', 'x', w)).toBe(
      ours(
        {
          ...credentials,
          bucket: 'signet-images',
          region: 'eu-west-1',
          endpoint: awsEndpoint('eu-west-1'),
          forcePathStyle: false,
        },
        'x',
        w,
      ),
    );
  });

  it('signs for the host it is given, so a URL for the public host does not verify for another', () => {
    const base = configs[0]!.opts;
    const w = { start: 1_767_225_600, end: 1_767_229_200 };
    const a = createS3Presigner({ ...base, endpoint: 'https://public.example.test' });
    const b = createS3Presigner({ ...base, endpoint: 'https://internal.example.test' });
    expect(a.signMany(['k'], w)).not.toEqual(b.signMany(['k'], w));
    expect(s3Base({ ...base, endpoint: 'https://public.example.test' }).host).toBe(
      'signet-images.public.example.test',
    );
  });

  it('signs a window longer than SigV4’s week as the week that ends with it; refuses an empty one', () => {
    // The grid back-dates a window by a minute: URL_TTL_SECONDS=604800 makes it 604,860 s long.
    const p = createS3Presigner(configs[0]!.opts);
    const end = 1_767_225_600 + MAX_PRESIGN_SECONDS + 60;
    const over = { start: 1_767_225_600, end };
    const week = { start: end - MAX_PRESIGN_SECONDS, end };
    const [sig] = p.signMany(['k'], over);
    expect(sig).toBe(p.signMany(['k'], week)[0]);
    const url = new URL(p.urlFor('k', { start: over.start, end, sig: sig! }));
    expect(url.searchParams.get('X-Amz-Expires')).toBe(String(MAX_PRESIGN_SECONDS));
    expect(url.searchParams.get('X-Amz-Date')).toBe(amzDate(week.start));
    expect(() => p.signMany(['k'], { start: 1_767_225_600, end: 1_767_225_600 })).toThrow(/7 days/);
    expect(
      p.signMany(['k'], { start: 1_767_225_600, end: 1_767_225_600 + MAX_PRESIGN_SECONDS }),
    ).toHaveLength(1);
  });

  it('formats X-Amz-Date as SigV4 wants it', () => {
    expect(amzDate(1_700_000_000)).toBe('20231114T221320Z');
    expect(amzDate(0)).toBe('19700101T000000Z');
  });
});
