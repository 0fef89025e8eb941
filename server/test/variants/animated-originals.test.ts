/**
 * Animated originals on the row (docs/architecture.md, "Variants"): an animated WebP, an APNG and
 * an AVIF sequence are recorded as animated when they are uploaded, and from then on every variant
 * of them — a preset, a transform, each srcset entry, a proxy link's preset — is the original's
 * URL, as a GIF's is; a still of each format keeps its variants. Rows from before the column
 * (null) are backfilled from a ranged read of their head by the placeholder backfill job, and on
 * `s3` by the derived variants' job when its renderer finds the original animated. End to end:
 * PostgreSQL, the COS fixture / the local bucket / s3rver behind the verifying front, sharp.
 */
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { sql } from 'kysely';
import sharp, { type Sharp } from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createImagesRepo } from '../../src/db/images-repo.js';
import type { EventBus } from '../../src/events/event-bus.js';
import { MemoryEventBus } from '../../src/events/memory-bus.js';
import { RedisEventBus } from '../../src/events/redis-bus.js';
import { AnimationBackfill } from '../../src/images/animation-backfill.js';
import { objectKeyFor } from '../../src/images/upload.js';
import { createRedisClient } from '../../src/redis/connect.js';
import { DERIVED_VARIANT_PREFIX } from '../../src/storage/derived-variants.js';
import { AVIF_SEQUENCE_400x300, noisyFrames as frames, makeApng } from '../fixtures/images.js';
import { redisReady, testRedisUrl } from '../support/env.js';
import { type Harness, startHarness } from '../support/harness.js';
import { waitFor } from '../support/proxy.js';
import { subscribeSse } from '../support/sse.js';
import { clearOfStepTurns } from '../support/step-turns.js';
import { TcpProxy } from '../support/tcp-proxy.js';
import { uploadFile } from '../support/upload.js';

/** A 400×300 still, noisy. */
function still(): Sharp {
  return sharp({
    create: {
      width: 400,
      height: 300,
      channels: 3,
      background: '#808080',
      noise: { type: 'gaussian', mean: 128, sigma: 20 },
    },
  });
}

interface Original {
  name: string;
  bytes: Buffer;
  type: string;
  animated: boolean;
}

/** Each format that can be animated, animated and still. */
async function originals(): Promise<Original[]> {
  const f = await frames();
  const webp = await sharp(f, { join: { animated: true } })
    .webp({ loop: 0, delay: [300, 300, 300] })
    .toBuffer();
  expect((await sharp(webp).metadata()).pages).toBe(3);
  const apng = makeApng(f);
  // Past the upload's first read (64 KB): the animation is told from its head all the same.
  expect(webp.length).toBeGreaterThan(64 * 1024);
  expect(apng.length).toBeGreaterThan(64 * 1024);
  return [
    { name: 'animated WebP', bytes: webp, type: 'image/webp', animated: true },
    { name: 'APNG', bytes: apng, type: 'image/png', animated: true },
    { name: 'AVIF sequence', bytes: AVIF_SEQUENCE_400x300, type: 'image/avif', animated: true },
    { name: 'still WebP', bytes: await still().webp().toBuffer(), type: 'image/webp', animated: false },
    { name: 'still PNG', bytes: await still().png().toBuffer(), type: 'image/png', animated: false },
    { name: 'still AVIF', bytes: await still().avif().toBuffer(), type: 'image/avif', animated: false },
  ];
}

/** What a page asks of each image: every kind of variant URL (a transform where allowed). */
function nodeFields(transforms: boolean): string {
  return `
    id
    width
    original: signedUrl { url }
    thumb: signedUrl(preset: "thumb") { url }
    medium: signedUrl(preset: "medium") { url }
    ${transforms ? 'sized: signedUrl(transform: { width: 200, format: JPEG }) { url }' : ''}
    thumbSet: srcset(preset: "thumb")
    mediumSet: srcset(preset: "medium")
    proxy: proxyUrl(preset: "thumb")
  `;
}

