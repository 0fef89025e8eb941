import { randomUUID } from 'node:crypto';
import { mkdir, readdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { localBucketRoot } from '../../src/container.js';
import { makePng } from '../../src/seed.js';
import { runCli } from '../support/cli.js';
import { authEnv, testRedisUrl } from '../support/env.js';
import { type Harness, startHarness } from '../support/harness.js';
import { uploadFile } from '../support/upload.js';

// `signet erase-owner` (docs/operations.md, "Erasing a user's data") against the local driver, a
// real PostgreSQL and a real Redis: every image of the owner goes through the normal delete path
// (objects, variants, cached URLs), then every row of the owner, live or deleted, is removed;
// another owner's images, rows and keys are untouched; a second run (after a failure midway)
// finishes the job and changes nothing more.

const THUMB = /* GraphQL */ `
  query ($id: ID!) { image(id: $id) { signedUrl(preset: "thumb") { url } } }
`;
const DELETE = /* GraphQL */ `mutation ($id: ID!) { deleteImage(id: $id) }`;

/** Every file below `dir` (relative paths); none when it does not exist. */
async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  const entries = await readdir(dir, { withFileTypes: true, recursive: true }).catch(() => []);
  for (const e of entries) if (e.isFile()) out.push(path.relative(dir, path.join(e.parentPath, e.name)));
  return out;
}

