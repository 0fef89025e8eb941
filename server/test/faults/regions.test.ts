import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemClock } from '../../src/clock.js';
import { type Config, loadConfig } from '../../src/config.js';
import { openDatabase } from '../../src/db/connect.js';
import { createImagesRepo } from '../../src/db/images-repo.js';
import { makePng, seedImages } from '../../src/seed.js';
import { createCosStorage } from '../../src/storage/cos.js';
import { type CosFixture, startCosFixture } from '../fixtures/cos-fixture.js';
import { createTestDatabase } from '../support/database.js';
import { authEnv, COS_CREDENTIALS, type CosAccount, cosEnv, cosStorageOptions } from '../support/env.js';
import { GatewayProcess } from '../support/gateway-process.js';
import { signToken } from '../support/jwt.js';
import { commandStats, OwnedRedis } from '../support/redis-server.js';
import { clearOfStepTurns } from '../support/step-turns.js';
import { report, SteadyLoad, sleep, until } from './helpers/load.js';

// Two regions for real: two COS fixtures as the two buckets (the test plays the storage's
// cross-region replication by copying objects after a delay), two gateways each with its own
// private redis-server, one PostgreSQL database. See docs/operations.md, "Several regions".

const SEEDED = 20;
const BOB_ID = '00000000-0000-4000-8000-00000000b0b1';
const BOB_KEY = 'u/bob/00000000-0000-4000-8000-00000000b0b1.png';
const RATE = 10; // B's page queries per second during the Redis kill
const BUCKET_A: CosAccount = { ...COS_CREDENTIALS, bucket: 'photos-a-1250000000', region: 'ap-test' };
const BUCKET_B: CosAccount = { ...COS_CREDENTIALS, bucket: 'photos-b-1250000000', region: 'ap-test' };

const PAGE = /* GraphQL */ `
  query { images(first: 50) { edges { node { id key signedUrl { url expiresAt cached } } } } }
`;

interface Node {
  id: string;
  key: string;
  signedUrl: { url: string; expiresAt: string; cached: boolean };
}