interface Node {
  id: string;
  width: number;
  original: { url: string };
  thumb: { url: string };
  medium: { url: string };
  /** Only with IMAGE_TRANSFORMS=any. */
  sized?: { url: string };
  thumbSet: string;
  mediumSet: string;
  proxy: string;
}

/** The owner's page (the page statement: only the columns its fields read), by id. */
async function page(h: Harness, token: string): Promise<Map<string, Node>> {
  const transforms = h.config.images.transforms === 'any';
  const res = await h.gql<{ images: { edges: { node: Node }[] } }>(
    `query { images(first: 50) { edges { node { ${nodeFields(transforms)} } } } }`,
    {},
    { token },
  );
  expect(res.errors).toBeUndefined();
  return new Map(res.data!.images.edges.map((e) => [e.node.id, e.node]));
}

async function animatedOf(h: Harness, id: string): Promise<boolean | null> {
  const r = await sql<{ animated: boolean | null }>`select animated from images where id = ${id}`.execute(
    h.db.kysely,
  );
  return r.rows[0]!.animated;
}

/** Every variant of the image is its original's URL: the same string, so one URL per window. */
function expectOriginalEverywhere(n: Node): void {
  expect(n.thumb.url).toBe(n.original.url);
  expect(n.medium.url).toBe(n.original.url);
  if (n.sized) expect(n.sized.url).toBe(n.original.url);
  // One entry, the original at its own width: a GIF's srcset.
  expect(n.thumbSet).toBe(`${n.original.url} ${n.width}w`);
  expect(n.mediumSet).toBe(`${n.original.url} ${n.width}w`);
}

/** A still's variants are variants: none of them is the original's URL. */
function expectVariants(n: Node): void {
  for (const url of [n.thumb.url, n.medium.url, n.sized?.url]) expect(url).not.toBe(n.original.url);
  for (const set of [n.thumbSet, n.mediumSet]) {
    expect(set.split(', ').every((e) => !e.startsWith(`${n.original.url} `))).toBe(true);
  }
}

async function fetched(url: string, init?: RequestInit) {
  const res = await fetch(url, init);
  return {
    status: res.status,
    type: res.headers.get('content-type'),
    location: res.headers.get('location'),
    body: Buffer.from(await res.arrayBuffer()),
  };
}

describe.each(['cos', 'local'] as const)('uploads of animated and still originals (%s driver)', (driver) => {
  let h: Harness;
  let token: string;
  const uploaded: (Original & { id: string })[] = [];

  beforeAll(async () => {
    h = await startHarness({ driver, redis: 'memory', env: { IMAGE_TRANSFORMS: 'any' } });
    token = await h.token('alice');
    for (const o of await originals()) {
      const up = await uploadFile(h, o.bytes, { type: o.type, name: o.name, token });
      expect(up.errors, o.name).toBeUndefined();
      expect(up.data!.uploadImage).toMatchObject({ contentType: o.type, width: 400, height: 300 });
      uploaded.push({ ...o, id: up.data!.uploadImage.id });
    }
    await h.container.placeholders.idle();
  }, 90_000);
  afterAll(async () => {
    await h?.close();
  });

  it('records on the row whether each is animated, from the head the upload read', async () => {
    for (const u of uploaded) expect(await animatedOf(h, u.id), u.name).toBe(u.animated);
  });

  it("an animated original's preset, transform and srcset URLs on a page are its own URL, and load it whole", async () => {
    const nodes = await page(h, token);
    for (const u of uploaded.filter((x) => x.animated)) {
      const n = nodes.get(u.id)!;
      expectOriginalEverywhere(n);
      const got = await fetched(n.thumb.url);
      expect(got.status, u.name).toBe(200);
      expect(got.body.equals(u.bytes), u.name).toBe(true);
      // A proxy link bound to a preset redirects to the original's URL too.
      const proxied = await fetched(n.proxy, { redirect: 'manual' });
      expect(proxied.status, u.name).toBe(302);
      expect(proxied.location, u.name).toBe(n.original.url);
    }
  });

  it('a still of each format keeps its variants: the thumb is a 300×300 WebP (the 320 box capped)', async () => {
    const nodes = await page(h, token);
    for (const u of uploaded.filter((x) => !x.animated)) {
      const n = nodes.get(u.id)!;
      expectVariants(n);
      const got = await fetched(n.thumb.url);
      expect(got.status, u.name).toBe(200);
      expect(got.type, u.name).toBe('image/webp');
      const m = await sharp(got.body).metadata();
      expect({ format: m.format, width: m.width, height: m.height }, u.name).toEqual({
        format: 'webp',
        width: 300,
        height: 300,
      });
    }
  });

  it('the page and a lookup by id (every column) answer the same', async () => {
    const nodes = await page(h, token);
    const ids = uploaded.map((u) => u.id);
    const full = await h.gql<{ imagesByIds: Node[] }>(
      `query ($ids: [ID!]!) { imagesByIds(ids: $ids) { ${nodeFields(true)} } }`,
      { ids },
      { token },
    );
    expect(full.errors).toBeUndefined();
    expect(full.data!.imagesByIds).toEqual(ids.map((id) => nodes.get(id)));
  });
});

