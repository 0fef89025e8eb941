import { request } from 'node:http';
import COS from 'cos-nodejs-sdk-v5';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createCosStorage } from '../../src/storage/cos.js';
import { type CosFixture, startCosFixture } from '../fixtures/cos-fixture.js';
import {
  asAuthorization,
  asQuery,
  encodeKeyForUrl,
  type ReferenceSignInput,
  referenceSign,
} from '../fixtures/cos-reference-signer.js';

const secretId = 'AKIDsignetFixture000000000000000';
const secretKey = 'signetFixtureSecretKey0000000000';

// The sample account and the two signed requests of Tencent's request-signature document.
const doc = {
  secretId: 'AKIDQjz3ltompVjBni5LitkWHFlFpwkn9U5q',
  secretKey: 'BQYIM75p8x0iWVFSIgqEKwFprpRSVHlz',
  host: 'examplebucket-1250000000.cos.ap-beijing.myqcloud.com',
  // The English page prints the key translated; the signatures are over the original name.
  path: '/exampleobject(腾讯云)',
  rawPath: '/exampleobject(%E8%85%BE%E8%AE%AF%E4%BA%91)',
};
const docPut = {
  keyTime: '1557989151;1557996351',
  headers: {
    Date: 'Thu, 16 May 2019 06:45:51 GMT',
    Host: doc.host,
    'Content-Type': 'text/plain',
    'Content-Length': '13',
    'Content-MD5': 'mQ/fVh815F3k6TAUm8m0eg==',
    'x-cos-acl': 'private',
    'x-cos-grant-read': 'uin="100000000011"',
  },
  authorization:
    'q-sign-algorithm=sha1&q-ak=AKIDQjz3ltompVjBni5LitkWHFlFpwkn9U5q&q-sign-time=1557989151;1557996351' +
    '&q-key-time=1557989151;1557996351&q-header-list=content-length;content-md5;content-type;date;host;' +
    'x-cos-acl;x-cos-grant-read&q-url-param-list=&q-signature=3b8851a11a569213c17ba8fa7dcf2abec6935172',
};
const docGet = {
  keyTime: '1557989753;1557996953',
  query: 'response-content-type=application%2Foctet-stream&response-cache-control=max-age%3D600',
  params: { 'response-content-type': 'application/octet-stream', 'response-cache-control': 'max-age=600' },
  headers: { Date: 'Thu, 16 May 2019 06:55:53 GMT', Host: doc.host },
  authorization:
    'q-sign-algorithm=sha1&q-ak=AKIDQjz3ltompVjBni5LitkWHFlFpwkn9U5q&q-sign-time=1557989753;1557996953' +
    '&q-key-time=1557989753;1557996953&q-header-list=date;host' +
    '&q-url-param-list=response-cache-control;response-content-type' +
    '&q-signature=01681b8c9d798a678e43b685a9f1bba0f6c0e012',
};

let fixture: CosFixture;
/** Added to the fixture's clock. */
let skewMs = 0;

const nowSeconds = () => Math.floor(Date.now() / 1000);
const currentKeyTime = () => `${nowSeconds() - 1};${nowSeconds() + 600}`;

function put(key: string, text: string): void {
  fixture.objects.set(key, {
    body: Buffer.from(text),
    contentType: 'text/plain',
    etag: '"e"',
    lastModified: new Date(),
  });
}

/** A reference signature for a GET of `key` on the fixture, signing Host unless told otherwise. */
function signGet(key: string, over: Partial<ReferenceSignInput> = {}) {
  return referenceSign({
    secretId,
    secretKey,
    method: 'GET',
    path: `/${key}`,
    headers: { host: fixture.host },
    keyTime: currentKeyTime(),
    ...over,
  });
}

function presigned(key: string, over: Partial<ReferenceSignInput> = {}): string {
  return `${fixture.url}${encodeKeyForUrl(key)}?${asQuery(signGet(key, over))}`;
}

/** Replaces one q-* field of a presigned URL, the rest left byte for byte. */
function withField(url: string, name: string, value: string): string {
  const u = new URL(url);
  const fields = u.search
    .slice(1)
    .split('&')
    .map((part) => (part.startsWith(`${name}=`) ? `${name}=${encodeURIComponent(value)}` : part));
  expect(fields.some((f) => f.startsWith(`${name}=`))).toBe(true);
  return `${u.origin}${u.pathname}?${fields.join('&')}`;
}

/** Status and COS error code of a response (code null on success). */
async function outcome(res: Response): Promise<{ status: number; code: string | null; message: string }> {
  const text = await res.text();
  return {
    status: res.status,
    code: text.match(/<Code>([^<]*)<\/Code>/)?.[1] ?? null,
    message: text.match(/<Message>([^<]*)<\/Message>/)?.[1] ?? '',
  };
}

