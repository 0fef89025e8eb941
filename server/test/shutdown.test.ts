import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { SignJWT } from 'jose';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createProxyTokens } from '../src/auth/proxy-token.js';
import { systemClock } from '../src/clock.js';
import { type Db, openDatabase } from '../src/db/connect.js';
import { createImagesRepo } from '../src/db/images-repo.js';
import { type CosFixture, startCosFixture } from './fixtures/cos-fixture.js';
import {
  CHILD_PROXY_SECRET,
  type ChildGateway,
  childEnv,
  startChildGateway,
} from './helpers/child-gateway.js';
import { createTestDatabase } from './helpers/database.js';
import { COS_SECRET_ID, COS_SECRET_KEY, TEST_JWT_SECRET } from './helpers/harness.js';
import { addImageRow, putInFixture, sha256 } from './helpers/proxy.js';

const MB = 1024 * 1024;
/** Shutdown exits within a bound: main.ts forces an exit at 10 s. */
const BOUND_MS = 10_000;

async function readAll(reader: ReadableStreamDefaultReader<Uint8Array>, into: Buffer[]): Promise<void> {
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return;
    into.push(Buffer.from(value));
  }
}

// SIGTERM against the real entry point: in-flight downloads finish, subscriptions complete, the
// process exits 0 within the bound.
describe('graceful shutdown of the real entry point', () => {
  let fixture: CosFixture;
  let pgdb: { url: string; drop: () => Promise<void> };
  let db: Db;
  let dataDir: string;
  let gw: ChildGateway | undefined;
  const tokens = createProxyTokens({
    secrets: [{ kid: 'k0', secret: CHILD_PROXY_SECRET }],
    ttlSeconds: 3600,
    clock: systemClock,
  });

  beforeAll(async () => {
    fixture = await startCosFixture({ secretId: COS_SECRET_ID, secretKey: COS_SECRET_KEY });
    pgdb = await createTestDatabase();
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'signet-shutdown-'));
    db = await openDatabase({ databaseUrl: pgdb.url, dataDir });
  });
  afterEach(async () => {
    await gw?.kill();
    gw = undefined;
  });
  afterAll(async () => {
    await db?.close();
    await pgdb?.drop();
    await fixture?.close();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  async function bigImage(size: number) {
    const body = randomBytes(size);
    const key = `u/alice/${randomBytes(6).toString('hex')}.bin`;
    const etag = putInFixture(fixture, key, body, 'application/octet-stream');
    const id = await addImageRow(createImagesRepo(db), 'alice', key, body, 'application/octet-stream', etag);
    return {
      id,
      body,
      link: (base: string) => `${base}/proxy/${id}?t=${tokens.sign(id, 'stream')}&mode=stream`,
    };
  }

  async function openSubscription(base: string, id: string) {
    const jwt = await new SignJWT({})
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('alice')
      .setExpirationTime('1h')
      .sign(new TextEncoder().encode(TEST_JWT_SECRET));
    const res = await fetch(`${base}/graphql`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'text/event-stream',
        authorization: `Bearer ${jwt}`,
      },
      body: JSON.stringify({
        query: 'subscription($ids: [ID!]!) { signedUrlRefreshed(ids: $ids) { imageId } }',
        variables: { ids: [id] },
      }),
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const reader = res.body!.getReader();
    const first = await reader.read(); // yoga's opening ping: the stream is live
    expect(first.done).toBe(false);
    return reader;
  }

  it('SIGTERM during a download and an open subscription: both end cleanly, exit 0 in the bound', async () => {
    gw = await startChildGateway({ ...childEnv(fixture, pgdb.url), SIGNET_ROLE: 'all' });
    const img = await bigImage(40 * MB);
    const sse = await openSubscription(gw.url, img.id);
    const download = await fetch(img.link(gw.url));
    expect(download.status).toBe(200);
    const reader = download.body!.getReader();
    const chunks: Buffer[] = [];
    const first = await reader.read();
    chunks.push(Buffer.from(first.value!));

    const sent = Date.now();
    gw.child.kill('SIGTERM');
    // The subscription completes (SSE `complete` event) and its response ends.
    const events: Buffer[] = [];
    await readAll(sse, events);
    expect(Buffer.concat(events).toString()).toContain('event: complete');
    // The download that was in flight finishes with every byte.
    await readAll(reader, chunks);
    const got = Buffer.concat(chunks);
    expect(got.length).toBe(img.body.length);
    expect(sha256(got)).toBe(sha256(img.body));

    const exit = await gw.exited;
    const took = Date.now() - sent;
    expect(exit).toEqual({ code: 0, signal: null });
    expect(took).toBeLessThan(BOUND_MS);
    // New connections are refused once it stopped.
    await expect(fetch(`${gw.url}/healthz`)).rejects.toThrow();
    const stopped = gw.logs
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .find((l) => l.msg === 'stopped');
    expect(stopped?.drained).toBe(true);
  });

  it('a client that stops reading cannot hold the process past the bound', async () => {
    gw = await startChildGateway(childEnv(fixture, pgdb.url));
    const img = await bigImage(40 * MB);
    const download = await fetch(img.link(gw.url));
    expect(download.status).toBe(200);
    await download.body!.getReader().read(); // then never read again

    const sent = Date.now();
    gw.child.kill('SIGTERM');
    const exit = await gw.exited;
    expect(exit).toEqual({ code: 0, signal: null });
    expect(Date.now() - sent).toBeLessThan(BOUND_MS);
    const stopped = gw.logs
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .find((l) => l.msg === 'stopped');
    expect(stopped?.drained).toBe(false);
  });
});