/**
 * Rows as a version before the column left them: `animated` null. Until the backfill has looked,
 * the catalog takes such a row for a still (on `local` and `s3` the renderer still serves an
 * animated original whole); the backfill reads each head once and records it.
 */
describe.each(['cos', 'local'] as const)(
  'rows from before the column are backfilled (%s driver)',
  (driver) => {
    let h: Harness;
    let token: string;
    const rows: (Original & { id: string; key: string })[] = [];
    let jpeg: string;

    beforeAll(async () => {
      h = await startHarness({ driver, redis: 'memory', env: { IMAGE_TRANSFORMS: 'any' } });
      token = await h.token('olds');
      for (const o of await originals()) {
        const up = await uploadFile(h, o.bytes, { type: o.type, name: o.name, token });
        expect(up.errors, o.name).toBeUndefined();
        rows.push({ ...o, id: up.data!.uploadImage.id, key: up.data!.uploadImage.key });
      }
      const j = await uploadFile(h, await still().jpeg().toBuffer(), { type: 'image/jpeg', token });
      expect(j.errors).toBeUndefined();
      jpeg = j.data!.uploadImage.id;
      await h.container.placeholders.idle();
      // What migration 006 leaves on every row that was there.
      await sql`update images set animated = null where owner_id = 'olds'`.execute(h.db.kysely);
    }, 90_000);
    afterAll(async () => {
      await h?.close();
    });

    it('reads the head of each WebP, PNG and AVIF row once, records it, and the catalog then hands out the original', async () => {
      const before = await page(h, token);
      for (const r of rows) expectVariants(before.get(r.id)!); // not known yet: taken for a still
      if (driver === 'local') {
        // The renderer's safety net: an animated original is never served as a still, the AVIF
        // sequence (which libvips refuses to load) included.
        for (const r of rows.filter((x) => x.animated)) {
          const got = await fetched(before.get(r.id)!.thumb.url);
          expect(got.status, r.name).toBe(200);
          expect(got.body.equals(r.bytes), r.name).toBe(true);
        }
      }
      const requestsBefore = h.fixture?.requests.log.length ?? 0;

      const run = await h.container.placeholders.animation.run();
      expect(run).toEqual({ visited: 6, animated: 3, still: 3, failed: 0, complete: true });
      for (const r of rows) expect(await animatedOf(h, r.id), r.name).toBe(r.animated);
      // A JPEG cannot be animated: never looked at.
      expect(await animatedOf(h, jpeg)).toBeNull();
      if (h.fixture) {
        // One ranged GET per row (206), not the object.
        const gets = h.fixture.requests.log.slice(requestsBefore).filter((l) => l.method === 'GET');
        expect(gets.map((l) => l.key).sort()).toEqual(rows.map((r) => r.key).sort());
        expect(gets.every((l) => l.status === 206)).toBe(true);
      }

      const after = await page(h, token);
      for (const r of rows) {
        if (r.animated) expectOriginalEverywhere(after.get(r.id)!);
        else expectVariants(after.get(r.id)!);
      }
      // Each row is looked at once.
      expect(await h.container.placeholders.animation.run()).toEqual({
        visited: 0,
        animated: 0,
        still: 0,
        failed: 0,
        complete: true,
      });
    });

    it('the placeholder backfill job runs it', async () => {
      const apng = rows.find((r) => r.name === 'APNG')!;
      await sql`update images set animated = null where id = ${apng.id}`.execute(h.db.kysely);
      expectVariants((await page(h, token)).get(apng.id)!);
      await h.container.placeholders.backfill();
      expect(await animatedOf(h, apng.id)).toBe(true);
      expectOriginalEverywhere((await page(h, token)).get(apng.id)!);
    });

    it('a missing object is recorded as a still (nothing to make a variant of), not read again', async () => {
      const id = randomUUID();
      await createImagesRepo(h.db).insert({
        id,
        ownerId: 'olds',
        objectKey: objectKeyFor('olds', id, 'webp'),
        contentType: 'image/webp',
        byteSize: 5000,
        width: 400,
        height: 300,
        etag: null,
        animated: null,
        createdAt: new Date(),
      });
      expect(await h.container.placeholders.animation.run()).toMatchObject({
        visited: 1,
        still: 1,
        failed: 0,
      });
      expect(await animatedOf(h, id)).toBe(false);
      expect(h.logs.join('')).toMatch(/animation check: the object is missing/);
    });
  },
);

