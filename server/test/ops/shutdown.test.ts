import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase } from '../../src/db/connect.js';
import { createImagesRepo } from '../../src/db/images-repo.js';
import type { Db } from '../../src/db/types.js';
import { urlKeys } from '../../src/urls/redis-store.js';
import { LatencyProxy } from '../faults/helpers/latency-proxy.js';
import { type CosFixture, startCosFixture } from '../fixtures/cos-fixture.js';
import { createTestDatabase } from '../support/database.js';
import { apiNodeEnv, COS_CREDENTIALS } from '../support/env.js';
import { GatewayProcess } from '../support/gateway-process.js';
import { HttpConnection } from '../support/http-connection.js';
import { signToken } from '../support/jwt.js';
import { addImageRow, putInFixture, sha256, testProxyTokens } from '../support/proxy.js';
import { OwnedRedis } from '../support/redis-server.js';
import { postSubscription } from '../support/sse.js';

const MB = 1024 * 1024;
/** docs/operations.md: the process exits within 10 s (main.ts forces an exit then). */
const BOUND_MS = 10_000;

async function readAll(reader: ReadableStreamDefaultReader<Uint8Array>, into: Buffer[]): Promise<void> {
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return;
    into.push(Buffer.from(value));
  }
}

/** One page of the owner's images with their signed URLs (each one an access of that image). */
async function viewPage(base: string, token: string): Promise<string[]> {
  const res = await fetch(`${base}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ query: '{ images(first: 100) { edges { node { id signedUrl { url } } } } }' }),
  });
  const body = (await res.json()) as {
    data?: { images: { edges: { node: { id: string } }[] } };
    errors?: unknown[];
  };
  expect(body.errors).toBeUndefined();
  return body.data!.images.edges.map((e) => e.node.id);
}

// SIGTERM against the real entry point: in-flight downloads finish, subscriptions complete,
// /readyz says draining, responses close their connections, background work finishes and hands
// back what it held (access counts, refresh leases, job locks), the process exits 0 within the
// bound.
describe('graceful shutdown of the real entry point', () => {
  let fixture: CosFixture;
  let pgdb: { url: string; drop: () => Promise<void> };
  let db: Db;
  let dataDir: string;
  let redis: OwnedRedis;
  let gw: GatewayProcess | undefined;
  const tokens = testProxyTokens();

  beforeAll(async () => {
    fixture = await startCosFixture(COS_CREDENTIALS);
    redis = await OwnedRedis.start();
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
    await redis?.kill();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  async function bigImage(size: number, owner = 'alice') {
    const body = randomBytes(size);
    const key = `u/${owner}/${randomBytes(6).toString('hex')}.bin`;
    const etag = putInFixture(fixture, key, body, 'application/octet-stream');
    const id = await addImageRow(createImagesRepo(db), owner, key, body, 'application/octet-stream', etag);
    return {
      id,
      body,
      path: `/proxy/${id}?t=${tokens.sign(id, 'stream')}&mode=stream`,
      link: (base: string) => `${base}/proxy/${id}?t=${tokens.sign(id, 'stream')}&mode=stream`,
    };
  }

  async function openSubscription(base: string, id: string) {
    const res = await postSubscription(
      base,
      'subscription($ids: [ID!]!) { signedUrlRefreshed(ids: $ids) { imageId } }',
      { ids: [id] },
      await signToken('alice'),
    );
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const reader = res.body!.getReader();
    const first = await reader.read(); // yoga's opening ping: the stream is live
    expect(first.done).toBe(false);
    return reader;
  }

  it('SIGTERM during a download and an open subscription: both end cleanly, exit 0 in the bound', async () => {
    gw = await GatewayProcess.start({ ...apiNodeEnv(fixture, pgdb.url), SIGNET_ROLE: 'all' });
    const img = await bigImage(40 * MB);
    const sse = await openSubscription(gw.url, img.id);
    // The download on a keep-alive connection the test drives by hand: it reads a first part,
    // then stops, so the response is still in flight when SIGTERM comes.
    const conn = await HttpConnection.open(gw.url);
    conn.send(img.path);
    const head = await conn.head();
    expect(head.status).toBe(200);
    expect(Number(head.headers['content-length'])).toBe(img.body.length);
    const chunks: Buffer[] = [await conn.some(img.body.length, 64 * 1024)];

    const sent = Date.now();
    gw.child.kill('SIGTERM');
    // The subscription completes (SSE `complete` event) and its response ends.
    const events: Buffer[] = [];
    await readAll(sse, events);
    expect(Buffer.concat(events).toString()).toContain('event: complete');
    // The node is draining now. A request that reaches it on a connection it still serves (here
    // pipelined behind the unfinished download) hears so: /readyz 503 "draining", and the
    // response closes its keep-alive connection.
    conn.send('/readyz');
    // The download that was in flight finishes with every byte.
    chunks.push(await conn.body(head, chunks[0]!.length));
    const got = Buffer.concat(chunks);
    expect(got.length).toBe(img.body.length);
    expect(sha256(got)).toBe(sha256(img.body));
    const ready = await conn.head();
    const readyBody = JSON.parse((await conn.body(ready)).toString()) as { status: string };
    expect(ready.status).toBe(503);
    expect(readyBody.status).toBe('draining');
    expect(ready.headers.connection).toBe('close');
    expect(await conn.closedByServer()).toBe(true);

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
    gw = await GatewayProcess.start(apiNodeEnv(fixture, pgdb.url));
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

  it('SIGTERM flushes the access counts it still holds to Redis', async () => {
    const prefix = 'flush:';
    gw = await GatewayProcess.start({
      ...apiNodeEnv(fixture, pgdb.url),
      REDIS_URL: redis.url,
      REDIS_PREFIX: prefix,
    });
    const mine = await Promise.all([1, 2, 3].map(() => bigImage(1024, 'carol')));
    const token = await signToken('carol');
    // Three views of the page, the last just before SIGTERM: whatever the once-a-second flush did
    // not take yet is in the node's memory when the signal comes.
    for (let i = 0; i < 2; i++) await viewPage(gw.url, token);
    const lastViewAt = Date.now();
    expect((await viewPage(gw.url, token)).sort()).toEqual(mine.map((m) => m.id).sort());
    gw.child.kill('SIGTERM');
    expect(await gw.exited).toEqual({ code: 0, signal: null });

    // The process is gone; Redis has every view of every image.
    const admin = redis.client();
    const k = urlKeys(prefix);
    for (const m of mine) {
      const [count, lastAt] = [await admin.zscore(k.hot, m.id), await admin.zscore(k.live, m.id)];
      expect(Number(count), m.id).toBe(3);
      expect(Number(lastAt), m.id).toBeGreaterThanOrEqual(lastViewAt);
    }
    admin.disconnect();
  });

  it('SIGTERM in the middle of a refresh drain: the claimed batch is refreshed and no lease or job lock is left', async () => {
    const prefix = 'lease:';
    const k = urlKeys(prefix);
    // The worker's Redis is 150 ms away each way once the URLs fall due, so SIGTERM can be sent
    // the moment a claim's answer leaves Redis: the batch is then claimed, and the answer not yet
    // back.
    const far = await LatencyProxy.start(redis.port);
    const admin = redis.client();
    try {
      gw = await GatewayProcess.start({
        ...apiNodeEnv(fixture, pgdb.url),
        SIGNET_ROLE: 'all',
        REDIS_URL: far.url,
        REDIS_PREFIX: prefix,
        REDIS_COMMAND_TIMEOUT_MS: '2000',
        // Signed URLs live 20 s and fall due 15 s ahead: ~5 s after signing. Lease: 5 s.
        URL_TTL_SECONDS: '20',
        REFRESH_AHEAD_SECONDS: '15',
      });
      const mine = await Promise.all(Array.from({ length: 20 }, () => bigImage(256, 'dave')));
      const ids = mine.map((m) => m.id);
      expect((await viewPage(gw.url, await signToken('dave'))).sort()).toEqual([...ids].sort());
      // The page's write-back leaves after its answer: wait for it to land.
      await expect
        .poll(async () => (await admin.zmscore(k.schedule, ...ids)).every((at) => at !== null), {
          timeout: 5000,
        })
        .toBe(true);
      // Where each URL's refresh is scheduled now. Not all of it need lie ahead: with 5 s steps
      // and an offset turning every second, some image may already be due, and a drain may even
      // have refreshed it before the hook below is in place (this check failed CI twice when it
      // asked for every time to be ahead). That changes nothing below: an image is refreshed (its
      // counter moved) or still where this read found it, and the batch the SIGTERM interrupts is
      // claimed after this read: a claimed image left unrefreshed fails, the bug this test is for.
      const at = await admin.zmscore(k.schedule, ...ids);
      const scheduled = new Map<string, number>(ids.map((id, i) => [id, Number(at[i])]));

      let sigtermAt = 0;
      let refreshWrittenAt = 0;
      let claimSent = false;
      // The claim script names the schedule, the hot set and the never-refreshed set; the access
      // flush's names the hot set and the schedule (a subscribed image's mark) but not the
      // never-refreshed set; the write-back's names URL keys, the schedule and the never-refreshed
      // set, not the hot set.
      const isClaim = (text: string, chunk: Buffer) =>
        (text.includes('evalsha') || text.includes('\r\neval\r\n')) &&
        chunk.includes(k.schedule) &&
        chunk.includes(k.hot) &&
        chunk.includes(k.fresh);
      far.onForward = (direction, chunk) => {
        if (direction !== 'up') return;
        const text = chunk.toString('latin1').toLowerCase();
        if (!sigtermAt) {
          if (isClaim(text, chunk)) claimSent = true;
          return;
        }
        const script = text.includes('evalsha') || text.includes('\r\neval\r\n');
        if (script && !refreshWrittenAt && chunk.includes(k.schedule) && !chunk.includes(k.hot)) {
          // The refresh's write-back: the URLs and the schedule (one script call).
          refreshWrittenAt = Date.now();
        }
      };
      // SIGTERM the moment a claim's answer that holds ids leaves Redis (`*2 :idle *n` with n > 0,
      // before its 150 ms back): the batch is claimed and the worker does not know it yet. A claim
      // that found nothing is let pass: a drain queued for what an earlier drain already took
      // claims nothing (CI once sent SIGTERM on such a claim, and no refresh could follow).
      far.onArrive = (direction, chunk) => {
        if (direction !== 'down' || sigtermAt || !claimSent) return;
        const text = chunk.toString('latin1');
        if (/\*2\r\n:\d+\r\n\*[1-9]/.test(text) && ids.some((id) => text.includes(id))) {
          sigtermAt = Date.now();
          gw!.child.kill('SIGTERM');
        }
      };
      far.latencyMs = 150;
      const exit = await gw.exited;
      expect(sigtermAt, 'the worker never claimed').toBeGreaterThan(0);
      expect(exit).toEqual({ code: 0, signal: null });
      // The claimed batch was refreshed after the signal, before the process left.
      expect(refreshWrittenAt).toBeGreaterThan(sigtermAt);

      // Every image is either refreshed (its counter moved) or untouched where the first signing
      // scheduled it. A claimed image that was neither would sit leased until its lease ran out.
      let refreshed = 0;
      for (const id of ids) {
        const r = Number((await admin.hget(k.meta(id), 'r')) ?? 0);
        const at = await admin.zscore(k.schedule, id);
        expect(at, `${id} left the schedule`).not.toBeNull();
        if (r > 0) refreshed++;
        else expect(Number(at), `${id}: claimed, never refreshed`).toBe(scheduled.get(id));
      }
      expect(refreshed).toBeGreaterThan(0);
      // BullMQ: no job left active, no job lock held (another worker would wait for it to expire).
      const bull = `{${prefix.replace(/[{}:]+$/, '')}-bull}:signet-jobs`;
      expect(await admin.llen(`${bull}:active`)).toBe(0);
      const locks: string[] = [];
      let cursor = '0';
      do {
        const [next, found] = await admin.scan(cursor, 'MATCH', `${bull}:*:lock`, 'COUNT', 1000);
        cursor = next;
        locks.push(...found);
      } while (cursor !== '0');
      expect(locks).toEqual([]);
    } finally {
      admin.disconnect();
      await far.close();
    }
  });
});
