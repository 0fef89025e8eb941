import { Sha256 } from '@aws-crypto/sha256-js';
import { GetObjectCommand, HeadObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { SignatureV4 } from '@smithy/signature-v4';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createS3Storage } from '../../src/storage/s3.js';
import { OBJECT_CACHE_CONTROL, type SignWindow, type Storage } from '../../src/storage/storage.js';
import { type S3Fixture, startS3Fixture } from '../fixtures/s3-fixture.js';
import { TEST_S3 } from '../support/env.js';

// The verifying front is what makes the s3 driver's tests mean anything: s3rver alone accepts
// any V4 signature. These tests pin down what the front refuses and what it lets through.

let fixture: S3Fixture;
let skewMs = 0;
const nowSeconds = () => Math.floor(Date.now() / 1000);
const validWindow = (): SignWindow => ({ start: nowSeconds() - 1, end: nowSeconds() + 600 });

function sdk(secretAccessKey: string = TEST_S3.secretAccessKey, sessionToken?: string): S3Client {
  return new S3Client({
    region: TEST_S3.region,
    endpoint: fixture.url,
    forcePathStyle: true,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    maxAttempts: 1,
    credentials: {
      accessKeyId: TEST_S3.accessKeyId,
      secretAccessKey,
      ...(sessionToken ? { sessionToken } : {}),
    },
  });
}

function driver(secretAccessKey: string = TEST_S3.secretAccessKey): Storage {
  return createS3Storage({
    ...TEST_S3,
    secretAccessKey,
    endpoint: fixture.url,
    forcePathStyle: true,
    timeoutMs: 3_000,
  });
}

function productUrl(s: Storage, key: string, w = validWindow()): string {
  const [sig] = s.signMany([key], w);
  return s.urlFor(key, { ...w, sig: sig! });
}

/** One hex digit of X-Amz-Signature changed. */
function tamperSignature(url: string): string {
  return url.replace(
    /X-Amz-Signature=([0-9a-f])/,
    (_m, c: string) => `X-Amz-Signature=${c === 'a' ? 'b' : 'a'}`,
  );
}

async function expectRefused(url: string, code: string, init?: RequestInit): Promise<void> {
  const res = await fetch(url, init);
  expect(res.status, url).toBe(403);
  expect(res.headers.get('content-type')).toBe('application/xml');
  const text = await res.text();
  expect(text).toMatch(/^<\?xml version="1.0" encoding="UTF-8"\?>\n<Error><Code>/);
  expect(text).toContain(`<Code>${code}</Code>`);
}

beforeAll(async () => {
  fixture = await startS3Fixture({ ...TEST_S3, now: () => Date.now() + skewMs });
});

beforeEach(async () => {
  await fixture.reset();
  skewMs = 0;
});

afterAll(async () => {
  await fixture?.close();
});

