import { randomUUID } from 'node:crypto';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { sql } from 'kysely';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { localBucketRoot } from '../../src/container.js';
import { uploadFolderOf } from '../../src/images/erase-owner.js';
import { objectKeyFor } from '../../src/images/upload.js';
import { bullPrefix } from '../../src/jobs/bullmq-engine.js';
import { DERIVED_VARIANT_PREFIX } from '../../src/storage/derived-variants.js';
import { type CliRun, runCli } from '../support/cli.js';
import { authEnv, cosEnv, s3Env, testRedisUrl } from '../support/env.js';
import { type Harness, startHarness } from '../support/harness.js';
import { uploadFile } from '../support/upload.js';

// `signet erase-owner` (docs/operations.md, "Erasing a user's data") on the stores the local-driver
// test (erase-owner.test.ts) does not reach: the cos driver against the COS fixture, the s3 driver
// (whose variants are derived objects in the bucket), and the embedded PGlite database, which is
// one process' (the command needs the gateway stopped). Each runs the same story: a dry run
// counts and changes nothing, the run erases every object, kept variant, row and Redis key of the
// owner and nothing of another owner's, a second run finds nothing.

/** A real identity provider's sub (`|` and `@` are escaped in the owner's upload folder). */
const ERIN = 'auth0|erin@example.com';
const FRANK = 'frank';
type Owner = typeof ERIN | typeof FRANK;

const URLS = /* GraphQL */ `
  query ($id: ID!) {
    image(id: $id) { original: signedUrl { url } thumb: signedUrl(preset: "thumb") { url } }
  }
`;
const DELETE = /* GraphQL */ `mutation ($id: ID!) { deleteImage(id: $id) }`;

interface Image {
  id: string;
  key: string;
  /** The URLs handed out before the erasure (the thumb's fetched once, so made and cached). */
  original: string;
  thumb: string;
}

/** A photo-like JPEG, large enough that the thumb preset is a variant of its own. */
async function photo(seed: number): Promise<Buffer> {
  const noise = await sharp({
    create: {
      width: 120,
      height: 90,
      channels: 3,
      background: { r: (seed * 70) % 256, g: 120, b: 200 },
      noise: { type: 'gaussian', mean: 128, sigma: 40 },
    },
  })
    .png()
    .toBuffer();
  return sharp(noise).resize(480, 360, { fit: 'fill' }).jpeg({ quality: 80 }).toBuffer();
}

/** Every file below `dir` (relative, `/`-separated); none when it does not exist. */
async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true }).catch(() => []);
  return entries
    .filter((e) => e.isFile())
    .map((e) => path.relative(dir, path.join(e.parentPath, e.name)).split(path.sep).join('/'));
}

/** Every key of the harness' bucket, through the driver's listing (the one the command walks). */
async function listedKeys(h: Harness): Promise<string[]> {
  const keys: string[] = [];
  let marker: string | undefined;
  do {
    const page = await h.storage.list('', marker !== undefined ? { marker } : {});
    keys.push(...page.objects.map((o) => o.key));
    marker = page.nextMarker;
  } while (marker !== undefined);
  return keys;
}

/** What a store holds of an owner: keys under its upload folder, and variants kept of them. */
const ownedBy = (inventory: readonly string[], owner: Owner) =>
  inventory.filter((k) => k.includes(uploadFolderOf(owner))).sort();
/** The variants a store keeps of one object (inventories name them `…<key>/<variant>`). */
const variantsOf = (inventory: readonly string[], key: string) =>
  inventory.filter((k) => k.includes(`${key}/`));

/**
 * The Redis keys of a deployment that name the owner or one of these ids, in their name or as a
 * member of a set, sorted set, hash or list: under REDIS_PREFIX and under BullMQ's own prefix
 * (jobs/bullmq-engine.ts, `bullPrefix`), which does not start with it. Empty without Redis.
 */