/** A raw HTTP request, for headers fetch() will not let us set (Host). */
function rawRequest(
  port: number,
  method: string,
  path: string,
  headers: Record<string, string>,
  body?: string,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

beforeAll(async () => {
  fixture = await startCosFixture({ secretId, secretKey, now: () => Date.now() + skewMs });
});

beforeEach(() => {
  fixture.reset();
  skewMs = 0;
});

afterAll(async () => {
  await fixture?.close();
});

describe('the reference signer', () => {
  it("reproduces the COS document's worked examples", () => {
    const get = referenceSign({
      secretId: doc.secretId,
      secretKey: doc.secretKey,
      method: 'GET',
      path: doc.path,
      params: docGet.params,
      headers: docGet.headers,
      keyTime: docGet.keyTime,
    });
    expect(get.signKey).toBe('937914bf490e9e8c189836aad2052e4feeb35eaf');
    expect(get.stringToSign).toBe('sha1\n1557989753;1557996953\n54ecfe22f59d3514fdc764b87a32d8133ea611e6\n');
    expect(asAuthorization(get)).toBe(docGet.authorization);

    const put = referenceSign({
      secretId: doc.secretId,
      secretKey: doc.secretKey,
      method: 'PUT',
      path: doc.path,
      headers: docPut.headers,
      keyTime: docPut.keyTime,
    });
    expect(put.signKey).toBe('eb2519b498b02ac213cb1f3d1a3d27a3b3c9bc5f');
    expect(put.stringToSign).toBe('sha1\n1557989151;1557996351\n8b2751e77f43a0995d6e9eb9477f4b685cca4172\n');
    expect(asAuthorization(put)).toBe(docPut.authorization);
  });
});

describe('cos fixture signature checks', () => {
  it("accepts the document's own signed requests, byte for byte", async () => {
    // The document's clock: both windows are open at 1557990000.
    const docFixture = await startCosFixture({
      secretId: doc.secretId,
      secretKey: doc.secretKey,
      now: () => 1_557_990_000_000,
    });
    try {
      const stored = await rawRequest(
        docFixture.port,
        'PUT',
        doc.rawPath,
        { ...docPut.headers, Authorization: docPut.authorization },
        'ObjectContent',
      );
      expect(stored.status).toBe(200);
      expect(docFixture.objects.get(doc.path.slice(1))?.body.toString()).toBe('ObjectContent');

      const read = await rawRequest(docFixture.port, 'GET', `${doc.rawPath}?${docGet.query}`, {
        ...docGet.headers,
        Authorization: docGet.authorization,
      });
      expect(read).toEqual({ status: 200, body: 'ObjectContent' });

      // The same request with another Date than the one signed.
      const redated = await rawRequest(docFixture.port, 'GET', `${doc.rawPath}?${docGet.query}`, {
        ...docGet.headers,
        Date: 'Thu, 16 May 2019 06:55:54 GMT',
        Authorization: docGet.authorization,
      });
      expect(redated.status).toBe(403);
      expect(redated.body).toContain('<Code>SignatureDoesNotMatch</Code>');
      expect([docFixture.signatureChecks, docFixture.signatureFailures]).toEqual([3, 1]);
    } finally {
      await docFixture.close();
    }
  });

  it('accepts what the COS SDK and the gateway send, all of which sign Host', async () => {
    const storage = createCosStorage({
      secretId,
      secretKey,
      bucket: 'signet-1250000000',
      region: 'ap-guangzhou',
      domain: fixture.host,
      protocol: 'http:',
      timeoutMs: 3_000,
    });
    // Header-authorised requests from the SDK.
    await storage.put('sdk/a.txt', Buffer.from('from the sdk'), 'text/plain');
    expect((await storage.head('sdk/a.txt'))?.size).toBe(12);
    await storage.ping();

    // The gateway's own presigned URL.
    const w = { start: nowSeconds() - 1, end: nowSeconds() + 600 };
    const [sig] = storage.signMany(['sdk/a.txt'], w);
    const gatewayUrl = storage.urlFor('sdk/a.txt', { ...w, sig: sig! });
    expect(new URL(gatewayUrl).searchParams.get('q-header-list')).toBe('host');
    expect(await (await fetch(gatewayUrl)).text()).toBe('from the sdk');

    // The SDK's own presigned URL (getObjectUrl), which the gateway does not use but COS users do.
    const cos = new COS({
      SecretId: secretId,
      SecretKey: secretKey,
      Domain: fixture.host,
      Protocol: 'http:',
    });
    const sdkUrl = await new Promise<string>((resolve, reject) => {
      const params = { Bucket: 'signet-1250000000', Region: 'ap-guangzhou', Key: 'sdk/a.txt', Sign: true };
      cos.getObjectUrl(params, (err, data) => (err ? reject(err) : resolve(data.Url)));
    });
    const sdkHeaders = new URL(sdkUrl).searchParams.get('q-header-list')!.split(';');
    expect(sdkHeaders).toContain('host');
    expect(await (await fetch(sdkUrl)).text()).toBe('from the sdk');

    expect(fixture.signatureFailures).toBe(0);
    expect(fixture.signatureChecks).toBe(fixture.requests.total);
  });

  it('refuses a valid signature over no headers, presigned or in the Authorization header', async () => {
    put('h.txt', 'hello');
    const noHeaders = signGet('h.txt', { headers: {} });
    expect(noHeaders.fields).toContainEqual(['q-header-list', '']);
    const denied = { status: 403, code: 'AccessDenied', message: 'q-header-list must include host' };

    expect(await outcome(await fetch(`${fixture.url}/h.txt?${asQuery(noHeaders)}`))).toEqual(denied);
    const viaHeader = await fetch(`${fixture.url}/h.txt`, {
      headers: { authorization: asAuthorization(noHeaders) },
    });
    expect(await outcome(viaHeader)).toEqual(denied);

    // Signing some other header instead of Host is no better.
    const metaOnly = signGet('h.txt', { headers: { 'x-cos-meta-a': 'b' } });
    const other = await fetch(`${fixture.url}/h.txt?${asQuery(metaOnly)}`, {
      headers: { 'x-cos-meta-a': 'b' },
    });
    expect(await outcome(other)).toEqual(denied);

    // The same request with Host signed is served, in both forms.
    const withHost = signGet('h.txt');
    expect(withHost.fields).toContainEqual(['q-header-list', 'host']);
    expect(await (await fetch(`${fixture.url}/h.txt?${asQuery(withHost)}`)).text()).toBe('hello');
    const headerOk = await fetch(`${fixture.url}/h.txt`, {
      headers: { authorization: asAuthorization(withHost) },
    });
    expect(await headerOk.text()).toBe('hello');
    expect([fixture.signatureChecks, fixture.signatureFailures]).toEqual([5, 3]);
  });

  it('refuses a signed header the request does not carry', async () => {
    put('m.txt', 'meta');
    const url = presigned('m.txt', { headers: { host: fixture.host, 'x-cos-meta-a': 'b' } });
    expect(await (await fetch(url, { headers: { 'x-cos-meta-a': 'b' } })).text()).toBe('meta');
    expect(await outcome(await fetch(url))).toEqual({
      status: 403,
      code: 'AccessDenied',
      message: 'signed header x-cos-meta-a is missing',
    });
  });

  it('refuses a window that has not started yet', async () => {
    put('f.txt', 'future');
    const notYet = { status: 403, code: 'AccessDenied', message: 'Request has not become valid yet' };
    const later = presigned('f.txt', { keyTime: `${nowSeconds() + 600};${nowSeconds() + 1200}` });
    expect(await outcome(await fetch(later))).toEqual(notYet);
    // Ten minutes on, the same URL works.
    skewMs = 601_000;
    expect(await (await fetch(later)).text()).toBe('future');
  });

  it('refuses an edited q-sign-time', async () => {
    put('s.txt', 'sign time');
    const url = presigned('s.txt', { keyTime: `${nowSeconds() - 1};${nowSeconds() + 60}` });
    expect(await (await fetch(url)).text()).toBe('sign time');
    const edited = withField(url, 'q-sign-time', `${nowSeconds() - 1};${nowSeconds() + 86_400}`);
    expect(await outcome(await fetch(edited))).toMatchObject({ status: 403, code: 'SignatureDoesNotMatch' });
  });

  it('refuses an edited q-key-time', async () => {
    put('k.txt', 'key time');
    const url = presigned('k.txt', { keyTime: `${nowSeconds() - 1};${nowSeconds() + 60}` });
    expect(await (await fetch(url)).text()).toBe('key time');
    const edited = withField(url, 'q-key-time', `${nowSeconds() - 1};${nowSeconds() + 86_400}`);
    expect(await outcome(await fetch(edited))).toMatchObject({ status: 403, code: 'SignatureDoesNotMatch' });
  });

  it('refuses an expired URL whose two times were moved forward together', async () => {
    put('e.txt', 'expired');
    const url = presigned('e.txt', { keyTime: `${nowSeconds() - 7200};${nowSeconds() - 3600}` });
    expect(await outcome(await fetch(url))).toEqual({
      status: 403,
      code: 'AccessDenied',
      message: 'Request has expired',
    });
    const revived = `${nowSeconds() - 1};${nowSeconds() + 3600}`;
    const edited = withField(withField(url, 'q-sign-time', revived), 'q-key-time', revived);
    expect(await outcome(await fetch(edited))).toMatchObject({ status: 403, code: 'SignatureDoesNotMatch' });
  });

  it('refuses a q-key-time different from q-sign-time, even when the signature matches', async () => {
    put('d.txt', 'differ');
    // SignKey from a day-long q-key-time, StringToSign over a one-minute q-sign-time.
    const url = presigned('d.txt', {
      keyTime: `${nowSeconds() - 1};${nowSeconds() + 86_400}`,
      signTime: `${nowSeconds() - 1};${nowSeconds() + 60}`,
    });
    expect(await outcome(await fetch(url))).toEqual({
      status: 403,
      code: 'InvalidArgument',
      message: 'q-sign-time and q-key-time must be the same KeyTime',
    });
  });

  it('answers a signed response-cache-control as Cache-Control, and refuses it edited or dropped', async () => {
    fixture.objects.set('c.txt', {
      body: Buffer.from('cached'),
      contentType: 'text/plain',
      etag: '"c"',
      lastModified: new Date(),
      cacheControl: 'no-cache',
    });
    // A URL signed over the param (the reference signer, not the gateway's), carrying it.
    const signedOnly = presigned('c.txt', { params: { 'response-cache-control': 'max-age=600' } });
    expect(new URL(signedOnly).searchParams.get('q-url-param-list')).toBe('response-cache-control');
    const url = `${signedOnly}&response-cache-control=max-age%3D600`;
    const res = await fetch(url);
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('max-age=600');
    expect(await res.text()).toBe('cached');
    const revalidated = await fetch(url, { headers: { 'if-none-match': '"c"' } });
    expect([revalidated.status, revalidated.headers.get('cache-control')]).toEqual([304, 'max-age=600']);

    // Without the param, the object's own metadata answers.
    const plain = await fetch(presigned('c.txt'));
    expect([plain.status, plain.headers.get('cache-control')]).toEqual([200, 'no-cache']);
    await plain.arrayBuffer();

    // The value edited, or appended again with another value (the last one counts, as for the
    // header it would set): the HttpString changes.
    for (const edited of [
      url.replace('max-age%3D600', 'max-age%3D601'),
      `${url}&response-cache-control=no-store`,
    ]) {
      expect(await outcome(await fetch(edited))).toMatchObject({
        status: 403,
        code: 'SignatureDoesNotMatch',
      });
    }
    // Dropped while q-url-param-list still names it: the HttpString lacks it.
    expect(await outcome(await fetch(signedOnly))).toMatchObject({
      status: 403,
      code: 'SignatureDoesNotMatch',
    });
    // Dropped from the list too: the signature was over it.
    expect(await outcome(await fetch(withField(signedOnly, 'q-url-param-list', '')))).toMatchObject({
      status: 403,
      code: 'SignatureDoesNotMatch',
    });
    expect([fixture.signatureChecks, fixture.signatureFailures]).toEqual([7, 4]);
  });

  it('refuses a wrong q-ak, which the signature itself does not cover', async () => {
    put('a.txt', 'ak');
    const url = presigned('a.txt');
    expect(await (await fetch(url)).text()).toBe('ak');
    const otherId = withField(url, 'q-ak', 'AKIDsomeoneElse0000000000000000');
    expect(await outcome(await fetch(otherId))).toMatchObject({ status: 403, code: 'InvalidAccessKeyId' });
    const missing = withField(url, 'q-ak', '');
    expect(await outcome(await fetch(missing))).toMatchObject({ status: 403, code: 'InvalidAccessKeyId' });
  });
});

describe('COS fixture: GET Bucket (List Objects)', () => {
  /** A GET Bucket request, its parameters signed into the Authorization header. */
  async function listBucket(params: Record<string, string>, tamper?: Record<string, string>) {
    const signed = referenceSign({
      secretId,
      secretKey,
      method: 'GET',
      path: '/',
      params,
      headers: { host: fixture.host },
      keyTime: currentKeyTime(),
    });
    const query = new URLSearchParams({ ...params, ...tamper }).toString().replace(/\+/g, '%20');
    return fetch(`${fixture.url}/?${query}`, { headers: { authorization: asAuthorization(signed) } });
  }

  const tags = (xml: string, name: string) =>
    [...xml.matchAll(new RegExp(`<${name}>([^<]*)</${name}>`, 'g'))].map((m) => m[1]);

  it('lists keys under a prefix in byte order, a page at a time, with NextMarker when cut short', async () => {
    for (const key of ['u/b/2.png', 'u/a/1.png', 'x/other.png', 'u/a/0.png', 'u/c/3.png']) put(key, key);
    const first = await listBucket({ prefix: 'u/', 'max-keys': '2' });
    expect(first.status).toBe(200);
    expect(first.headers.get('content-type')).toBe('application/xml');
    const xml = await first.text();
    expect(xml).toMatch(/^<\?xml version='1.0' encoding='utf-8' \?>\n<ListBucketResult>/);
    expect(tags(xml, 'Prefix')).toEqual(['u/']);
    expect(tags(xml, 'MaxKeys')).toEqual(['2']);
    expect(tags(xml, 'IsTruncated')).toEqual(['true']);
    expect(tags(xml, 'Key')).toEqual(['u/a/0.png', 'u/a/1.png']);
    expect(tags(xml, 'NextMarker')).toEqual(['u/a/1.png']);
    expect(tags(xml, 'Size')).toEqual(['9', '9']);
    expect(tags(xml, 'ETag')).toEqual(['&quot;e&quot;', '&quot;e&quot;']);
    expect(tags(xml, 'StorageClass')).toEqual(['STANDARD', 'STANDARD']);
    expect(Number.isNaN(Date.parse(tags(xml, 'LastModified')[0]!))).toBe(false);
    expect(xml).toContain('<Owner><ID>');

    const rest = await (await listBucket({ prefix: 'u/', marker: 'u/a/1.png', 'max-keys': '2' })).text();
    expect(tags(rest, 'Key')).toEqual(['u/b/2.png', 'u/c/3.png']);
    expect(tags(rest, 'IsTruncated')).toEqual(['false']);
    expect(tags(rest, 'NextMarker')).toEqual([]);
  });

  it('URL-encodes keys with encoding-type=url, so any key survives the XML', async () => {
    put('u/o w&ner/<1>.png', 'odd');
    put('u/腾讯云.png', 'cjk');
    const xml = await (await listBucket({ prefix: 'u/', 'encoding-type': 'url' })).text();
    expect(tags(xml, 'EncodingType')).toEqual(['url']);
    expect(tags(xml, 'Key').map((k) => decodeURIComponent(k!))).toEqual([
      'u/o w&ner/<1>.png',
      'u/腾讯云.png',
    ]);
    expect(tags(xml, 'Key')[0]).toBe('u/o%20w%26ner/%3C1%3E.png');
    const plain = await (await listBucket({ prefix: 'u/o' })).text();
    expect(tags(plain, 'Key')).toEqual(['u/o w&amp;ner/&lt;1&gt;.png']);
  });

  it('checks the signature over the listing parameters like any other request', async () => {
    put('u/a.png', 'a');
    // A marker changed after signing.
    const moved = await listBucket({ prefix: 'u/', marker: '' }, { marker: 'u/zzz' });
    expect(await outcome(moved)).toMatchObject({ status: 403, code: 'SignatureDoesNotMatch' });
    const unsigned = await fetch(`${fixture.url}/?prefix=u%2F`);
    expect(await outcome(unsigned)).toMatchObject({ status: 403, code: 'AccessDenied' });
    const badMax = await listBucket({ 'max-keys': '1001' });
    expect(await outcome(badMax)).toMatchObject({ status: 400, code: 'InvalidArgument' });
    expect(fixture.signatureFailures).toBe(1);
  });

  it('answers the real SDK (cos.getBucket) with what its parser reads', async () => {
    for (const key of ['u/a.png', 'u/b.png', 'u/c.png']) put(key, key);
    const cos = new COS({
      SecretId: secretId,
      SecretKey: secretKey,
      Domain: fixture.host,
      Protocol: 'http:',
    });
    const page = await cos.getBucket({
      Bucket: 'signet-1250000000',
      Region: 'ap-guangzhou',
      Prefix: 'u/',
      MaxKeys: 2,
    });
    expect(page.Contents.map((c) => c.Key)).toEqual(['u/a.png', 'u/b.png']);
    expect(page.Contents[0]).toMatchObject({ Size: '7', ETag: '"e"', StorageClass: 'STANDARD' });
    expect(page).toMatchObject({ IsTruncated: 'true', NextMarker: 'u/b.png', Prefix: 'u/' });
    expect(fixture.signatureFailures).toBe(0);
  });
});
