import { randomBytes, randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { SignJWT } from 'jose';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { FakeClock } from '../../src/clock.js';
import { OrphanSweeper } from '../../src/images/orphan-sweep.js';
import { createMetrics } from '../../src/metrics.js';
import { type CosFixture, startCosFixture } from '../fixtures/cos-fixture.js';
import { makePng } from '../fixtures/images.js';
import { createTestDatabase } from '../support/database.js';
import { apiNodeEnv, COS_CREDENTIALS, TEST_JWT_SECRET, testRedisUrl } from '../support/env.js';
import { GatewayProcess } from '../support/gateway-process.js';
import { type Harness, startHarness } from '../support/harness.js';
import { captureLogger } from '../support/logs.js';
import { counterValue, waitFor } from '../support/proxy.js';
import { UPLOAD_MUTATION, uploadFile } from '../support/upload.js';

const PNG = makePng(6, 4, [255, 94, 58], [0, 122, 255]);

// Finding: an upload whose process died between the object's put and the row's insert left an
// object no row names, for ever. Reproduced for real: the fixture holds the put's answer after
// storing the object, and the gateway is SIGKILLed right then.
describe('orphan sweep: a gateway killed between the put and the insert', () => {
  let fixture: CosFixture;
  let pgdb: { url: string; drop: () => Promise<void> };
  let gw: GatewayProcess | undefined;
  let token: string;
  const redisPrefix = `signet-orphans-${randomBytes(4).toString('hex')}:`;

  beforeAll(async () => {
    fixture = await startCosFixture({ ...COS_CREDENTIALS });
    pgdb = await createTestDatabase();
    token = await new SignJWT({})
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('alice')
      .setIssuedAt()
      .setExpirationTime('1h')
      .sign(new TextEncoder().encode(TEST_JWT_SECRET));
  });
  afterAll(async () => {
    fixture?.holdPutResponses(false);
    await gw?.kill();
    await pgdb?.drop();
    await fixture?.close();
    // The worker's BullMQ queue and job scheduler live under its own prefix: leave none behind.
    const redis = new Redis(testRedisUrl());
    const bull = `{${redisPrefix.replace(/:$/, '')}-bull}`;
    for (const pattern of [`${redisPrefix}*`, `${bull}*`]) {
      const keys = await redis.keys(pattern);
      if (keys.length > 0) await redis.del(...keys);
    }
    redis.disconnect();
  });

  function upload(bytes: Buffer): Promise<Response> {
    const form = new FormData();
    form.append('operations', JSON.stringify({ query: UPLOAD_MUTATION, variables: { file: null } }));
    form.append('map', JSON.stringify({ 0: ['variables.file'] }));
    form.append('0', new Blob([new Uint8Array(bytes)], { type: 'image/png' }), 'a.png');
    return fetch(`${gw!.url}/graphql`, {
      method: 'POST',
      headers: { 'x-graphql-yoga-csrf': '1', authorization: `Bearer ${token}` },
      body: form,
    });
  }

  async function rowKeys(): Promise<string[]> {
    const c = new pg.Client({ connectionString: pgdb.url });
    await c.connect();
    try {
      const r = await c.query<{ object_key: string }>('select object_key from images order by object_key');
      return r.rows.map((row) => row.object_key);
    } finally {
      await c.end();
    }
  }

  it('leaves an orphan behind, which a restarted worker sweeps while a live image stays', async () => {
    // An API node, as in production: it stores uploads and runs no background work.
    gw = await GatewayProcess.start(apiNodeEnv(fixture, pgdb.url));
    const live = (await (await upload(PNG)).json()) as { data: { uploadImage: { key: string } } };
    const liveKey = live.data.uploadImage.key;
    expect(fixture.objects.has(liveKey)).toBe(true);

    fixture.holdPutResponses(true);
    const dying = upload(Buffer.concat([PNG, Buffer.alloc(100)])).catch((err: Error) => err);
    await waitFor(() => fixture.objects.size === 2, 10_000);
    const exit = await gw.kill('SIGKILL');
    expect(exit.signal).toBe('SIGKILL');
    expect(await dying).toBeInstanceOf(Error); // the connection died with the process
    fixture.holdPutResponses(false);

    const orphan = [...fixture.objects.keys()].find((k) => k !== liveKey)!;
    expect(orphan).toMatch(/^u\/alice\/[0-9a-f-]{36}\.png$/);
    expect(await rowKeys()).toEqual([liveKey]); // the object has no row: an orphan

    // A worker with BullMQ (Redis), a sweep every second and a grace of two seconds.
    gw = await GatewayProcess.start({
      ...apiNodeEnv(fixture, pgdb.url),
      SIGNET_ROLE: 'worker',
      REDIS_URL: testRedisUrl(),
      REDIS_PREFIX: redisPrefix,
      ORPHAN_SWEEP_INTERVAL_SECONDS: '1',
      ORPHAN_SWEEP_GRACE_SECONDS: '2',
      // The grace must outlast the longest upload's put: 0.5 s + 64 KB at 256 KB/s.
      COS_TIMEOUT_MS: '500',
      UPLOAD_MAX_BYTES: '65536',
    });
    await waitFor(() => !fixture.objects.has(orphan), 20_000);
    expect(fixture.objects.has(liveKey)).toBe(true);
    const metrics = await (await fetch(`${gw.url}/metrics`)).text();
    expect(metrics).toMatch(/^signet_orphan_objects_deleted_total 1$/m);
    // The line comes through the child's stdout pipe, which may be read after the metrics answer.
    await waitFor(() => gw!.logs.some((l) => l.includes('orphan sweep deleted')), 5_000);
    const line = gw.logs.find((l) => l.includes('orphan sweep deleted'));
    expect(JSON.parse(line!)).toMatchObject({ key: orphan, level: 40 });
    // Later sweeps find nothing more to do.
    const deletes = fixture.requests.log.filter((r) => r.method === 'DELETE').length;
    const lists = () => fixture.requests.log.filter((r) => r.method === 'GET' && r.key === '').length;
    const listedBefore = lists();
    await waitFor(() => lists() >= listedBefore + 2, 10_000);
    expect(fixture.requests.log.filter((r) => r.method === 'DELETE').length).toBe(deletes);
    expect(fixture.objects.has(liveKey)).toBe(true);
    expect(fixture.signatureFailures).toBe(0);
  });
});

// The sweep itself, against real storage and SQL, with the clock in the test's hands.
describe('OrphanSweeper', () => {
  let h: Harness;
  const statements: string[] = [];
  const { logger, logs } = captureLogger('info');

  beforeAll(async () => {
    h = await startHarness({ driver: 'cos', redis: 'memory', onQuery: (sql) => statements.push(sql) });
  });
  afterAll(async () => {
    await h?.close();
  });
  afterEach(() => {
    statements.length = 0;
  });

  it('deletes only old objects under u/ that no live row names, one SQL statement per page', async () => {
    const live = (await uploadFile(h, PNG)).data!.uploadImage.key;
    const deleted = (await uploadFile(h, PNG)).data!.uploadImage;
    await h.gql('mutation($id: ID!) { deleteImage(id: $id) }', { id: deleted.id });
    // A deleted image's row stays (soft delete) while its object is gone; put one back as
    // replication into this region's bucket would after the delete: only a deleted row names
    // it, so it is the sweep's.
    await h.storage.put(deleted.key, PNG, 'image/png');
    const orphans = [0, 1, 2].map(() => `u/alice/${randomUUID()}.png`);
    for (const key of orphans) await h.storage.put(key, PNG, 'image/png');
    await h.storage.put('x/not-an-upload.png', PNG, 'image/png');
    // The uploads' placeholders are written after they answered: let them land before counting.
    await h.container.placeholders.idle();

    const metrics = createMetrics();
    const clock = new FakeClock(Date.now());
    const sweeper = new OrphanSweeper(
      {
        storage: h.storage,
        images: h.container.imagesRepo,
        guard: h.container.sweepGuard,
        metrics,
        clock,
        logger,
      },
      { graceSeconds: 3600, pageSize: 2 },
    );
    // Everything is younger than the grace: nothing is judged, no SQL on images at all (the
    // guard reads and rotates its token: two statements a run, whatever the bucket holds).
    const onImages = () => statements.filter((s) => !/"signet_state"/.test(s));
    statements.length = 0;
    expect(await sweeper.sweep()).toEqual({
      listed: 5,
      deleted: 0,
      complete: true,
      variantSetsDeleted: 0,
      debrisRemoved: 0,
    });
    expect(onImages()).toEqual([]);
    expect(statements).toHaveLength(2);

    clock.advance(2 * 3600 * 1000);
    statements.length = 0;
    expect(await sweeper.sweep()).toMatchObject({ listed: 5, deleted: 4, complete: true });
    const probes = statements.filter((s) => /select "object_key" from "images"/.test(s));
    expect(probes).toHaveLength(3); // 5 keys, 2 per page
    expect(onImages()).toEqual(probes);
    for (const key of [...orphans, deleted.key]) expect(h.fixture!.objects.has(key)).toBe(false);
    for (const key of [live, 'x/not-an-upload.png']) expect(h.fixture!.objects.has(key)).toBe(true);
    expect(await counterValue(metrics.orphansDeleted)).toBe(4);
    expect(logs.filter((l) => l.includes('orphan sweep deleted'))).toHaveLength(4);
  });

  it('walks a bounded number of pages per run and goes on from there next time', async () => {
    const before = [...h.fixture!.objects.keys()].filter((k) => k.startsWith('u/')).length;
    for (let i = 0; i < 5; i++) await h.storage.put(`u/zed/${randomUUID()}.png`, PNG, 'image/png');
    const clock = new FakeClock(Date.now() + 2 * 3600 * 1000);
    const sweeper = new OrphanSweeper(
      {
        storage: h.storage,
        images: h.container.imagesRepo,
        guard: h.container.sweepGuard,
        metrics: createMetrics(),
        clock,
        logger,
      },
      { graceSeconds: 3600, pageSize: 2, maxPages: 2 },
    );
    const total = before + 5;
    let listed = 0;
    let deleted = 0;
    for (let run = 0; run < 10; run++) {
      const r = await sweeper.sweep();
      expect(r.listed).toBeLessThanOrEqual(4);
      listed += r.listed;
      deleted += r.deleted;
      if (r.complete) break;
    }
    expect(listed).toBeGreaterThanOrEqual(total - deleted);
    expect(deleted).toBe(5);
    expect([...h.fixture!.objects.keys()].filter((k) => k.startsWith('u/zed/'))).toEqual([]);
  });
});

// Finding (round nine, a restore drill): a database restored from a backup has no rows for the
// uploads made since, and the first sweep of a worker started on it deleted their objects, the
// only copies; so did a node started on an empty database, for the whole bucket. The guard holds
// the sweep when the database is not the one that last swept the bucket (images/sweep-guard.ts).
describe('orphan sweep after a database restore (PostgreSQL, cos)', () => {
  let h: Harness;
  const { logger, logs } = captureLogger('info');

  beforeAll(async () => {
    h = await startHarness({ driver: 'cos', redis: 'memory' });
  });
  afterAll(async () => {
    await h?.close();
  });

  const STATE_KEY = 'orphan-sweep:bucket';
  const stateToken = async () =>
    (
      await h.db.kysely
        .selectFrom('signet_state')
        .select('value')
        .where('key', '=', STATE_KEY)
        .executeTakeFirst()
    )?.value;
  const sweeper = (metrics = createMetrics()) =>
    new OrphanSweeper(
      {
        storage: h.storage,
        images: h.container.imagesRepo,
        guard: h.container.sweepGuard,
        metrics,
        // Two hours on: every object is past the grace.
        clock: new FakeClock(Date.now() + 2 * 3600 * 1000),
        logger,
      },
      { graceSeconds: 3600 },
    );

  it('holds the sweep on a database restored from before the last sweep: the uploads since stay; adopting releases it', async () => {
    const before = (await uploadFile(h, PNG)).data!.uploadImage;
    expect((await sweeper().sweep()).held).toBeUndefined();
    // The backup: the rows as they are, and the sweep's token with them.
    const backedUp = await stateToken();
    expect(backedUp).toMatch(/^[0-9a-f-]{36}$/);
    const since = [
      (await uploadFile(h, PNG)).data!.uploadImage,
      (await uploadFile(h, PNG)).data!.uploadImage,
    ];
    await h.container.placeholders.idle();
    // A sweep after the backup (every ORPHAN_SWEEP_INTERVAL_SECONDS), which the restore undoes.
    expect((await sweeper().sweep()).held).toBeUndefined();
    expect(await stateToken()).not.toBe(backedUp);

    // The restore: the rows of the uploads since are gone, the token is the backup's.
    await h.db.kysely
      .deleteFrom('images')
      .where(
        'id',
        'in',
        since.map((i) => i.id),
      )
      .execute();
    await h.db.kysely
      .updateTable('signet_state')
      .set({ value: backedUp! })
      .where('key', '=', STATE_KEY)
      .execute();

    const metrics = createMetrics();
    const held = await sweeper(metrics).sweep();
    expect(held).toMatchObject({ listed: 0, deleted: 0, complete: false });
    expect(held.held).toMatch(/not the one that last swept this bucket/);
    for (const img of [before, ...since]) expect(await h.storage.head(img.key)).not.toBeNull();
    expect((await metrics.registry.getSingleMetricAsString('signet_orphan_sweep_held')).trim()).toMatch(
      / 1$/,
    );
    expect(logs.filter((l) => l.includes('orphan sweep held'))).toHaveLength(1);
    expect(await h.container.sweepGuard.status()).toMatchObject({ ok: false });
    // Held until adopted, however often it runs.
    expect((await sweeper().sweep()).held).toBeDefined();

    // The operator has recovered what the restore lost (docs/operations.md), and adopts.
    await h.container.sweepGuard.adopt();
    const after = await sweeper(metrics).sweep();
    expect(after.held).toBeUndefined();
    expect(after.deleted).toBe(2);
    expect((await metrics.registry.getSingleMetricAsString('signet_orphan_sweep_held')).trim()).toMatch(
      / 0$/,
    );
    expect(await h.storage.head(before.key)).not.toBeNull();
  });

  it('holds it on a database that never swept this bucket (an empty or another one); a rotation cut short is no restore', async () => {
    expect((await sweeper().sweep()).held).toBeUndefined();
    const token = (await stateToken())!;
    // A crash between the bucket's write and the database's: either half is accepted.
    const next = randomUUID();
    const mark = (body: object) => Buffer.from(JSON.stringify(body));
    const pendingMark = mark({ token, pending: next, at: new Date().toISOString() });
    await h.storage.put('_signet/orphan-sweep.json', pendingMark, 'application/json', pendingMark.length);
    expect(await h.container.sweepGuard.status()).toEqual({ ok: true });
    await h.db.kysely.updateTable('signet_state').set({ value: next }).where('key', '=', STATE_KEY).execute();
    expect(await h.container.sweepGuard.status()).toEqual({ ok: true });

    await h.db.kysely.deleteFrom('signet_state').where('key', '=', STATE_KEY).execute();
    const held = await sweeper().sweep();
    expect(held.held).toMatch(/never swept this bucket/);
    await h.container.sweepGuard.adopt();
    expect(await h.container.sweepGuard.status()).toEqual({ ok: true });
  });
});

// The embedded mode runs the same sweep on its timers, over the local driver's folder.
describe('orphan sweep on the timer engine with the local driver', () => {
  let h: Harness;

  beforeAll(async () => {
    h = await startHarness({
      driver: 'local',
      redis: 'memory',
      database: 'pglite',
      start: true,
      env: { ORPHAN_SWEEP_INTERVAL_SECONDS: '1', ORPHAN_SWEEP_GRACE_SECONDS: '1' },
    });
  });
  afterAll(async () => {
    await h?.close();
  });

  it('removes an object without a row and keeps a live image', async () => {
    const live = (await uploadFile(h, PNG)).data!.uploadImage;
    const orphan = `u/alice/${randomUUID()}.png`;
    await h.storage.put(orphan, PNG, 'image/png');
    // The counter moves after the whole delete (object, then its variants) has returned; the
    // object's file is gone before that, so waiting on the file alone races the count.
    await waitFor(async () => (await counterValue(h.container.metrics.orphansDeleted)) >= 1, 15_000);
    expect(await h.storage.head(orphan)).toBeNull();
    expect(await h.storage.head(live.key)).not.toBeNull();
    expect(await counterValue(h.container.metrics.orphansDeleted)).toBe(1);
    expect((await fetch(live.signedUrl.url)).status).toBe(200);
  });
});