describe('fault: two regions, each with its own bucket and Redis, one PostgreSQL', () => {
  let fixtureA: CosFixture;
  let fixtureB: CosFixture;
  let redisA: OwnedRedis;
  let redisB: OwnedRedis;
  let database: { url: string; drop: () => Promise<void> };
  let gatewayA: GatewayProcess;
  let gatewayB: GatewayProcess;
  let dataDir: string;
  let token: string;
  /** Alice's seeded images: the page's. */
  let ids: string[];
  /** The gateways' own configuration (their window grid), read from the environment they get. */
  let grid: Config;

  async function page(g: GatewayProcess): Promise<Node[]> {
    const res = await fetch(`${g.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ query: PAGE }),
    });
    const body = (await res.json()) as { data?: { images: { edges: { node: Node }[] } }; errors?: unknown };
    if (res.status !== 200 || !body.data)
      throw new Error(`page: ${res.status} ${JSON.stringify(body.errors)}`);
    return body.data.images.edges.map((e) => e.node);
  }

  /** The URL opens at the fixture it names: 200 with the object's bytes. */
  async function opensAt(url: string, fixture: CosFixture): Promise<void> {
    expect(new URL(url).host).toBe(fixture.host);
    const res = await fetch(url);
    const bytes = Buffer.from(await res.arrayBuffer());
    expect(res.status, `${url}: ${bytes.toString().slice(0, 200)}`).toBe(200);
    const key = decodeURIComponent(new URL(url).pathname.slice(1));
    expect(bytes.equals(fixture.objects.get(key)!.body)).toBe(true);
  }

  function regionEnv(self: 'a' | 'b'): Record<string, string> {
    const own = self === 'a' ? fixtureA : fixtureB;
    return {
      ...cosEnv(own, self === 'a' ? BUCKET_A : BUCKET_B),
      ...authEnv(),
      DATABASE_URL: database.url,
      REDIS_URL: (self === 'a' ? redisA : redisB).url,
      SIGNET_REGION: self,
      STORAGE_REGIONS: `a=${BUCKET_A.bucket}@${fixtureA.host},b=${BUCKET_B.bucket}@${fixtureB.host}`,
      DATA_DIR: path.join(dataDir, self),
      SEED_DEMO: 'false',
      LOG_LEVEL: 'warn',
      // Only b backfills placeholders (see Bob's image).
      PLACEHOLDER_BACKFILL_INTERVAL_SECONDS: self === 'a' ? '0' : '300',
    };
  }

  beforeAll(async () => {
    [fixtureA, fixtureB] = await Promise.all([
      startCosFixture(COS_CREDENTIALS),
      startCosFixture(COS_CREDENTIALS),
    ]);
    [redisA, redisB] = await Promise.all([OwnedRedis.start(), OwnedRedis.start()]);
    database = await createTestDatabase();
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'signet-regions-'));
    // Images from before the regions (no home region): every bucket has them.
    const db = await openDatabase({ databaseUrl: database.url, dataDir });
    try {
      ids = await seedImages({
        storage: createCosStorage(cosStorageOptions(fixtureA, BUCKET_A)),
        images: createImagesRepo(db),
        clock: systemClock,
        ownerId: 'alice',
        count: SEEDED,
        width: 16,
        height: 16,
      });
      // Bob's upload in a, not replicated yet and without its placeholder: only b's backfill
      // (a's is off) can compute it, and only from a's bucket.
      for (const [k, v] of fixtureA.objects) fixtureB.objects.set(k, { ...v });
      await createCosStorage(cosStorageOptions(fixtureA, BUCKET_A)).put(
        BOB_KEY,
        makePng(32, 32, [10, 120, 10], [200, 200, 20]),
        'image/png',
      );
      await createImagesRepo(db).insert({
        id: BOB_ID,
        ownerId: 'bob',
        objectKey: BOB_KEY,
        contentType: 'image/png',
        byteSize: fixtureA.objects.get(BOB_KEY)!.body.length,
        width: 32,
        height: 32,
        etag: null,
        homeRegion: 'a',
        animated: false,
        createdAt: new Date(),
      });
    } finally {
      await db.close();
    }
    token = await signToken('alice');
    grid = loadConfig(regionEnv('a'));
    [gatewayA, gatewayB] = await Promise.all([
      GatewayProcess.start(regionEnv('a')),
      GatewayProcess.start(regionEnv('b')),
    ]);
  }, 90_000);

  afterAll(async () => {
    // Everything by the PID this test started it with.
    await Promise.all([gatewayA?.stop(), gatewayB?.stop()]);
    await Promise.all([redisA?.kill(), redisB?.kill()]);
    await Promise.all([fixtureA?.close(), fixtureB?.close()]);
    await database?.drop();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it('each region hands out URLs of its own bucket', async () => {
    // The first pages sign, the warm ones below must find them cached: not across a step turn.
    await clearOfStepTurns(grid, ids, 10_000);
    const [a, b] = await Promise.all([page(gatewayA), page(gatewayB)]);
    expect(a).toHaveLength(SEEDED);
    expect(b.map((n) => n.id)).toEqual(a.map((n) => n.id));
    for (const n of a) await opensAt(n.signedUrl.url, fixtureA);
    for (const n of b) await opensAt(n.signedUrl.url, fixtureB);
    // The hot path is unchanged by regions: a warm page is one MGET on the region's own Redis.
    const admin = redisB.client();
    try {
      await admin.config('RESETSTAT');
      for (let i = 0; i < 3; i++) {
        const warm = await page(gatewayB);
        expect(warm.every((n) => n.signedUrl.cached)).toBe(true);
        expect(warm.map((n) => n.signedUrl.url)).toEqual(b.map((n) => n.signedUrl.url));
      }
      expect((await commandStats(admin))['mget']).toBe(3);
    } finally {
      admin.disconnect();
    }
  });

  it("serves a fresh upload of A from A's bucket in B until it is replicated, then from B's", async () => {
    const form = new FormData();
    form.append('operations', JSON.stringify({ query: UPLOAD, variables: { file: null } }));
    form.append('map', JSON.stringify({ 0: ['variables.file'] }));
    form.append(
      '0',
      new Blob([new Uint8Array(makePng(24, 24, [200, 40, 40], [40, 40, 200]))], { type: 'image/png' }),
      'a.png',
    );
    const res = await fetch(`${gatewayA.url}/graphql`, {
      method: 'POST',
      headers: { 'x-graphql-yoga-csrf': '1', authorization: `Bearer ${token}` },
      body: form,
    });
    const uploaded = ((await res.json()) as { data: { uploadImage: { id: string; key: string } } }).data
      .uploadImage;
    expect(fixtureA.objects.has(uploaded.key)).toBe(true);
    expect(fixtureB.objects.has(uploaded.key)).toBe(false);

    const inB = async () => (await page(gatewayB)).find((n) => n.id === uploaded.id)!;
    // `again` must be B's cached URL of `early`: not across the upload's step turn.
    await clearOfStepTurns(grid, [uploaded.id], 5_000);
    const inA = (await page(gatewayA)).find((n) => n.id === uploaded.id)!;
    await opensAt(inA.signedUrl.url, fixtureA);
    // Not in B's bucket yet: B signs A's. Twice: the second answer comes from B's cache.
    const early = await inB();
    await opensAt(early.signedUrl.url, fixtureA);
    await sleep(300);
    const again = await inB();
    expect(again.signedUrl.url).toBe(early.signedUrl.url);
    expect(again.signedUrl.cached).toBe(true);

    // The storage's replication, played by the test: the object lands in B's bucket later.
    await sleep(1500);
    const copy = fixtureA.objects.get(uploaded.key)!;
    fixtureB.objects.set(uploaded.key, { ...copy });
    const landed = performance.now();
    let moved: Node | undefined;
    await until(
      "B's URL to move to B's bucket",
      async () => {
        moved = await inB();
        return new URL(moved.signedUrl.url).host === fixtureB.host;
      },
      30_000,
    );
    const switchMs = Math.round(performance.now() - landed);
    console.log(`[faults] regions: B moved to its own bucket ${switchMs} ms after the copy landed`);
    await opensAt(moved!.signedUrl.url, fixtureB);
    // A still serves its own bucket.
    await opensAt((await page(gatewayA)).find((n) => n.id === uploaded.id)!.signedUrl.url, fixtureA);

    // A delete (here through B) removes the object from every region's bucket: no orphans.
    const del = await fetch(`${gatewayB.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ query: `mutation { deleteImage(id: "${uploaded.id}") }` }),
    });
    expect(((await del.json()) as { data: { deleteImage: boolean } }).data.deleteImage).toBe(true);
    expect(fixtureA.objects.has(uploaded.key)).toBe(false);
    expect(fixtureB.objects.has(uploaded.key)).toBe(false);
    expect((await page(gatewayB)).some((n) => n.id === uploaded.id)).toBe(false);
  }, 60_000);

  it("b's placeholder backfill reads a not-yet-replicated upload from a's bucket", async () => {
    const db = await openDatabase({ databaseUrl: database.url, dataDir });
    try {
      const repo = createImagesRepo(db);
      let placeholder: string | null = null;
      await until(
        "b's backfill to compute Bob's placeholder",
        async () => {
          placeholder = (await repo.findLive([BOB_ID]))[0]?.placeholder ?? null;
          return placeholder !== null;
        },
        30_000,
      );
      // A ThumbHash, not '' (which would mean "missing", never retried).
      expect(placeholder).toMatch(/^[A-Za-z0-9+/]{10,}={0,2}$/);
      expect(fixtureB.objects.has(BOB_KEY)).toBe(false);
    } finally {
      await db.close();
    }
  }, 40_000);

  /** An image of alice's under `key`, in both buckets, with its row (no home region: everywhere). */
  async function imageInBoth(db: Awaited<ReturnType<typeof openDatabase>>, id: string, key: string) {
    await createCosStorage(cosStorageOptions(fixtureA, BUCKET_A)).put(
      key,
      makePng(8, 8, [1, 2, 3], [4, 5, 6]),
      'image/png',
    );
    fixtureB.objects.set(key, { ...fixtureA.objects.get(key)! });
    await createImagesRepo(db).insert({
      id,
      ownerId: 'alice',
      objectKey: key,
      contentType: 'image/png',
      byteSize: fixtureA.objects.get(key)!.body.length,
      width: 8,
      height: 8,
      etag: null,
      homeRegion: null,
      animated: false,
      createdAt: new Date(),
    });
  }

  async function deleteThroughA(id: string): Promise<unknown> {
    const res = await fetch(`${gatewayA.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ query: 'mutation($id: ID!) { deleteImage(id: $id) }', variables: { id } }),
    });
    return res.json();
  }

  it("an upload's delete while b's bucket is unavailable removes a's copy and the row, and leaves b's to b's sweep", async () => {
    const id = '00000000-0000-4000-8000-00000000de1e';
    const key = `u/alice/${id}.png`;
    const db = await openDatabase({ databaseUrl: database.url, dataDir });
    try {
      await imageInBoth(db, id, key);
      // b's bucket answers 503 for now (the SDK tries a delete more than once).
      fixtureB.failNext(1000, 503);
      // Deleted for the user: a's bytes are gone, so the row goes too (kept, it would list an
      // image that answers 404 in a, or nowhere for an upload not yet replicated).
      expect(await deleteThroughA(id)).toEqual({ data: { deleteImage: true } });
      expect(fixtureA.objects.has(key)).toBe(false);
      expect((await createImagesRepo(db).findLive([id])).length).toBe(0);
      expect((await page(gatewayB)).some((n) => n.id === id)).toBe(false);
      // b's copy waits for b's orphan sweep (an upload-shaped key no live row names), and the
      // node says so.
      expect(fixtureB.objects.has(key)).toBe(true);
      expect(
        gatewayA.logs.some((l) => l.includes('not all it left in storage') && l.includes('region b')),
      ).toBe(true);
    } finally {
      fixtureB.failNext(0);
      fixtureB.objects.delete(key);
      await db.close();
    }
  }, 30_000);

  it("an imported object's delete, or one b refuses for good, fails and keeps the row, to be retried", async () => {
    // No orphan sweep would ever remove b's copy of an imported key, nor of any key while b's
    // bucket refuses (a wrong key, a missing bucket): the delete fails as a whole, retryable.
    const cases = [
      { id: '00000000-0000-4000-8000-00000000de2e', key: 'photos/2020/beach.png', status: 503 },
      {
        id: '00000000-0000-4000-8000-00000000de3e',
        key: 'u/alice/00000000-0000-4000-8000-00000000de3e.png',
        status: 403,
      },
    ];
    const db = await openDatabase({ databaseUrl: database.url, dataDir });
    try {
      for (const c of cases) {
        await imageInBoth(db, c.id, c.key);
        fixtureB.failNext(1000, c.status);
        const answer = (await deleteThroughA(c.id)) as { errors?: { extensions: { code: string } }[] };
        expect(answer.errors?.[0]?.extensions.code, c.key).toBe('SERVICE_UNAVAILABLE');
        expect((await createImagesRepo(db).findLive([c.id])).length, c.key).toBe(1);
        expect(fixtureB.objects.has(c.key), c.key).toBe(true);
        // Once b answers, the same delete completes everywhere.
        fixtureB.failNext(0);
        expect(await deleteThroughA(c.id)).toEqual({ data: { deleteImage: true } });
        expect(fixtureB.objects.has(c.key) || fixtureA.objects.has(c.key), c.key).toBe(false);
      }
    } finally {
      fixtureB.failNext(0);
      for (const c of cases) {
        fixtureA.objects.delete(c.key);
        fixtureB.objects.delete(c.key);
      }
      await db.close();
    }
  }, 60_000);

  it("keeps B's answers when A's Redis is SIGKILLed", async () => {
    // Every page of the ~11 s load must be cached: not across a step turn (a group of the 20
    // images turning would make one page sign its next URLs, rightly, and count as uncached).
    await clearOfStepTurns(grid, ids, 15_000);
    const baseline = await page(gatewayB);
    const mismatches: string[] = [];
    const load = new SteadyLoad(RATE, {
      page: async () => {
        try {
          const nodes = await page(gatewayB);
          const same =
            nodes.length === baseline.length &&
            nodes.every((n, i) => {
              const was = baseline[i]!;
              // Identical, unless the image's step turned meanwhile (a new window, same bucket).
              return (
                n.id === was.id &&
                new URL(n.signedUrl.url).host === fixtureB.host &&
                (n.signedUrl.url === was.signedUrl.url || n.signedUrl.expiresAt !== was.signedUrl.expiresAt)
              );
            });
          if (!same) mismatches.push(JSON.stringify(nodes.slice(0, 2)));
          return { ok: same, status: 200, cached: nodes.every((n) => n.signedUrl.cached) };
        } catch (err) {
          return { ok: false, status: 0, detail: (err as Error).message };
        }
      },
    });
    load.start('before');
    await sleep(4000);
    await redisA.kill();
    load.phase('a-redis-killed');
    await sleep(6000);
    await load.stop();
    report("regions: B's page while A's Redis is SIGKILLed", load, ['page'], ['before', 'a-redis-killed']);

    expect(mismatches).toEqual([]);
    const before = load.select({ kind: 'page', phase: 'before' });
    const after = load.select({ kind: 'page', phase: 'a-redis-killed' });
    expect(before.length).toBeGreaterThan(RATE * 3);
    expect(after.length).toBeGreaterThan(RATE * 5);
    expect([...before, ...after].filter((s) => !s.ok)).toEqual([]);
    // B's pages stayed on B's cache: A's Redis was never on B's path.
    expect(after.every((s) => s.cached)).toBe(true);
    for (const n of await page(gatewayB)) await opensAt(n.signedUrl.url, fixtureB);
    // A is degraded (no cache) but still answers, from its own bucket.
    for (const n of await page(gatewayA)) await opensAt(n.signedUrl.url, fixtureA);
    expect(gatewayB.child.exitCode).toBeNull();
  }, 60_000);
});

const UPLOAD = /* GraphQL */ `
  mutation Upload($file: File!) { uploadImage(file: $file) { id key } }
`;
