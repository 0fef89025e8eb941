import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { getSignedUrl } from '@aws-sdk/cloudfront-signer';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.js';
import { createLocalBucketRoute } from '../../src/http/local-bucket.js';
import type { CdnAuthType, CdnSigner } from '../../src/storage/cdn/cdn-signer.js';
import { createCloudFrontSigner } from '../../src/storage/cdn/cloudfront.js';
import { createTencentCdnSigner, type TencentAuthType } from '../../src/storage/cdn/tencent-cdn.js';
import { withCdn } from '../../src/storage/cdn/with-cdn.js';
import { createCosStorage } from '../../src/storage/cos.js';
import { createLocalStorage } from '../../src/storage/local.js';
import type { SignWindow, Storage } from '../../src/storage/storage.js';
import { parseVariantKey, variantOf } from '../../src/storage/variant.js';
import { type CdnEdge, type CdnEdgeOptions, startCdnEdge } from '../fixtures/cdn-edge.js';
import { makePng } from '../fixtures/images.js';
import { cosStorageOptions } from '../support/env.js';
import { type Harness, startHarness } from '../support/harness.js';
import { uploadFile } from '../support/upload.js';

const SECRET = 'local-origin-secret-for-cdn-tests';
const PRIMARY = 'primaryKey0123456789';
const BACKUP = 'backupKey9876543210';
const TENCENT: TencentAuthType[] = ['tencent-a', 'tencent-b', 'tencent-c', 'tencent-d'];
/** Keys that need encoding in a URL path: spaces, unicode, `+`, `%`, reserved characters. */
const KEYS = ['u/1/plain.png', 'u/1/with space+plus%25.png', 'u/2/图片 ünï.jpg', "u/3/a!b'c(d)*e~f.png"];
const THUMB = variantOf({ width: 320, height: 320, fit: 'cover', format: 'webp', quality: 75 });

/** What a window-grid step gives: 60 s back for clock skew, then the TTL. */
const TTL = 3600;
const windowAt = (nowS: number): SignWindow => ({ start: nowS - 60, end: nowS + TTL });
const VALIDITY = TTL + 60;

const nowS = () => Math.floor(Date.now() / 1000);

let dir: string;
let local: Storage;
let origin: http.Server;
let originUrl: string;
/** What the edges asked the origin for, in order. */
const originRequests: { path: string; query: string }[] = [];
const edges: CdnEdge[] = [];
let rsa: { privateKey: KeyObject; publicKey: KeyObject; pem: string };
let rsa2: { privateKey: KeyObject; publicKey: KeyObject; pem: string };

function keyPair() {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 1024 });
  return { privateKey, publicKey, pem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString() };
}

/**
 * The edges' origin: the local driver's bucket route, each request signed for it with the local
 * driver (as a CDN's origin-pull authentication signs for a private bucket). The local bucket
 * here serves originals only, so a variant's query is recorded and the original served.
 */
function originFor(p: string, query: string): string {
  originRequests.push({ path: p, query });
  const key = p.slice(1).split('/').map(decodeURIComponent).join('/');
  const w = windowAt(nowS());
  const [sig] = local.signMany([key], w);
  return local.urlFor(key, { ...w, sig: sig! });
}

async function edge(opts: Omit<CdnEdgeOptions, 'origin'>): Promise<CdnEdge> {
  const e = await startCdnEdge({ ...opts, origin: originFor });
  edges.push(e);
  return e;
}

function tencentSigner(type: TencentAuthType, domain: string, key = PRIMARY): CdnSigner {
  return createTencentCdnSigner({ type, domain, key, signParam: 'sign', timeParam: 't' });
}

const bodyOf = (key: string) => Buffer.from(`bytes of ${key}`);

async function get(url: string): Promise<{ status: number; body: string }> {
  const res = await fetch(url);
  return { status: res.status, body: await res.text() };
}