async function redisKeysNaming(h: Harness, owner: string, ids: readonly string[]): Promise<string[]> {
  const redis = h.redis;
  if (!redis) return [];
  const names = (s: string) => s.includes(owner) || ids.some((id) => s.includes(id));
  const keys = [
    ...(await redis.keys(`${h.config.redisPrefix}*`)),
    ...(await redis.keys(`${bullPrefix(h.config.redisPrefix)}*`)),
  ];
  const named: string[] = [];
  for (const key of keys) {
    if (names(key)) named.push(key);
    const type = await redis.type(key);
    const members =
      type === 'zset'
        ? await redis.zrange(key, 0, -1)
        : type === 'set'
          ? await redis.smembers(key)
          : type === 'hash'
            ? await redis.hkeys(key)
            : type === 'list'
              ? await redis.lrange(key, 0, -1)
              : [];
    for (const m of members) if (names(m)) named.push(`${key} ∋ ${m}`);
  }
  return named.sort();
}

/** What differs from one store to the next. */
interface Store {
  name: string;
  /** Starts the gateway; for the embedded database, again on the same DATA_DIR. */
  start(): Promise<Harness>;
  /** The gateway's environment, which the operator gives the command (docs/operations.md). */
  cliEnv(h: Harness): Record<string, string>;
  /** The command needs the gateway stopped: the embedded database's DATA_DIR lock (db/dir-lock.ts). */
  exclusive: boolean;
  /** Whether the store keeps a made variant (local: a file, s3: a derived object); cos renders each GET. */
  keepsVariants: boolean;
  /** Every object, and every variant kept (as `…<original key>/<variant>`), of the deployment. */
  inventory(h: Harness): Promise<string[]>;
  /** Resolves once the image's variants are made where the driver makes them after upload (s3). */
  variantsMade(h: Harness, image: { id: string; key: string }, token: string): Promise<void>;
  close(): Promise<void>;
}

/** The gateway's database, Redis and address, as the operator passes them to the command. */
const serverEnv = (h: Harness) => ({
  DATABASE_URL: h.config.databaseUrl!,
  DATA_DIR: h.config.dataDir,
  REDIS_URL: testRedisUrl(),
  REDIS_PREFIX: h.config.redisPrefix,
  PUBLIC_URL: h.config.publicUrl,
});

function cosStore(): Store {
  return {
    name: 'the cos driver (the real SDK against the COS fixture), PostgreSQL, Redis',
    start: () => startHarness({ driver: 'cos', redis: testRedisUrl() }),
    cliEnv: (h) => ({
      ...authEnv(),
      ...cosEnv(h.fixture!),
      ...serverEnv(h),
    }),
    exclusive: false,
    keepsVariants: false,
    inventory: async (h) => [...h.fixture!.objects.keys()],
    variantsMade: async () => {},
    close: async () => {},
  };
}