describe('s3 fixture: a SigV4-verifying front over s3rver', () => {
  it('accepts the SDK’s own presigned URL and the product’s, and both fetch the object', async () => {
    const key = 'dir/a b+c%d~e*é.jpg';
    await sdk().send(
      new PutObjectCommand({
        Bucket: TEST_S3.bucket,
        Key: key,
        Body: Buffer.from('pixels'),
        ContentType: 'image/jpeg',
      }),
    );
    const w = validWindow();
    const theirs = await getSignedUrl(
      sdk(),
      new GetObjectCommand({ Bucket: TEST_S3.bucket, Key: key, ResponseCacheControl: OBJECT_CACHE_CONTROL }),
      { signingDate: new Date(w.start * 1000), expiresIn: w.end - w.start },
    );
    const ours = productUrl(driver(), key, w);
    expect(ours).toBe(theirs);
    // Another SDK URL without the cache param (a different signed query) is accepted too.
    const plain = await getSignedUrl(sdk(), new GetObjectCommand({ Bucket: TEST_S3.bucket, Key: key }), {
      expiresIn: 60,
    });
    for (const url of [theirs, plain]) {
      const res = await fetch(url);
      expect(res.status).toBe(200);
      expect(await res.text()).toBe('pixels');
    }
    const withParam = await fetch(ours);
    expect(withParam.headers.get('cache-control')).toBe(OBJECT_CACHE_CONTROL);
    await withParam.arrayBuffer();
    expect(fixture.signatureFailures).toBe(0);
    // Every request (the put, three GETs) had its signature recomputed.
    expect(fixture.signatureChecks).toBe(fixture.requests.total);
  });

  it('refuses a tampered URL that s3rver alone would serve', async () => {
    await driver().put('p.jpg', Buffer.from('pixels'), 'image/jpeg');
    await driver().put('other.jpg', Buffer.from('other'), 'image/jpeg');
    const url = productUrl(driver(), 'p.jpg');
    const tampered = [
      tamperSignature(url),
      url.replace('/p.jpg?', '/other.jpg?'),
      url.replace(/response-cache-control=[^&]*/, 'response-cache-control=no-store'),
      url.replace(/&response-cache-control=[^&]*/, ''),
      url.replace(/X-Amz-Expires=\d+/, 'X-Amz-Expires=604800'),
      `${url}&x-extra=1`,
    ];
    for (const t of tampered) {
      expect(t).not.toBe(url);
      await expectRefused(t, 'SignatureDoesNotMatch');
    }
    expect(fixture.signatureFailures).toBe(tampered.length);
    // Why the front exists: straight to s3rver, the tampered signature fetches the object.
    const direct = tamperSignature(url).replace(fixture.url, fixture.backendUrl);
    const res = await fetch(direct);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('pixels');
  });

  it('refuses URLs and requests signed with a wrong secret, and requests without a signature', async () => {
    await driver().put('w.jpg', Buffer.from('x'), 'image/jpeg');
    await expectRefused(productUrl(driver('not-the-secret'), 'w.jpg'), 'SignatureDoesNotMatch');
    const wrongSdk = await getSignedUrl(
      sdk('not-the-secret'),
      new GetObjectCommand({ Bucket: TEST_S3.bucket, Key: 'w.jpg' }),
      { expiresIn: 60 },
    );
    await expectRefused(wrongSdk, 'SignatureDoesNotMatch');
    // The header form too: the SDK's own request with a wrong secret.
    await expect(
      sdk('not-the-secret').send(new HeadObjectCommand({ Bucket: TEST_S3.bucket, Key: 'w.jpg' })),
    ).rejects.toMatchObject({
      $metadata: { httpStatusCode: 403 },
    });
    await expect(
      sdk('not-the-secret').send(
        new PutObjectCommand({ Bucket: TEST_S3.bucket, Key: 'w2.jpg', Body: Buffer.from('y') }),
      ),
    ).rejects.toMatchObject({ name: 'SignatureDoesNotMatch' });
    expect(await fixture.stored('w2.jpg')).toBeUndefined();
    await expectRefused(`${fixture.url}/${TEST_S3.bucket}/w.jpg`, 'AccessDenied');
    await expectRefused(`${fixture.url}/${TEST_S3.bucket}/w.jpg`, 'SignatureDoesNotMatch', {
      headers: {
        authorization: `AWS4-HMAC-SHA256 Credential=${TEST_S3.accessKeyId}/20260101/${TEST_S3.region}/s3/aws4_request, SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature=${'0'.repeat(64)}`,
        'x-amz-date': '20260101T000000Z',
        'x-amz-content-sha256': 'UNSIGNED-PAYLOAD',
      },
    });
  });

  it('refuses an expired URL (X-Amz-Date + X-Amz-Expires past) with AccessDenied', async () => {
    await driver().put('e.jpg', Buffer.from('x'), 'image/jpeg');
    const past = { start: nowSeconds() - 7200, end: nowSeconds() - 3600 };
    const expired = productUrl(driver(), 'e.jpg', past);
    const res = await fetch(expired);
    expect(res.status).toBe(403);
    const text = await res.text();
    expect(text).toContain('<Code>AccessDenied</Code>');
    expect(text).toContain('Request has expired');
    // A valid URL stops working once the front's clock passes its end.
    const url = productUrl(driver(), 'e.jpg', { start: nowSeconds() - 1, end: nowSeconds() + 60 });
    expect((await fetch(url)).status).toBe(200);
    skewMs = 62_000;
    await expectRefused(url, 'AccessDenied');
    expect(fixture.signatureFailures).toBe(0);
  });

  it('checks a signed payload hash against the body', async () => {
    // A buffer body is hashed by the SDK (x-amz-content-sha256 is its SHA-256): the front checks it.
    await sdk().send(
      new PutObjectCommand({ Bucket: TEST_S3.bucket, Key: 'h.bin', Body: Buffer.from('hashed') }),
    );
    expect((await fixture.stored('h.bin'))?.toString()).toBe('hashed');
    expect(fixture.payloadsVerified).toBe(1);

    // Correctly signed, but the body is not the one whose hash was signed.
    const signer = new SignatureV4({
      credentials: TEST_S3,
      region: TEST_S3.region,
      service: 's3',
      sha256: Sha256,
      uriEscapePath: false,
    });
    const url = new URL(`${fixture.url}/${TEST_S3.bucket}/swapped.bin`);
    const signed = await signer.sign({
      method: 'PUT',
      protocol: 'http:',
      hostname: url.hostname,
      port: Number(url.port),
      path: url.pathname,
      query: {},
      headers: { host: url.host, 'content-type': 'application/octet-stream' },
      body: 'what was signed',
    });
    const res = await fetch(url, { method: 'PUT', headers: signed.headers, body: 'something else!' });
    expect(res.status).toBe(400);
    expect(await res.text()).toContain('<Code>XAmzContentSHA256Mismatch</Code>');
    expect(await fixture.stored('swapped.bin')).toBeUndefined();
    // The same request with its own body goes through.
    const ok = await fetch(url, { method: 'PUT', headers: signed.headers, body: 'what was signed' });
    expect(ok.status).toBe(200);
    expect((await fixture.stored('swapped.bin'))?.toString()).toBe('what was signed');
  });
});

describe('s3 fixture with a session token', () => {
  let tokenFixture: S3Fixture;
  const token = 'FwoGZXIvYXdzEJr//////////wEaDH+token=';

  beforeAll(async () => {
    tokenFixture = await startS3Fixture({ ...TEST_S3, sessionToken: token });
  });

  afterAll(async () => {
    await tokenFixture?.close();
  });

  it('wants the token signed in: URLs with it fetch, URLs without it or with another are refused', async () => {
    const withToken = createS3Storage({
      ...TEST_S3,
      sessionToken: token,
      endpoint: tokenFixture.url,
      forcePathStyle: true,
    });
    await withToken.put('t.jpg', Buffer.from('token'), 'image/jpeg');
    const url = productUrl(withToken, 't.jpg');
    expect(url).toContain(
      `&X-Amz-Security-Token=${encodeURIComponent(token).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)}&`,
    );
    const res = await fetch(url);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('token');
    await expectRefused(url.replace(/&X-Amz-Security-Token=[^&]*/, ''), 'SignatureDoesNotMatch');
    const noToken = createS3Storage({ ...TEST_S3, endpoint: tokenFixture.url, forcePathStyle: true });
    await expectRefused(productUrl(noToken, 't.jpg'), 'SignatureDoesNotMatch');
    await expect(noToken.head('t.jpg')).rejects.toMatchObject({ kind: 'unavailable' });
  });
});