describe('the animation backfill when the bucket fails (cos)', () => {
  let h: Harness;
  let token: string;

  beforeAll(async () => {
    h = await startHarness({ driver: 'cos', redis: 'memory', env: { PLACEHOLDER_TIMEOUT_SECONDS: '1' } });
    token = await h.token('flaky');
  });
  afterAll(async () => {
    h?.fixture?.hang(false);
    await h?.close();
  });

  it('leaves the rows unknown when reads fail or hang, and a later run records them', async () => {
    const bytes = makeApng(await frames());
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const up = await uploadFile(h, bytes, { type: 'image/png', token });
      expect(up.errors).toBeUndefined();
      ids.push(up.data!.uploadImage.id);
    }
    await h.container.placeholders.idle();
    await sql`update images set animated = null where owner_id = 'flaky'`.execute(h.db.kysely);

    h.fixture!.failNext(1000, 503);
    try {
      expect(await h.container.placeholders.animation.run()).toMatchObject({ visited: 3, failed: 3 });
    } finally {
      h.fixture!.failNext(0);
    }
    for (const id of ids) expect(await animatedOf(h, id)).toBeNull();

    h.fixture!.hang(true);
    const started = performance.now();
    const hung = await h.container.placeholders.animation.run().finally(() => h.fixture!.hang(false));
    // Read at once, each bounded by PLACEHOLDER_TIMEOUT_SECONDS: one second, not a hang.
    expect(performance.now() - started).toBeLessThan(4_000);
    expect(hung).toMatchObject({ visited: 3, failed: 3 });
    for (const id of ids) expect(await animatedOf(h, id)).toBeNull();

    expect(await h.container.placeholders.animation.run()).toMatchObject({
      visited: 3,
      animated: 3,
      failed: 0,
    });
    for (const id of ids) expect(await animatedOf(h, id)).toBe(true);
    for (const id of ids) expectOriginalEverywhere((await page(h, token)).get(id)!);
  });
});