describe('signet erase-owner (local driver, PostgreSQL, Redis)', () => {
  let h: Harness;
  let env: Record<string, string>;
  const ids: Record<'erin' | 'frank', string[]> = { erin: [], frank: [] };

  const rows = async (owner: string) =>
    (
      await sql<{ id: string; deleted_at: Date | null }>`
        select id, deleted_at from images where owner_id = ${owner}`.execute(h.db.kysely)
    ).rows;
  /** The Redis keys of this deployment that name one of these ids or this owner. */
  const redisKeysOf = async (owner: string, of: readonly string[]) => {
    const keys = await h.redis!.keys(`${h.config.redisPrefix}*`);
    const named: string[] = [];
    for (const key of keys) {
      if (key.includes(owner) || of.some((id) => key.includes(id))) named.push(key);
      const type = await h.redis!.type(key);
      if (type === 'zset' || type === 'set') {
        const members = type === 'zset' ? await h.redis!.zrange(key, 0, -1) : await h.redis!.smembers(key);
        for (const m of members) if (of.includes(m)) named.push(`${key} ∋ ${m}`);
      }
    }
    return named;
  };

  beforeAll(async () => {
    h = await startHarness({ driver: 'local', redis: testRedisUrl() });
    env = {
      ...authEnv(),
      STORAGE_DRIVER: 'local',
      DATA_DIR: h.config.dataDir,
      DATABASE_URL: h.config.databaseUrl!,
      REDIS_URL: testRedisUrl(),
      REDIS_PREFIX: h.config.redisPrefix,
      PUBLIC_URL: h.config.publicUrl,
      LOG_LEVEL: 'warn',
    };
    for (const [owner, n] of [
      ['erin', 3],
      ['frank', 1],
    ] as const) {
      const token = await h.token(owner);
      for (let i = 0; i < n; i++) {
        const up = await uploadFile(h, makePng(40 + i, 30, [i * 40, 0, 0], [255, 255, 255]), {
          token,
          type: 'image/png',
          name: 'a.png',
        });
        expect(up.errors).toBeUndefined();
        const id = up.data!.uploadImage.id;
        ids[owner].push(id);
        // A variant made (the local driver keeps it beside the bucket) and its URL cached.
        const thumb = await h.gql<{ image: { signedUrl: { url: string } } }>(THUMB, { id }, { token });
        expect((await fetch(thumb.data!.image.signedUrl.url)).status).toBe(200);
      }
    }
    // One of erin's deleted before: its row stays (soft-deleted) until the purge.
    const del = await h.gql<{ deleteImage: boolean }>(
      DELETE,
      { id: ids.erin[2] },
      { token: await h.token('erin') },
    );
    expect(del.data?.deleteImage).toBe(true);
    // A refreshSignedUrls call: its rate-limit window is a Redis key named after the owner.
    const refreshed = await h.gql(
      'mutation ($ids: [ID!]!) { refreshSignedUrls(ids: $ids) { url } }',
      { ids: [ids.erin[0]] },
      { token: await h.token('erin') },
    );
    expect(refreshed.errors).toBeUndefined();
    // An upload killed between its put and its row: an object no row names, in erin's folder.
    await h.storage.put(`u/erin/${randomUUID()}.png`, makePng(5, 5, [0, 0, 0], [1, 1, 1]), 'image/png');
  }, 120_000);
  afterAll(async () => {
    await h?.close();
  });

  it('a dry run lists the counts and changes nothing', async () => {
    const run = await runCli(['erase-owner', 'erin', '--dry-run'], env);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toContain(
      'dry run: owner "erin" has 2 live images, 1 deleted rows and 1 objects without a row in its upload folder',
    );
    expect(await rows('erin')).toHaveLength(3);
    // Two live objects and the leftover, each with its side file.
    expect(await filesUnder(path.join(localBucketRoot(h.config), 'u', 'erin'))).toHaveLength(6);
  });

  it("erases the owner's objects, variants, rows and Redis keys, and leaves another owner's alone", async () => {
    const bucket = localBucketRoot(h.config);
    const variants = path.join(h.config.dataDir, 'variants');
    const variantDirsBefore = await readdir(variants);
    expect(variantDirsBefore.some((d) => d.includes('erin'))).toBe(true);
    const erinKeys = await redisKeysOf('erin', ids.erin);
    expect(erinKeys).toContain(`${h.config.redisPrefix}rl:erin`);
    expect(erinKeys.some((k) => k.includes(`url:${ids.erin[0]}`))).toBe(true);
    const frankKeysBefore = await redisKeysOf('frank', ids.frank);
    expect(frankKeysBefore).not.toEqual([]);

    // A crash between a delete's two steps left a live row without its object: still erased.
    const object = (await filesUnder(path.join(bucket, 'u', 'erin'))).find(
      (f) => f.startsWith(ids.erin[0]!) && !f.endsWith('.json'),
    );
    expect(object).toBeDefined();
    await rm(path.join(bucket, 'u', 'erin', object!));

    // This node (another of the deployment) hears each delete, as from a gateway.
    const told: string[] = [];
    const stopListening = h.container.events.onAccessChange((changes) => {
      for (const c of changes) if (c.visibility === null) told.push(c.imageId);
    });
    const run = await runCli(['erase-owner', 'erin'], env);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    await expect.poll(() => [...told].sort(), { timeout: 5000 }).toEqual([ids.erin[0], ids.erin[1]].sort());
    stopListening();
    expect(run.stdout).toContain(
      'erased owner "erin": 2 images deleted, 3 rows removed (1 of them deleted before), 1 objects without a row removed',
    );

    expect(await rows('erin')).toEqual([]);
    await expect(stat(path.join(bucket, 'u', 'erin'))).rejects.toMatchObject({ code: 'ENOENT' });
    expect((await readdir(variants)).filter((d) => d.includes('erin'))).toEqual([]);
    expect(await redisKeysOf('erin', ids.erin)).toEqual([]);

    // Frank's image, row, variant and keys are as they were.
    expect(await rows('frank')).toMatchObject([{ id: ids.frank[0], deleted_at: null }]);
    expect(await filesUnder(path.join(bucket, 'u', 'frank'))).toHaveLength(2); // the object and its side file
    expect((await readdir(variants)).filter((d) => d.includes('frank'))).toHaveLength(1);
    expect(await redisKeysOf('frank', ids.frank)).toEqual(frankKeysBefore);
    const thumb = await h.gql<{ image: { signedUrl: { url: string } } | null }>(
      THUMB,
      { id: ids.frank[0] },
      { token: await h.token('frank') },
    );
    expect((await fetch(thumb.data!.image!.signedUrl.url)).status).toBe(200);
    // Erin's images are gone for erin too.
    const gone = await h.gql<{ image: unknown }>(
      THUMB,
      { id: ids.erin[0] },
      { token: await h.token('erin') },
    );
    expect(gone.data?.image).toBeNull();
  });

  it('running it again finds nothing left and changes nothing', async () => {
    const run = await runCli(['erase-owner', 'erin'], env);
    expect(run.code, run.stderr + run.stdout).toBe(0);
    expect(run.stdout).toContain(
      'erased owner "erin": 0 images deleted, 0 rows removed (0 of them deleted before), 0 objects without a row removed',
    );
    expect(await rows('frank')).toHaveLength(1);
  });

  it('a run that fails midway (the bucket refusing a delete) is finished by running it again', async () => {
    const token = await h.token('hank');
    const hank: string[] = [];
    for (let i = 0; i < 2; i++) {
      const up = await uploadFile(h, makePng(20 + i, 20, [0, i * 90, 0], [255, 255, 255]), {
        token,
        type: 'image/png',
        name: 'a.png',
      });
      expect(up.errors).toBeUndefined();
      hank.push(up.data!.uploadImage.key);
    }
    // The older image's object cannot be removed: a folder stands where its file was.
    const blocked = path.join(localBucketRoot(h.config), hank[0]!);
    await rm(blocked);
    await mkdir(path.join(blocked, 'x'), { recursive: true });

    const failed = await runCli(['erase-owner', 'hank'], env);
    expect(failed.code).toBe(1);
    expect(failed.stderr).toContain('the erasure of owner "hank" stopped: ');
    expect(failed.stderr).toContain('run the same command again to finish it');
    // The newer image went (its row soft-deleted), the older one is still live.
    expect((await rows('hank')).map((r) => r.deleted_at === null).sort()).toEqual([false, true]);

    await rm(blocked, { recursive: true });
    const again = await runCli(['erase-owner', 'hank'], env);
    expect(again.stderr).toBe('');
    expect(again.code).toBe(0);
    expect(again.stdout).toContain(
      'erased owner "hank": 1 images deleted, 2 rows removed (1 of them deleted before), 0 objects without a row removed',
    );
    expect(await rows('hank')).toEqual([]);
    await expect(stat(path.join(localBucketRoot(h.config), 'u', 'hank'))).rejects.toMatchObject({
      code: 'ENOENT',
    });
    expect(await rows('frank')).toHaveLength(1);
  });

  it('refuses a missing or malformed owner id (exit 2)', async () => {
    for (const args of [['erase-owner'], ['erase-owner', 'has space'], ['erase-owner', 'a', 'b']]) {
      const run = await runCli(args, env);
      expect(run.code, args.join(' ')).toBe(2);
      expect(run.stderr, args.join(' ')).toContain('owner id');
    }
    expect(await rows('frank')).toHaveLength(1);
  });
});
