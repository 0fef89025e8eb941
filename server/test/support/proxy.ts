import { createHash, randomUUID } from 'node:crypto';
import type { Counter } from 'prom-client';
import { createProxyTokens, type ProxyTokens } from '../../src/auth/proxy-token.js';
import { systemClock } from '../../src/clock.js';
import type { ImagesRepo } from '../../src/db/images-repo.js';
import type { CosFixture } from '../fixtures/cos-fixture.js';
import { TEST_PROXY_SECRET } from './env.js';
import type { Harness } from './harness.js';

/** Both proxy links of an image, as the owner's GraphQL query returns them. */
export async function proxyLinks(
  h: Harness,
  id: string,
  owner = 'alice',
): Promise<{ redirect: string; stream: string }> {
  const res = await h.gql<{ image: { redirect: string; stream: string } | null }>(
    'query($id: ID!) { image(id: $id) { redirect: proxyUrl stream: proxyUrl(mode: STREAM) } }',
    { id },
    { token: await h.token(owner) },
  );
  if (res.errors || !res.data?.image) throw new Error(`proxyUrl query failed: ${JSON.stringify(res)}`);
  return res.data.image;
}

/** Signs proxy links the way a node with the tests' PROXY_TOKEN_SECRET does (support/env.ts authEnv). */
export function testProxyTokens(): ProxyTokens {
  return createProxyTokens({
    secrets: [{ kid: 'k0', secret: TEST_PROXY_SECRET }],
    ttlSeconds: 3600,
    clock: systemClock,
  });
}

/** The sum of a counter over all its labels. */
export async function counterValue(counter: Counter<string>): Promise<number> {
  const m = await counter.get();
  return m.values.reduce((sum, v) => sum + v.value, 0);
}

/** Polls until `check` holds (bounded generously: it catches hangs, not slowness). */
export async function waitFor(check: () => Promise<boolean> | boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Puts `body` straight into the fixture's bucket (no SDK upload) and returns its ETag. */
export function putInFixture(fixture: CosFixture, key: string, body: Buffer, contentType: string): string {
  const etag = `"${createHash('md5').update(body).digest('hex')}"`;
  fixture.objects.set(key, { body, contentType, etag, lastModified: new Date() });
  return etag;
}

/** An image row for an object already in the bucket; returns its id. */
export async function addImageRow(
  images: ImagesRepo,
  owner: string,
  key: string,
  body: Buffer,
  contentType: string,
  etag: string | null,
): Promise<string> {
  const id = randomUUID();
  await images.insert({
    id,
    ownerId: owner,
    objectKey: key,
    contentType,
    byteSize: body.length,
    width: null,
    height: null,
    etag,
    animated: false,
    createdAt: new Date(Math.floor(Date.now() / 1000) * 1000),
  });
  return id;
}

/** Reads a response body to the end, returning its length and SHA-256 (without keeping it). */
export async function drain(res: Response): Promise<{ bytes: number; sha256: string }> {
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    bytes += chunk.length;
    hash.update(chunk);
  }
  return { bytes, sha256: hash.digest('hex') };
}

export const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