describe('the animation backfill past rows that fail every time (local)', () => {
  let h: Harness;

  beforeAll(async () => {
    h = await startHarness({ driver: 'local', redis: 'memory', env: { PLACEHOLDER_TIMEOUT_SECONDS: '1' } });
  });
  afterAll(async () => {
    await h?.close();
  });

  it('a run goes on from where the last one stopped, so the oldest rows failing for good do not hold back the rest', async () => {
    const token = await h.token('stuck');
    const good: string[] = [];
    for (let i = 0; i < 2; i++) {
      const up = await uploadFile(h, makeApng(await frames()), { type: 'image/png', token });
      expect(up.errors).toBeUndefined();
      good.push(up.data!.uploadImage.id);
    }
    await h.container.placeholders.idle();
    await sql`update images set animated = null where owner_id = 'stuck'`.execute(h.db.kysely);
    // The two oldest rows' objects cannot be read, ever: their key's parent is a file, so the
    // local bucket answers ENOTDIR (unavailable), as an archived object answers a store's 403.
    await h.storage.put('u/stuck/blocker', Buffer.from('x'), 'application/octet-stream');
    const repo = createImagesRepo(h.db);
    const stuck: string[] = [];
    for (let i = 0; i < 2; i++) {
      const id = randomUUID();
      await repo.insert({
        id,
        ownerId: 'stuck',
        objectKey: `u/stuck/blocker/${i}.png`,
        contentType: 'image/png',
        byteSize: 5000,
        width: 400,
        height: 300,
        etag: null,
        animated: null,
        createdAt: new Date(Date.now() - 3_600_000 + i),
      });
      stuck.push(id);
    }
    // Batches of two: the first batch is the two stuck rows.
    const backfill = new AnimationBackfill(
      {
        storage: h.storage,
        images: repo,
        events: h.container.events,
        metrics: h.container.metrics,
        logger: h.container.logger,
        clock: h.container.clock,
      },
      { timeoutSeconds: 1, batchSize: 2 },
    );
    expect(await backfill.run()).toMatchObject({ visited: 2, failed: 2, complete: false });
    // The next run starts after them and records the rest; it did not start at the oldest row.
    expect(await backfill.run()).toMatchObject({ visited: 2, animated: 2, failed: 0, complete: false });
    for (const id of good) expect(await animatedOf(h, id)).toBe(true);
    for (const id of stuck) expect(await animatedOf(h, id)).toBeNull();
    // Then from the oldest again: the stuck rows are retried, each full pass.
    expect(await backfill.run()).toMatchObject({ visited: 2, failed: 2, complete: false });
    expect(h.logs.join('')).toMatch(/animation not checked; retried later/);
  });
});

// The backfill as scheduled: with the placeholder backfill, on a BullMQ job scheduler when Redis
// is configured, on timers otherwise.
describe.each(['BullMQ', 'timers'])('the animation backfill scheduled on %s', (engine) => {
  let h: Harness;

  beforeAll(async () => {
    h = await startHarness({
      driver: 'cos',
      redis: engine === 'BullMQ' ? testRedisUrl() : 'memory',
      start: true,
      env: { PLACEHOLDER_BACKFILL_INTERVAL_SECONDS: '1' },
    });
  });
  afterAll(async () => {
    await h?.close();
  });

  it('records an old row within seconds', async () => {
    const token = await h.token('sched');
    const up = await uploadFile(h, AVIF_SEQUENCE_400x300, { type: 'image/avif', token });
    expect(up.errors).toBeUndefined();
    const id = up.data!.uploadImage.id;
    await sql`update images set animated = null where id = ${id}`.execute(h.db.kysely);
    const deadline = Date.now() + 20_000;
    while ((await animatedOf(h, id)) !== true) {
      if (Date.now() > deadline) throw new Error('the row was not backfilled within 20 s');
      await new Promise((r) => setTimeout(r, 200));
    }
    expectOriginalEverywhere((await page(h, token)).get(id)!);
  });
});