function signedUrl(s: Storage, key: string, w: SignWindow, variant?: typeof THUMB): string {
  const [sig] = s.signMany([key], w, [variant]);
  return s.urlFor(key, { ...w, sig: sig! }, variant);
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'signet-cdn-'));
  origin = http.createServer();
  await new Promise<void>((r) => origin.listen(0, '127.0.0.1', r));
  originUrl = `http://127.0.0.1:${(origin.address() as AddressInfo).port}`;
  local = createLocalStorage({ root: dir, publicUrl: originUrl, secret: SECRET });
  const route = createLocalBucketRoute({
    storage: local,
    secrets: [SECRET],
    clock: { now: () => Date.now() },
    localVariants: undefined,
  });
  origin.on('request', (req, res) => {
    route(req, res, new URL(req.url ?? '/', originUrl)).catch((err: { status?: number }) => {
      if (!res.headersSent) res.writeHead(err.status ?? 500).end();
    });
  });
  for (const key of [...KEYS, 'test.jpg', 'foo.jpg']) await local.put(key, bodyOf(key), 'image/png');
  rsa = keyPair();
  rsa2 = keyPair();
});

afterAll(async () => {
  for (const e of edges) await e.close();
  await new Promise<void>((r) => origin?.close(() => r()));
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('the CDN edge fixture against the documents', () => {
  // Tencent's worked examples (CDN TypeA/TypeD pages; EdgeOne's method B/C pages), each with the
  // edge's clock at the example's signing time and a validity of one second.
  const examples: [TencentAuthType, string, number, string][] = [
    [
      'tencent-a',
      'dimtm5evg50ijsx2hvuwyfoiu65',
      1582791032,
      '/test.jpg?sign=1582791032-im1acp76sx9sdqe601v-0-3fbb88382c9356b6faaf9d68c7b2ae3a',
    ],
    // B's timestamp is a minute (15:33 UTC+8): with one second of validity, only that minute's start.
    [
      'tencent-b',
      'DvYmqE81E1F9R791H6lmht',
      1721028780,
      '/202407151533/d1f0b51c6894231fc12e054fcc7f0b3e/foo.jpg',
    ],
    ['tencent-c', 'DvYmqE81E1F9R791H6lmht', 1721029386, '/6688749e8906a726c12fe1be3aacd016/6694d30a/foo.jpg'],
    [
      'tencent-d',
      'dimtm5evg50ijsx2hvuwyfoiu65',
      1582791032,
      '/test.jpg?sign=900a5049aa8ac1ab144527d9c2be4cea&t=1582791032',
    ],
  ];

  it.each(examples)('accepts the published %s example and serves the object', async (type, key, at, url) => {
    const e = await edge({ type, keys: [key], validitySeconds: 1, now: () => at });
    const res = await get(`${e.url}${url}`);
    expect(res.status).toBe(200);
    expect(res.body).toBe(bodyOf(url.endsWith('foo.jpg') ? 'foo.jpg' : 'test.jpg').toString());
    // A minute later the one-second validity is over.
    const late = await edge({ type, keys: [key], validitySeconds: 1, now: () => at + 60 });
    expect(await get(`${late.url}${url}`)).toEqual({ status: 403, body: 'expired' });
  });
});

describe.each(TENCENT)('%s signer through the edge', (type) => {
  let e: CdnEdge;
  let cdn: Storage;

  beforeAll(async () => {
    e = await edge({ type, keys: [PRIMARY, BACKUP], validitySeconds: VALIDITY });
    cdn = withCdn(local, tencentSigner(type, e.url));
  });

  it('signs URLs the edge accepts, for keys that need encoding, and serves the bytes', async () => {
    const w = windowAt(nowS());
    const sigs = cdn.signMany(KEYS, w);
    for (const [i, key] of KEYS.entries()) {
      const url = cdn.urlFor(key, { ...w, sig: sigs[i]! });
      expect(url.startsWith(`${e.url}/`)).toBe(true);
      expect(await get(url)).toEqual({ status: 200, body: bodyOf(key).toString() });
    }
  });

  it('refuses a tampered signature or path, and an expired URL, with 403', async () => {
    const w = windowAt(nowS());
    const url = signedUrl(cdn, KEYS[0]!, w);
    const [sig] = cdn.signMany([KEYS[0]!], w);
    const flipped = sig!.replace(/^./, (c) => (c === '0' ? '1' : '0'));
    expect((await get(url.replace(sig!, flipped))).status).toBe(403);
    expect((await get(url.replace('plain.png', 'other.png'))).status).toBe(403);
    // Another object's signature on this path.
    const [other] = cdn.signMany([KEYS[1]!], w);
    expect((await get(url.replace(sig!, other!))).status).toBe(403);

    // A window that ended: signed long ago, its validity (the window's length) is over.
    const old = windowAt(nowS() - VALIDITY - 120);
    expect(await get(signedUrl(cdn, KEYS[0]!, old))).toEqual({ status: 403, body: 'expired' });
  });

  it('expires with the window: accepted until its end, refused after', async () => {
    const w = windowAt(nowS());
    const url = signedUrl(cdn, KEYS[0]!, w);
    // Type B has minutes only; its URL lives up to 59 s past the window's end, never less.
    const slack = type === 'tencent-b' ? 60 : 1;
    const atEnd = await edge({ type, keys: [PRIMARY], validitySeconds: VALIDITY, now: () => w.end - 1 });
    const after = await edge({ type, keys: [PRIMARY], validitySeconds: VALIDITY, now: () => w.end + slack });
    const path = url.slice(e.url.length);
    expect((await get(`${atEnd.url}${path}`)).status).toBe(200);
    expect(await get(`${after.url}${path}`)).toEqual({ status: 403, body: 'expired' });
  });

  it('accepts a URL signed with the backup key (rotation) and refuses an unknown key', async () => {
    const w = windowAt(nowS());
    const backup = withCdn(local, tencentSigner(type, e.url, BACKUP));
    expect((await get(signedUrl(backup, KEYS[2]!, w))).status).toBe(200);
    const stranger = withCdn(local, tencentSigner(type, e.url, 'someoneElse123'));
    expect(await get(signedUrl(stranger, KEYS[2]!, w))).toEqual({ status: 403, body: 'signature mismatch' });
  });

  it("passes a variant's query through to the origin, one edge copy per variant", async () => {
    const w = windowAt(nowS());
    const before = originRequests.length;
    const url = signedUrl(cdn, KEYS[3]!, w, THUMB);
    expect((await get(url)).status).toBe(200);
    expect(originRequests.slice(before)).toEqual([
      { path: `/${KEYS[3]!.split('/').map(encodeURIComponent).join('/')}`, query: `v=${THUMB.key}` },
    ]);
    expect(parseVariantKey(originRequests.at(-1)!.query.slice(2))).toEqual(THUMB);
    // The same variant again, and signed for another window: served from the edge's copy.
    expect((await get(url)).status).toBe(200);
    expect((await get(signedUrl(cdn, KEYS[3]!, windowAt(nowS() - 300), THUMB))).status).toBe(200);
    expect(originRequests.length).toBe(before + 1);
  });

  it('gives byte-identical URLs for the same key and window, on any node', () => {
    const w = windowAt(nowS());
    const other = withCdn(local, tencentSigner(type, e.url));
    for (const key of KEYS) {
      const a = signedUrl(cdn, key, w);
      expect(signedUrl(cdn, key, w)).toBe(a);
      expect(signedUrl(other, key, w)).toBe(a);
      expect(signedUrl(cdn, key, windowAt(w.start + 60 + 900))).not.toBe(a);
    }
  });
});

describe('cloudfront signer', () => {
  let e: CdnEdge;
  let cdn: Storage;

  beforeAll(async () => {
    e = await edge({
      type: 'cloudfront',
      publicKeys: { K1PRIMARY: rsa.publicKey, K2BACKUP: rsa2.publicKey },
    });
    cdn = withCdn(
      local,
      createCloudFrontSigner({ domain: e.url, keyPairId: 'K1PRIMARY', privateKey: rsa.pem }),
    );
  });

  it('is byte-identical to @aws-sdk/cloudfront-signer over 5,000 random keys', () => {
    const signer = createCloudFrontSigner({
      domain: 'https://d111111abcdef8.cloudfront.net',
      keyPairId: 'K2JCJMDEHXQW5F',
      privateKey: rsa.privateKey,
    });
    const cdnOf = withCdn(local, signer);
    const segment = fc.string({ unit: 'grapheme', minLength: 1, maxLength: 40 });
    fc.assert(
      fc.property(
        fc.array(segment, { minLength: 1, maxLength: 4 }),
        fc.integer({ min: 1_700_000_000, max: 2_100_000_000 }),
        fc.boolean(),
        (segments, start, variant) => {
          const key = segments.join('/');
          const w = { start, end: start + 3660 };
          const v = variant ? THUMB : undefined;
          const ours = signedUrl(cdnOf, key, w, v);
          const target = cdnOf.originOf!(key, v);
          const theirs = getSignedUrl({
            url: `https://d111111abcdef8.cloudfront.net${target.path}${target.query ? `?${target.query}` : ''}`,
            keyPairId: 'K2JCJMDEHXQW5F',
            // The parsed key (the SDK hands it to node:crypto's sign, which takes either form):
            // parsing the PEM on every call would make 5,000 runs take half a minute.
            privateKey: rsa.privateKey as unknown as string,
            dateLessThan: new Date(w.end * 1000),
          });
          expect(ours).toBe(theirs);
        },
      ),
      { numRuns: 5000 },
    );
  });

  it('signs URLs the edge accepts, refuses tampered and expired ones, accepts the second key of the group', async () => {
    const w = windowAt(nowS());
    for (const key of KEYS)
      expect(await get(signedUrl(cdn, key, w))).toEqual({ status: 200, body: bodyOf(key).toString() });
    const url = signedUrl(cdn, KEYS[0]!, w);
    expect((await get(url.replace('plain.png', 'other.png'))).status).toBe(403);
    expect((await get(url.replace(`Expires=${w.end}`, `Expires=${w.end + 3600}`))).status).toBe(403);
    const past = { start: nowS() - 7200, end: nowS() - 10 };
    expect(await get(signedUrl(cdn, KEYS[0]!, past))).toEqual({ status: 403, body: 'expired' });

    const second = withCdn(
      local,
      createCloudFrontSigner({ domain: e.url, keyPairId: 'K2BACKUP', privateKey: rsa2.pem }),
    );
    expect((await get(signedUrl(second, KEYS[1]!, w))).status).toBe(200);
    // The second key's signature under the first key's ID is not accepted.
    const mixed = signedUrl(second, KEYS[1]!, w).replace('K2BACKUP', 'K1PRIMARY');
    expect(await get(mixed)).toEqual({ status: 403, body: 'signature mismatch' });
  });

  it("keeps a variant's query in the signed resource and passes it to the origin", async () => {
    const w = windowAt(nowS());
    const before = originRequests.length;
    const url = signedUrl(cdn, KEYS[2]!, w, THUMB);
    expect(url).toContain(`?v=${THUMB.key}&Expires=${w.end}&Key-Pair-Id=K1PRIMARY&Signature=`);
    expect((await get(url)).status).toBe(200);
    expect(originRequests.slice(before).map((r) => r.query)).toEqual([`v=${THUMB.key}`]);
    expect((await get(url.replace(THUMB.key, '64x64-cover-webp-75'))).status).toBe(403);
  });

  it('gives byte-identical URLs for the same key and window', () => {
    const w = windowAt(nowS());
    const other = withCdn(
      local,
      createCloudFrontSigner({ domain: e.url, keyPairId: 'K1PRIMARY', privateKey: rsa.pem }),
    );
    for (const key of KEYS) expect(signedUrl(other, key, w)).toBe(signedUrl(cdn, key, w));
  });
});

describe('the gateway with CDN_DOMAIN (cos driver, COS fixture as the origin)', () => {
  const PNG = makePng(7, 4, [1, 2, 3], [250, 200, 150]);
  let h: Harness;
  let e: CdnEdge;
  /** Requests the edge sent to the bucket. */
  const pulls: string[] = [];

  beforeAll(async () => {
    // The edge exists first (its URL is CDN_DOMAIN); its origin is the harness's COS fixture,
    // pulled with COS signatures as Tencent's origin-pull authentication does for a private bucket.
    let bucket: Storage | undefined;
    e = await startCdnEdge({
      type: 'tencent-c',
      keys: [PRIMARY, BACKUP],
      validitySeconds: VALIDITY,
      origin: (p) => {
        pulls.push(p);
        const key = p.slice(1).split('/').map(decodeURIComponent).join('/');
        const w = windowAt(nowS());
        const [sig] = bucket!.signMany([key], w);
        return bucket!.urlFor(key, { ...w, sig: sig! });
      },
    });
    edges.push(e);
    h = await startHarness({
      driver: 'cos',
      redis: 'memory',
      env: {
        CDN_DOMAIN: e.url,
        CDN_AUTH_TYPE: 'tencent-c',
        CDN_AUTH_KEY: PRIMARY,
        URL_TTL_SECONDS: String(TTL),
      },
    });
    bucket = createCosStorage(cosStorageOptions(h.fixture!));
  });

  afterAll(async () => {
    await h?.close();
  });

  it('hands out CDN URLs the edge accepts, the same URL on every read of the step', async () => {
    const up = await uploadFile(h, PNG, { name: 'c.png', type: 'image/png' });
    expect(up.errors).toBeUndefined();
    const { id, key, signedUrl } = up.data!.uploadImage;
    expect(signedUrl.url.startsWith(`${e.url}/`)).toBe(true);
    expect(signedUrl.url).not.toContain('q-signature');

    const res = await fetch(signedUrl.url);
    expect(res.status).toBe(200);
    expect(Buffer.from(await res.arrayBuffer()).equals(PNG)).toBe(true);
    expect(pulls).toEqual([`/${key.split('/').map(encodeURIComponent).join('/')}`]);

    const again = await h.gql<{ image: { signedUrl: { url: string; cached: boolean } } }>(
      'query ($id: ID!) { image(id: $id) { signedUrl { url cached } } }',
      { id },
    );
    expect(again.data?.image.signedUrl).toEqual({ url: signedUrl.url, cached: true });
    // The object goes through the driver as before: the bucket has it, and readiness asks the bucket.
    expect(await h.storage.head(key)).toMatchObject({ size: PNG.length });
    const ready = await fetch(`${h.url}/readyz`);
    expect(ready.status).toBe(200);
  });
});

describe('CDN configuration', () => {
  const base = {
    STORAGE_DRIVER: 'cos',
    COS_SECRET_ID: 'id',
    COS_SECRET_KEY: 'k',
    COS_BUCKET: 'b-1',
    COS_REGION: 'ap-x',
  };
  const refused = (env: Record<string, string>): string => {
    try {
      loadConfig({ ...base, ...env });
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      return (err as ConfigError).variable;
    }
    throw new Error(`accepted ${JSON.stringify(env)}`);
  };

  it('parses each type', () => {
    const types: CdnAuthType[] = ['tencent-a', 'tencent-b', 'tencent-c', 'tencent-d'];
    for (const t of types) {
      const c = loadConfig({
        ...base,
        CDN_DOMAIN: 'cdn.example.com',
        CDN_AUTH_TYPE: t,
        CDN_AUTH_KEY: PRIMARY,
      });
      expect(c.cdn).toMatchObject({
        domain: 'https://cdn.example.com',
        authType: t,
        authKey: PRIMARY,
        authParam: 'sign',
      });
    }
    const cf = loadConfig({
      ...base,
      CDN_DOMAIN: 'https://d111.cloudfront.net/',
      CDN_AUTH_TYPE: 'cloudfront',
      CLOUDFRONT_KEY_PAIR_ID: 'K2JCJMDEHXQW5F',
      // One-line form, as environment files carry it.
      CLOUDFRONT_PRIVATE_KEY: rsa.pem.replace(/\n/g, '\\n'),
    });
    expect(cf.cdn?.domain).toBe('https://d111.cloudfront.net');
    expect(cf.cdn).toMatchObject({ authType: 'cloudfront', cloudfront: { privateKey: rsa.pem } });
    expect(loadConfig(base).cdn).toBeUndefined();
  });

  it('stops start-up naming the variable for bad values', () => {
    const tencent = { CDN_DOMAIN: 'cdn.example.com', CDN_AUTH_TYPE: 'tencent-a', CDN_AUTH_KEY: PRIMARY };
    expect(refused({ ...tencent, CDN_AUTH_TYPE: 'tencent-e' })).toBe('CDN_AUTH_TYPE');
    expect(refused({ CDN_AUTH_TYPE: 'tencent-a', CDN_AUTH_KEY: PRIMARY })).toBe('CDN_DOMAIN');
    expect(refused({ CDN_DOMAIN: 'cdn.example.com' })).toBe('CDN_AUTH_TYPE');
    for (const domain of [
      'https://cdn.example.com/images',
      'ftp://cdn.example.com',
      'cdn example.com',
      'https://cdn.example.com?x=1',
    ]) {
      expect(refused({ ...tencent, CDN_DOMAIN: domain })).toBe('CDN_DOMAIN');
    }
    expect(refused({ ...tencent, CDN_AUTH_KEY: '' })).toBe('CDN_AUTH_KEY');
    expect(refused({ ...tencent, CDN_AUTH_KEY: 'short' })).toBe('CDN_AUTH_KEY');
    expect(refused({ ...tencent, CDN_AUTH_BACKUP_KEY: 'has-dash-123' })).toBe('CDN_AUTH_BACKUP_KEY');
    expect(refused({ ...tencent, CDN_AUTH_PARAM: '1sign' })).toBe('CDN_AUTH_PARAM');
    expect(refused({ ...tencent, CDN_AUTH_TIME_PARAM: 'sign' })).toBe('CDN_AUTH_TIME_PARAM');
    expect(refused({ ...tencent, STORAGE_DRIVER: 'local' })).toBe('CDN_DOMAIN');

    const cloudfront = {
      CDN_DOMAIN: 'd111.cloudfront.net',
      CDN_AUTH_TYPE: 'cloudfront',
      CLOUDFRONT_KEY_PAIR_ID: 'K2JCJMDEHXQW5F',
      CLOUDFRONT_PRIVATE_KEY: rsa.pem,
    };
    const ec = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const notRsa = [
      'not a key',
      ec.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
      rsa.publicKey.export({ type: 'spki', format: 'pem' }).toString(),
      '-----BEGIN PRIVATE KEY-----\ngarbage\n-----END PRIVATE KEY-----',
    ];
    for (const key of notRsa)
      expect(refused({ ...cloudfront, CLOUDFRONT_PRIVATE_KEY: key })).toBe('CLOUDFRONT_PRIVATE_KEY');
    expect(refused({ ...cloudfront, CLOUDFRONT_PRIVATE_KEY: '' })).toBe('CLOUDFRONT_PRIVATE_KEY');
    expect(refused({ ...cloudfront, CLOUDFRONT_KEY_PAIR_ID: '' })).toBe('CLOUDFRONT_KEY_PAIR_ID');
    expect(refused({ ...cloudfront, CLOUDFRONT_KEY_PAIR_ID: 'K-1 x' })).toBe('CLOUDFRONT_KEY_PAIR_ID');
  });
});