function s3Store(): Store {
  return {
    name: 'the s3 driver (derived variant objects, made by a worker), PostgreSQL, Redis',
    start: () =>
      startHarness({
        driver: 's3',
        redis: testRedisUrl(),
        // The after-upload job makes the variants; no sweep may take the killed upload's object.
        start: true,
        env: { VARIANT_BACKFILL_INTERVAL_SECONDS: '0', ORPHAN_SWEEP_INTERVAL_SECONDS: '0' },
      }),
    cliEnv: (h) => ({
      ...authEnv(),
      ...s3Env(h.s3Fixture!),
      // On Node 20 the AWS SDK warns on stderr that its 2027 releases need Node 22 (as import.test.ts).
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
      ...serverEnv(h),
    }),
    exclusive: false,
    keepsVariants: true,
    inventory: listedKeys,
    async variantsMade(h, image, token) {
      // Every preset made (the row's variants_of set), and the page then signs the derived object.
      const derived = `/${h.s3Fixture!.bucket}/${DERIVED_VARIANT_PREFIX}${image.key}/`;
      const deadline = Date.now() + 30_000;
      for (;;) {
        const r = await sql<{ made: boolean }>`
          select variants_of is not null as made from images where id = ${image.id}`.execute(h.db.kysely);
        if (r.rows[0]?.made) {
          const urls = await h.gql<{ image: { thumb: { url: string } } }>(URLS, { id: image.id }, { token });
          if (decodeURIComponent(new URL(urls.data!.image.thumb.url).pathname).startsWith(derived)) return;
        }
        if (Date.now() > deadline) throw new Error(`the variants of ${image.key}: not made within 30 s`);
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    close: async () => {},
  };
}

function pgliteStore(): Store {
  let dataDir: string | undefined;
  return {
    name: 'the embedded PGlite database, the local driver, the in-process cache',
    async start() {
      // The DATA_DIR outlives each gateway (the harness removes only a directory of its own).
      dataDir ??= await mkdtemp(path.join(os.tmpdir(), 'signet-erase-pglite-'));
      return startHarness({
        driver: 'local',
        redis: 'memory',
        database: 'pglite',
        env: { DATA_DIR: dataDir },
      });
    },
    // No DATABASE_URL: the command opens the embedded database under DATA_DIR, as `npm start` does.
    cliEnv: (h) => ({
      ...authEnv(),
      STORAGE_DRIVER: 'local',
      DATA_DIR: h.config.dataDir,
      PUBLIC_URL: h.config.publicUrl,
    }),
    exclusive: true,
    keepsVariants: true,
    async inventory(h) {
      const objects = await filesUnder(localBucketRoot(h.config));
      // A variant's folder is its object's key, percent-encoded into one segment (local-variants.ts).
      const variants = (await filesUnder(path.join(h.config.dataDir, 'variants'))).map((f) => {
        const [folder, ...rest] = f.split('/');
        return `variants/${decodeURIComponent(folder!)}/${rest.join('/')}`;
      });
      return [...objects, ...variants];
    },
    variantsMade: async () => {},
    async close() {
      if (dataDir) await rm(dataDir, { recursive: true, force: true });
    },
  };
}

function eraseOwnerOn(store: Store) {
  describe(`signet erase-owner: ${store.name}`, () => {
    let h: Harness;
    const images: Record<Owner, Image[]> = { [ERIN]: [], [FRANK]: [] };
    /** The object of an upload killed between its put and its row. */
    const leftover = objectKeyFor(ERIN, randomUUID(), 'jpg');
    const idsOf = (owner: Owner) => images[owner].map((i) => i.id);
    const rowsOf = async (owner: Owner) =>
      (
        await sql<{ id: string; deleted_at: Date | null }>`
          select id, deleted_at from images where owner_id = ${owner} order by id`.execute(h.db.kysely)
      ).rows;
    /** Everything the deployment keeps of both owners. */
    const snapshot = async () => {
      await h.container.access.flush();
      return {
        rows: [...(await rowsOf(ERIN)), ...(await rowsOf(FRANK))],
        objects: (await store.inventory(h)).sort(),
        redis: [
          ...(await redisKeysNaming(h, ERIN, idsOf(ERIN))),
          ...(await redisKeysNaming(h, FRANK, idsOf(FRANK))),
        ],
      };
    };
    /** A URL handed out before, asked of the gateway serving now (the embedded one was restarted). */
    const now = (url: string) => {
      const u = new URL(url);
      return store.exclusive ? new URL(u.pathname + u.search, h.url).href : url;
    };

    /** The command, run as the operator would on this deployment. */
    async function erase(args: string[]): Promise<CliRun> {
      if (!store.exclusive) return runCli(['erase-owner', ...args], store.cliEnv(h));
      // The embedded database is one process': stop the server, run the command, start it again
      // (docs/operations.md, "Erasing a user's data").
      const env = store.cliEnv(h);
      await h.close();
      try {
        return await runCli(['erase-owner', ...args], env);
      } finally {
        h = await store.start();
      }
    }

    beforeAll(async () => {
      h = await store.start();
      let seed = 0;
      for (const [owner, n] of [
        [ERIN, 3],
        [FRANK, 1],
      ] as const) {
        const token = await h.token(owner);
        for (let i = 0; i < n; i++) {
          const up = await uploadFile(h, await photo(seed++), { token, type: 'image/jpeg', name: 'p.jpg' });
          expect(up.errors).toBeUndefined();
          const { id, key } = up.data!.uploadImage;
          await store.variantsMade(h, { id, key }, token);
          // The variant made (rendered, and kept where the store keeps it) and its URL cached.
          const urls = await h.gql<{ image: { original: { url: string }; thumb: { url: string } } }>(
            URLS,
            { id },
            { token },
          );
          expect(urls.errors).toBeUndefined();
          const thumb = await fetch(urls.data!.image.thumb.url);
          expect(thumb.status).toBe(200);
          expect(thumb.headers.get('content-type')).toMatch(/^image\//);
          images[owner].push({
            id,
            key,
            original: urls.data!.image.original.url,
            thumb: urls.data!.image.thumb.url,
          });
        }
      }
      // One of erin's deleted before: its row stays (soft-deleted) until the purge.
      const del = await h.gql<{ deleteImage: boolean }>(
        DELETE,
        { id: images[ERIN][2]!.id },
        { token: await h.token(ERIN) },
      );
      expect(del.data?.deleteImage).toBe(true);
      // The access flush a node runs every second, here after the delete: the views recorded
      // before it put the deleted image's url ids back in the refresh sets (urls/redis-store.ts,
      // CLAIM_SCRIPT: "a deleted image's access count flushed after its purge").
      await h.container.access.flush();
      // An upload killed between its put and its row: an object no row names, in erin's folder.
      await h.storage.put(leftover, await photo(9), 'image/jpeg');
    }, 120_000);
    afterAll(async () => {
      await h?.close();
      await store.close();
    });

    if (store.exclusive) {
      it('refuses while the gateway holds the embedded database, saying to stop it, and changes nothing', async () => {
        const before = await snapshot();
        for (const args of [[ERIN, '--dry-run'], [ERIN]]) {
          const run = await runCli(['erase-owner', ...args], store.cliEnv(h));
          expect(run.code, args.join(' ')).toBe(1);
          expect(run.stdout).toBe('');
          expect(run.stderr).toMatch(
            /^signet: the embedded database is in use by process \d+ on this host .*Stop that process/,
          );
          expect(run.stderr.trimEnd().split('\n')).toHaveLength(1);
        }
        expect(await snapshot()).toEqual(before);
      });

      it('a DATA_DIR that holds no embedded database is an error, not "0 images deleted"', async () => {
        // What the lock's message offers besides stopping the server ("give this one another
        // DATA_DIR"), or a mistyped path: no database there to erase from.
        const elsewhere = await mkdtemp(path.join(os.tmpdir(), 'signet-erase-elsewhere-'));
        try {
          const run = await runCli(['erase-owner', ERIN], { ...store.cliEnv(h), DATA_DIR: elsewhere });
          expect(run.stdout).not.toContain('erased owner');
          expect(run.code).toBe(1);
          expect(run.stderr).toContain(`no embedded database at ${path.join(elsewhere, 'pglite')}`);
        } finally {
          await rm(elsewhere, { recursive: true, force: true });
        }
      });
    }

    it('a dry run counts what there is and changes nothing', async () => {
      const before = await snapshot();
      const run = await erase([ERIN, '--dry-run']);
      expect(run.stderr).toBe('');
      expect(run.code).toBe(0);
      expect(run.stdout).toBe(
        `dry run: owner "${ERIN}" has 2 live images, 1 deleted rows and 1 objects without a row in its upload folder; nothing was changed\n`,
      );
      expect(await snapshot()).toEqual(before);
    });

    it("erases the owner's objects, variants, rows and cached URLs; another owner's are untouched and served", async () => {
      const [live0, live1, deleted] = images[ERIN] as [Image, Image, Image];
      const [frank] = images[FRANK] as [Image];
      // A refreshSignedUrls call: its rate-limit window (a minute) is a key named after the owner.
      const refreshed = await h.gql(
        'mutation ($ids: [ID!]!) { refreshSignedUrls(ids: $ids) { url } }',
        { ids: [images[ERIN][0]!.id] },
        { token: await h.token(ERIN) },
      );
      expect(refreshed.errors).toBeUndefined();
      const before = await snapshot();
      // What there is to erase: both live objects and the leftover (the deleted image's went with
      // its delete), the variants the store keeps of the live ones, their cached URLs.
      const erinObjects = ownedBy(before.objects, ERIN);
      expect(erinObjects).toEqual(expect.arrayContaining([live0.key, live1.key, leftover]));
      expect(erinObjects.filter((k) => k.includes(deleted.key))).toEqual([]);
      if (store.keepsVariants) {
        for (const { key } of [live0, live1, frank]) expect(variantsOf(before.objects, key)).not.toEqual([]);
      }
      if (h.redis) {
        const erinKeys = await redisKeysNaming(h, ERIN, idsOf(ERIN));
        expect(erinKeys).toContain(`${h.config.redisPrefix}rl:${ERIN}`);
        expect(erinKeys.some((k) => k.endsWith(`url:${live0.id}`))).toBe(true);
        expect(await redisKeysNaming(h, FRANK, idsOf(FRANK))).not.toEqual([]);
      }
      const frankBefore = {
        rows: await rowsOf(FRANK),
        objects: ownedBy(before.objects, FRANK),
        redis: await redisKeysNaming(h, FRANK, idsOf(FRANK)),
      };

      const run = await erase([ERIN]);
      expect(run.stderr).toBe('');
      expect(run.code).toBe(0);
      expect(run.stdout).toBe(
        `erased owner "${ERIN}": 2 images deleted, 3 rows removed (1 of them deleted before), 1 objects without a row removed\n`,
      );

      const after = await snapshot();
      expect(await rowsOf(ERIN)).toEqual([]);
      expect(ownedBy(after.objects, ERIN)).toEqual([]);
      // Nothing names her images, the variants' url ids that views flushed after the deletes
      // put back in the access counters included.
      expect(await redisKeysNaming(h, ERIN, idsOf(ERIN))).toEqual([]);
      if (h.config.storageDriver === 'local') {
        // The command removes the emptied folder too (the local driver leaves folders behind).
        await expect(stat(path.join(localBucketRoot(h.config), uploadFolderOf(ERIN)))).rejects.toMatchObject({
          code: 'ENOENT',
        });
      }
      // The URLs handed out before answer 404: nothing is left to serve or render them from.
      for (const url of [live0.original, live0.thumb, live1.original, live1.thumb]) {
        expect((await fetch(now(url))).status, url).toBe(404);
      }
      const gone = await h.gql<{ image: unknown }>(URLS, { id: live0.id }, { token: await h.token(ERIN) });
      expect(gone.data?.image).toBeNull();

      // Frank's row, object, variants and keys are as they were, and his image is still served.
      expect(await rowsOf(FRANK)).toEqual(frankBefore.rows);
      expect(ownedBy(after.objects, FRANK)).toEqual(frankBefore.objects);
      expect(await redisKeysNaming(h, FRANK, idsOf(FRANK))).toEqual(frankBefore.redis);
      const token = await h.token(FRANK);
      const urls = await h.gql<{ image: { original: { url: string }; thumb: { url: string } } }>(
        URLS,
        { id: frank.id },
        { token },
      );
      for (const url of [urls.data!.image.original.url, urls.data!.image.thumb.url]) {
        const res = await fetch(url);
        expect(res.status, url).toBe(200);
        const { width } = await sharp(Buffer.from(await res.arrayBuffer())).metadata();
        expect(width).toBeGreaterThan(0);
      }
      // Nothing else of the deployment went: what is left is exactly what was there but erin's.
      expect(after.objects.filter((k) => !k.includes(uploadFolderOf(ERIN)))).toEqual(
        before.objects.filter((k) => !k.includes(uploadFolderOf(ERIN))),
      );
    });

    it('running it again finds nothing left and changes nothing', async () => {
      const before = await snapshot();
      const run = await erase([ERIN]);
      expect(run.stderr).toBe('');
      expect(run.code).toBe(0);
      expect(run.stdout).toBe(
        `erased owner "${ERIN}": 0 images deleted, 0 rows removed (0 of them deleted before), 0 objects without a row removed\n`,
      );
      expect(await snapshot()).toEqual(before);
    });
  });
}

eraseOwnerOn(cosStore());
eraseOwnerOn(s3Store());
eraseOwnerOn(pgliteStore());