/**
 * On `s3` a variant is a derived object the variants job makes. Of an animated original it would
 * be a copy of the original under each variant key: none is made. A row that records it has no
 * presets to make; an old row's job finds it through the renderer and records it.
 */
describe('animated originals on s3: no derived objects, and the variants job records old rows', () => {
  let h: Harness;
  let token: string;

  beforeAll(async () => {
    // No workers: the test runs the jobs.
    h = await startHarness({ driver: 's3', redis: 'memory' });
    token = await h.token('alice');
  }, 60_000);
  afterAll(async () => {
    await h?.close();
  });

  async function derivedKeys(): Promise<string[]> {
    const page = await h.storage.list(DERIVED_VARIANT_PREFIX);
    return page.objects.map((o) => o.key);
  }

  it('an animated upload gets no derived object; its presets are the original', async () => {
    const ids: string[] = [];
    for (const o of (await originals()).filter((x) => x.animated)) {
      const up = await uploadFile(h, o.bytes, { type: o.type, name: o.name, token });
      expect(up.errors, o.name).toBeUndefined();
      ids.push(up.data!.uploadImage.id);
    }
    // The after-upload jobs (in process: the timer engine) find nothing to make.
    await h.container.derivedVariants!.idle();
    const nodes = await page(h, token);
    for (const id of ids) {
      expect(await animatedOf(h, id)).toBe(true);
      expectOriginalEverywhere(nodes.get(id)!);
    }
    expect(await derivedKeys()).toEqual([]);
  });

  it('an old animated row: the backfill renders, finds it animated, records it, and stores nothing', async () => {
    const ids: string[] = [];
    for (const o of (await originals()).filter((x) => x.animated)) {
      const id = randomUUID();
      const key = objectKeyFor('old', id, o.type.slice('image/'.length));
      const { etag } = await h.storage.put(key, o.bytes, o.type);
      await createImagesRepo(h.db).insert({
        id,
        ownerId: 'old',
        objectKey: key,
        contentType: o.type,
        byteSize: o.bytes.length,
        width: 400,
        height: 300,
        etag,
        animated: null,
        createdAt: new Date(),
      });
      ids.push(id);
    }
    const run = await h.container.derivedVariants!.backfill();
    expect(run).toMatchObject({ visited: 3, made: 3, failed: 0, unrenderable: 0, complete: true });
    for (const id of ids) expect(await animatedOf(h, id)).toBe(true);
    // Not a copy of the original under any variant key.
    expect(await derivedKeys()).toEqual([]);
    const nodes = await page(h, await h.token('old'));
    for (const id of ids) expectOriginalEverywhere(nodes.get(id)!);
  });
});

/**
 * A `preset` subscription opened while its row did not record animation yet listens to the
 * variant's url id. When the row is recorded as animated — by the backfill (every driver), or on
 * `s3` by the variants job that finds it so — the recording node announces it on the bus, and the
 * node serving the subscription moves it to the original's url id: the next refresh event carries
 * the original's URL and a srcset of the original. Two nodes of one deployment on a real Redis:
 * the recording runs on a worker, the subscription is held by an API node.
 */
describe.each([
  { driver: 'cos', recordedBy: 'the animation backfill' },
  { driver: 's3', recordedBy: 'the variants job' },
] as const)(
  'a preset subscription opened before its row is recorded ($driver, $recordedBy)',
  ({ driver }) => {
    const SUB =
      'subscription($ids: [ID!]!, $preset: String) { signedUrlRefreshed(ids: $ids, preset: $preset) { imageId signedUrl { url } srcset } }';
    interface Refreshed {
      data?: { signedUrlRefreshed: { imageId: string; signedUrl: { url: string }; srcset: string | null } };
      errors?: unknown[];
    }
    let api: Harness;
    let worker: Harness;

    beforeAll(async () => {
      api = await startHarness({ driver, redis: testRedisUrl() });
      worker = await startHarness({
        driver,
        redis: testRedisUrl(),
        nodeOf: api,
        env: { SIGNET_ROLE: 'worker' },
      });
    }, 60_000);
    afterAll(async () => {
      await worker?.close();
      await api?.close();
    });

    it("moves to the original's URL: the next refresh event carries it, with the original's srcset", async () => {
      const token = await api.token('subs');
      // An animated WebP whose row an earlier version inserted: `animated` null.
      const bytes = await sharp(await frames(), { join: { animated: true } })
        .webp({ loop: 0, delay: [300, 300, 300] })
        .toBuffer();
      const id = randomUUID();
      const key = objectKeyFor('subs', id, 'webp');
      const { etag } = await api.storage.put(key, bytes, 'image/webp');
      await createImagesRepo(api.db).insert({
        id,
        ownerId: 'subs',
        objectKey: key,
        contentType: 'image/webp',
        byteSize: bytes.length,
        width: 400,
        height: 300,
        etag,
        animated: null,
        createdAt: new Date(),
      });
      // Taken for a still until recorded (on s3 a variant not made yet is signed for the original's
      // object, but under the variant's url id all the same).
      const before = (await page(api, token)).get(id)!;
      if (driver === 'cos') expectVariants(before);
      // The proxy link of the thumb: the API node remembers the row (RecentRows) from this hit.
      const proxied = await fetched(before.proxy, { redirect: 'manual' });
      expect(proxied.status).toBe(302);
      if (driver === 'cos') expect(proxied.location).toBe(before.thumb.url);

      const s = subscribeSse<Refreshed>(api.url, SUB, { ids: [id], preset: 'thumb' }, token);
      try {
        await s.opened;
        // The subscription listens to the thumb variant's url id, not the original's.
        await waitFor(() => api.container.events.subscribedIds().some((u) => u.startsWith(`${id}~`)), 5000);
        expect(api.container.events.subscribedIds()).not.toContain(id);

        if (driver === 'cos') {
          expect(await worker.container.placeholders.animation.run()).toMatchObject({
            animated: 1,
            failed: 0,
          });
        } else {
          expect(await worker.container.derivedVariants!.backfill()).toMatchObject({ made: 1, failed: 0 });
        }
        expect(await animatedOf(api, id)).toBe(true);

        // The event and the page below must be of one step.
        await clearOfStepTurns(api.config, [id]);
        // What a client does on a load error; a refresh sweep re-signs the same url id. A refresh
        // publishes only what it signs, and the page above cached this step's URL: drop it first.
        await api.container.urls.purge([id]);
        const refreshed = await api.gql<{ refreshSignedUrls: { url: string }[] }>(
          'mutation($ids: [ID!]!) { refreshSignedUrls(ids: $ids) { url } }',
          { ids: [id] },
          { token },
        );
        expect(refreshed.errors).toBeUndefined();
        await s.waitFor((es) => es.length > 0, 5000);
        const e = s.events[0]!.data;
        expect(e.errors).toBeUndefined();
        const got = e.data!.signedUrlRefreshed;
        const n = (await page(api, token)).get(id)!;
        expectOriginalEverywhere(n);
        expect(got.imageId).toBe(id);
        expect(got.signedUrl.url).toBe(refreshed.data!.refreshSignedUrls[0]!.url);
        expect(got.signedUrl.url).toBe(n.original.url);
        // The original once, at its own width: the srcset a page now gets for the preset.
        expect(got.srcset).toBe(`${n.original.url} 400w`);
        expect(got.srcset).toBe(n.thumbSet);
        // The variant's url id is no longer listened to (nor kept signed for this subscription).
        expect(api.container.events.subscribedIds()).toEqual([id]);
        // The same announcement made the API node forget the row it remembered for the proxy: the
        // link goes to the original now, not up to RECENT_ROW_MS later.
        expect((await fetched(before.proxy, { redirect: 'manual' })).location).toBe(n.original.url);
      } finally {
        s.close();
      }
    });
  },
);

/**
 * What the backfill announces: one message per batch, naming the rows it recorded as animated
 * (never a still), and a bus that does not answer costs the run its command timeout, not the run.
 */
describe('the animation backfill announces the rows it records as animated (local)', () => {
  let h: Harness;
  const token = () => h.token('told');
  /** Oldest first: animated, still, animated, animated. */
  const ids: { id: string; animated: boolean }[] = [];

  beforeAll(async () => {
    h = await startHarness({ driver: 'local', redis: 'memory' });
    const apng = makeApng(await frames());
    const png = await still().png().toBuffer();
    for (const animated of [true, false, true, true]) {
      const up = await uploadFile(h, animated ? apng : png, { type: 'image/png', token: await token() });
      expect(up.errors).toBeUndefined();
      ids.push({ id: up.data!.uploadImage.id, animated });
    }
    await h.container.placeholders.idle();
  }, 60_000);
  afterAll(async () => {
    await h?.close();
  });

  const unknownAgain = () =>
    sql`update images set animated = null where owner_id = 'told'`.execute(h.db.kysely);
  /** The backfill, in batches of two, announcing on `bus`. */
  const backfillTelling = (bus: Pick<EventBus, 'publishAnimated'>) =>
    new AnimationBackfill(
      {
        storage: h.storage,
        images: createImagesRepo(h.db),
        events: bus,
        metrics: h.container.metrics,
        logger: h.container.logger,
        clock: h.container.clock,
      },
      { timeoutSeconds: 5, batchSize: 2 },
    );

  it('one message per batch, with the animated rows of that batch only', async () => {
    await unknownAgain();
    const bus = new MemoryEventBus();
    const heard: string[][] = [];
    bus.onAnimated((imageIds) => heard.push([...imageIds]));
    const backfill = backfillTelling(bus);
    expect(await backfill.run()).toMatchObject({ visited: 4, animated: 3, still: 1, failed: 0 });
    const [a1, , a2, a3] = ids.map((r) => r.id);
    expect(heard).toEqual([[a1], [a2, a3]]);
    // Rows already known are not announced again.
    expect(await backfill.run()).toMatchObject({ visited: 0 });
    expect(heard).toHaveLength(2);
  });

  it('a publish Redis never answers fails within the command timeout, and the run goes on', async () => {
    await unknownAgain();
    // The command connection as the container opens it, through a proxy that keeps every
    // PUBLISH from Redis.
    const proxy = await TcpProxy.start('127.0.0.1', Number(new URL(testRedisUrl()).port || 6379));
    proxy.withhold('publish');
    const command = createRedisClient({
      url: `redis://127.0.0.1:${proxy.port}`,
      clusterNodes: [],
      commandTimeoutMs: 250,
    });
    command.on('error', () => {});
    const subscriber = new Redis(testRedisUrl());
    const bus = new RedisEventBus(
      command,
      subscriber,
      `signet-test:${process.pid}:told`,
      h.container.logger,
      () => undefined,
    );
    try {
      await bus.whenReady();
      await redisReady(command);
      const backfill = backfillTelling(bus);
      const started = performance.now();
      expect(await backfill.run()).toMatchObject({ visited: 4, animated: 3, still: 1, failed: 0 });
      // Two batches, each announcement bounded by the command timeout (250 ms).
      expect(performance.now() - started).toBeLessThan(3_000);
      for (const r of ids) expect(await animatedOf(h, r.id)).toBe(r.animated);
      expect(h.logs.join('')).toMatch(/could not announce rows recorded as animated/);
      expect(proxy.withheld.length).toBeGreaterThan(0);
    } finally {
      await bus.close();
      command.disconnect();
      await proxy.close();
    }
  });
});
