import { randomBytes, randomUUID } from 'node:crypto';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { sql } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { missingProgressReporter } from '../../src/cli/missing-objects.js';
import { localBucketRoot } from '../../src/container.js';
import { openDatabase } from '../../src/db/connect.js';
import { createImagesRepo } from '../../src/db/images-repo.js';
import type { Db } from '../../src/db/types.js';
import { findMissingObjects } from '../../src/images/missing-objects.js';
import { SWEEP_MARK_KEY } from '../../src/images/sweep-guard.js';
import { objectKeyFor } from '../../src/images/upload.js';
import { compareKeys } from '../../src/lib/key-order.js';
import { makePng } from '../../src/seed.js';
import { DERIVED_VARIANT_PREFIX } from '../../src/storage/derived-variants.js';
import type { Storage } from '../../src/storage/storage.js';
import { type CliRun, runCli } from '../support/cli.js';
import { authEnv, cosEnv, testDatabaseUrl } from '../support/env.js';
import { type Harness, startHarness } from '../support/harness.js';

// `signet missing-objects` (docs/operations.md, "Backups and restores", a lost object): live rows
// whose object was deleted behind Signet's back are listed, exactly those, against the COS
// fixture and the local driver with a real PostgreSQL; a database whose collation orders keys
// otherwise than the bucket (ICU en-US) gives the same answer; nothing is changed.

const PNG = makePng(2, 2, [0, 0, 0], [255, 255, 255]);

/**
 * Keys whose order differs between byte order (the bucket's, `COLLATE "C"`) and a linguistic
 * collation (en-US: `a` before `B`, accents beside their letter, punctuation weighed apart), and
 * between byte order and UTF-16 units (U+FF21 against a character beyond U+FFFF).
 */
const SHOP_KEYS = [
  'shop/B.png',
  'shop/a.png',
  'shop/Zebra.png',
  'shop/apple.png',
  'shop/Äpfel.png',
  'shop/éclair.png',
  'shop/zoo.png',
  'shop/\uFF21.png',
  'shop/\u{1F600}.png',
  'shop/a b.png',
  'shop/a-b.png',
  'shop/ab.png',
];

interface Seeded {
  id: string;
  ownerId: string;
  key: string;
  createdAt: Date;
}

type Repo = ReturnType<typeof createImagesRepo>;

/** A live row and its object, as an upload or an import leaves them. */
async function addImage(
  repo: Repo,
  storage: Storage | undefined,
  ownerId: string,
  key: string,
): Promise<Seeded> {
  if (storage) await storage.put(key, PNG, 'image/png');
  const id = randomUUID();
  const createdAt = new Date(Date.UTC(2026, 0, 1, 0, 0, 0, Math.floor(Math.random() * 1e9)));
  await repo.insert({
    id,
    ownerId,
    objectKey: key,
    contentType: 'image/png',
    byteSize: PNG.length,
    width: 2,
    height: 2,
    etag: '"e"',
    createdAt,
    animated: false,
  });
  return { id, ownerId, key, createdAt };
}

/** The rows of a text report: `id  owner  key  created at` under the header, before the summary line. */
function textRows(stdout: string): Seeded[] {
  const lines = stdout.trimEnd().split('\n');
  expect(lines[0]).toBe('IMAGE ID  OWNER  OBJECT KEY  CREATED AT');
  return lines.slice(1, -1).map((line) => {
    const [id, ownerId, key, createdAt, ...extra] = line.split('  ');
    expect(extra).toEqual([]);
    return {
      id: id!,
      ownerId: ownerId!,
      key: key!.startsWith('"') ? (JSON.parse(key!) as string) : key!,
      createdAt: new Date(createdAt!),
    };
  });
}

const lastLine = (s: string) => s.trimEnd().split('\n').at(-1) ?? '';
const byKey = (a: { key: string }, b: { key: string }) => compareKeys(a.key, b.key);
const sorted = <T extends { key: string }>(rows: T[]) => [...rows].sort(byKey);

describe('signet missing-objects: the COS fixture and PostgreSQL', () => {
  let h: Harness;
  let env: Record<string, string>;
  let repo: Repo;
  const live: Seeded[] = [];
  /** The rows whose objects the tests delete behind Signet's back. */
  const gone: Seeded[] = [];

  beforeAll(async () => {
    h = await startHarness({ driver: 'cos', redis: 'memory' });
    env = { ...cosEnv(h.fixture!), DATABASE_URL: h.config.databaseUrl!, DATA_DIR: h.config.dataDir };
    repo = createImagesRepo(h.db);
    for (const key of SHOP_KEYS) live.push(await addImage(repo, h.storage, 'shop', key));
    for (const owner of ['ann', 'ann', 'ann', 'Bob', 'Bob', 'bob']) {
      live.push(await addImage(repo, h.storage, owner, objectKeyFor(owner, randomUUID(), 'png')));
    }
  }, 60_000);
  afterAll(async () => {
    await h?.close();
  });

  const run = (args: string[]): Promise<CliRun> => runCli(['missing-objects', ...args], env);

  it('nothing missing: exit 0, one line saying so', async () => {
    const r = await run([]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(
      `no missing objects: ${live.length} live rows checked against the COS bucket test-1250000000 (ap-test)\n`,
    );
  });

  it('objects deleted behind its back: exactly their rows, exit 1, and what to do last', async () => {
    const take = (key: string) => live.find((r) => r.key === key)!;
    gone.push(
      take('shop/a.png'),
      take('shop/Zebra.png'),
      take('shop/\u{1F600}.png'),
      take('shop/éclair.png'),
      take('shop/a b.png'),
      live.find((r) => r.ownerId === 'ann')!,
      live.find((r) => r.ownerId === 'Bob')!,
    );
    for (const r of gone) await h.storage.delete(r.key);
    // What Signet keeps besides originals is no original: a derived variant of a gone object
    // (s3 keeps them in the bucket) and the orphan sweep's mark.
    await h.storage.put(`${DERIVED_VARIANT_PREFIX}shop/Zebra.png/w200`, PNG, 'image/png');
    await h.storage.put(SWEEP_MARK_KEY, Buffer.from('{}'), 'application/json');
    // A deleted row whose object went with its delete: not reported.
    const deleted = await addImage(repo, h.storage, 'shop', 'shop/deleted.png');
    await h.storage.delete(deleted.key);
    expect(await repo.softDelete('shop', deleted.id, new Date())).not.toBeNull();

    const r = await run([]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(1);
    expect(sorted(textRows(r.stdout))).toEqual(sorted(gone));
    expect(lastLine(r.stdout)).toBe(
      `${gone.length} of ${live.length} live rows have no object in the COS bucket test-1250000000 (ap-test): restore each object under its key (from the bucket's backup or its versions), or delete the image through the API (\`deleteImage(id:)\` as its owner or an admin); this command changed nothing`,
    );
    // Nothing was changed: every row is as it was.
    const rows = await sql<{ n: string }>`select count(*) as n from images where deleted_at is null`.execute(
      h.db.kysely,
    );
    expect(Number(rows.rows[0]!.n)).toBe(live.length);
  });

  it('--owner narrows the report to one owner', async () => {
    const r = await run(['--owner', 'ann']);
    expect(r.code).toBe(1);
    expect(textRows(r.stdout)).toEqual(gone.filter((g) => g.ownerId === 'ann'));
    expect(lastLine(r.stdout)).toMatch(/^1 of 3 live rows of owner "ann" have no object in the COS bucket/);

    // bob is not Bob; and an owner without rows has nothing missing.
    const bob = await run(['--owner', 'bob']);
    expect(bob.code).toBe(0);
    expect(bob.stdout).toMatch(/^no missing objects: 1 live rows of owner "bob" checked/);
    const nobody = await run(['--owner', 'nobody']);
    expect(nobody.code).toBe(0);
    expect(nobody.stdout).toMatch(/^no missing objects: 0 live rows of owner "nobody" checked/);
  });

  it('--json: one object per missing row per line on stdout, the summary on stderr', async () => {
    const r = await run(['--json']);
    expect(r.code).toBe(1);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines).toHaveLength(gone.length);
    const objects = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    for (const o of objects) expect(Object.keys(o)).toEqual(['imageId', 'ownerId', 'key', 'createdAt']);
    expect(sorted(objects as unknown as { key: string }[])).toEqual(
      sorted(gone).map((g) => ({
        imageId: g.id,
        ownerId: g.ownerId,
        key: g.key,
        createdAt: g.createdAt.toISOString(),
      })),
    );
    expect(lastLine(r.stderr)).toMatch(/^7 of \d+ live rows have no object .*deleteImage/);
  });

  it('--limit stops after that many and says more may follow', async () => {
    const r = await run(['--limit', '2']);
    expect(r.code).toBe(1);
    const rows = textRows(r.stdout);
    expect(rows).toHaveLength(2);
    for (const row of rows) expect(gone).toContainEqual(row);
    expect(lastLine(r.stdout)).toMatch(
      /^stopped at --limit 2, after \d+ live rows: .* more may follow; restore/,
    );
    // A limit the report stays under changes nothing.
    const all = await run(['--limit', '100', '--json']);
    expect(all.stdout.trimEnd().split('\n')).toHaveLength(gone.length);
  });

  it('bad usage: exit 2, before the database or the bucket', async () => {
    for (const args of [
      ['--limit', '0'],
      ['--limit', 'x'],
      ['--owner', 'not an id'],
      ['--bogus'],
      ['extra'],
    ]) {
      const r = await run(args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr).toMatch(/^signet: /);
      expect(r.stdout).toBe('');
    }
  });

  it('pages of rows and listings of a few keys each give the same rows, the listing walked in several calls', async () => {
    const found: Seeded[] = [];
    const progress: number[] = [];
    const result = await findMissingObjects(
      { storage: h.storage, images: repo },
      {
        rowPageSize: 3,
        listPageSize: 2,
        onMissing: (r) => {
          found.push({ id: r.id, ownerId: r.ownerId, key: r.objectKey, createdAt: r.createdAt });
        },
        onProgress: (p) => progress.push(p.rowsChecked),
      },
    );
    expect(sorted(found)).toEqual(sorted(gone));
    expect(result).toMatchObject({ rowsChecked: live.length, missing: gone.length, stoppedAtLimit: false });
    expect(result.listCalls).toBeGreaterThan(5);
    expect(progress.at(-1)).toBe(live.length);
  });

  it('--owner lists around its own keys, not through the bucket', async () => {
    const found: string[] = [];
    const result = await findMissingObjects(
      { storage: h.storage, images: repo },
      { ownerId: 'ann', listPageSize: 2, onMissing: (r) => void found.push(r.objectKey) },
    );
    expect(found).toEqual(gone.filter((g) => g.ownerId === 'ann').map((g) => g.key));
    // A walk from the bucket's first key would take a call per two of its keys before ann's.
    const bucket = (await h.storage.list('')).objects.map((o) => o.key);
    expect(bucket.findIndex((k) => k.startsWith('u/ann/'))).toBeGreaterThan(8);
    expect(result.listCalls).toBeLessThanOrEqual(3);
  });

  it('byte order of keys is PostgreSQL\'s COLLATE "C" and the bucket\'s', async () => {
    const keys = [...SHOP_KEYS, 'u/Bob/x.png', 'u/bob/x.png', '_signet/x', 'shop/\uE000', 'shop/\u{10000}'];
    const r = await sql<{
      k: string;
    }>`select k from unnest(${keys}::text[]) as k order by k collate "C"`.execute(h.db.kysely);
    const inC = r.rows.map((x) => x.k);
    expect([...keys].sort(compareKeys)).toEqual(inC);
    expect([...keys].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)))).toEqual(inC);
    // The fixture lists in that order too.
    const listed = (await h.storage.list('shop/')).objects.map((o) => o.key);
    expect(listed).toEqual([...listed].sort(compareKeys));
  });

  it('a row deleted through the API while the check runs is not reported', async () => {
    const racing = await addImage(repo, h.storage, 'race', 'race/1.png');
    await h.storage.delete(racing.key);
    // The delete's order (images/delete.ts): the object first, then the row, here while the
    // check looks the key up.
    const storage: Pick<Storage, 'list' | 'head'> = {
      list: (prefix, o) => h.storage.list(prefix, o),
      head: async (key) => {
        if (key === racing.key) await repo.softDelete('race', racing.id, new Date());
        return h.storage.head(key);
      },
    };
    const found: string[] = [];
    const result = await findMissingObjects(
      { storage, images: repo },
      { ownerId: 'race', onMissing: (r) => void found.push(r.objectKey) },
    );
    expect(found).toEqual([]);
    expect(result).toMatchObject({ rowsChecked: 1, missing: 0 });
  });

  describe('a database whose collation is not byte order (ICU en-US)', () => {
    let name: string;
    let db: Db;
    let icuRepo: Repo;
    const icuGone: Seeded[] = [];

    beforeAll(async () => {
      name = `signet_t_${randomBytes(5).toString('hex')}`;
      const admin = new pg.Client({ connectionString: testDatabaseUrl() });
      await admin.connect();
      await admin.query(`create database ${name} template template0 locale_provider icu icu_locale 'en-US'`);
      await admin.end();
      const url = new URL(testDatabaseUrl());
      url.pathname = `/${name}`;
      db = await openDatabase({ databaseUrl: url.toString(), dataDir: h.config.dataDir });
      icuRepo = createImagesRepo(db);
      // Rows of this database for the same bucket: its objects are there but for those deleted above.
      const goneKeys = new Set(gone.map((g) => g.key));
      for (const key of SHOP_KEYS) {
        const row = await addImage(icuRepo, undefined, 'shop', key);
        if (goneKeys.has(key)) icuGone.push(row);
      }
    });
    afterAll(async () => {
      await db?.close();
      const c = new pg.Client({ connectionString: testDatabaseUrl() });
      await c.connect();
      await c.query(`drop database if exists ${name} with (force)`);
      await c.end();
    });

    it('its own order of the keys is not byte order, and the report is the same', async () => {
      const walked = (await icuRepo.liveRowsByKey(undefined, 100)).map((r) => r.objectKey);
      expect(walked).toHaveLength(SHOP_KEYS.length);
      expect(walked).not.toEqual([...walked].sort(compareKeys));
      expect(walked.indexOf('shop/a.png')).toBeLessThan(walked.indexOf('shop/B.png'));

      for (const [rowPageSize, listPageSize] of [
        [2, 2],
        [5, 1],
        [1000, 1000],
      ] as const) {
        const found: Seeded[] = [];
        const result = await findMissingObjects(
          { storage: h.storage, images: icuRepo },
          {
            rowPageSize,
            listPageSize,
            onMissing: (r) => {
              found.push({ id: r.id, ownerId: r.ownerId, key: r.objectKey, createdAt: r.createdAt });
            },
          },
        );
        expect(sorted(found), `${rowPageSize} rows, ${listPageSize} keys a page`).toEqual(sorted(icuGone));
        expect(result.rowsChecked).toBe(SHOP_KEYS.length);
      }
    });
  });
});

describe('signet missing-objects: the local driver', () => {
  let h: Harness;
  let env: Record<string, string>;
  let repo: Repo;
  const live: Seeded[] = [];

  beforeAll(async () => {
    h = await startHarness({ driver: 'local', redis: 'memory' });
    env = {
      ...authEnv(),
      STORAGE_DRIVER: 'local',
      DATA_DIR: h.config.dataDir,
      DATABASE_URL: h.config.databaseUrl!,
      PUBLIC_URL: h.config.publicUrl,
    };
    repo = createImagesRepo(h.db);
    for (const key of SHOP_KEYS) live.push(await addImage(repo, h.storage, 'shop', key));
    for (const owner of ['ann', 'Bob']) {
      live.push(await addImage(repo, h.storage, owner, objectKeyFor(owner, randomUUID(), 'png')));
    }
  }, 60_000);
  afterAll(async () => {
    await h?.close();
  });

  it('exit 0 with every object there, then exactly the files removed by hand', async () => {
    const none = await runCli(['missing-objects'], env);
    expect(none.stderr).toBe('');
    expect(none.code).toBe(0);
    expect(none.stdout).toMatch(/^no missing objects: \d+ live rows checked against the local bucket /);

    const removed = [
      live.find((r) => r.key === 'shop/\uFF21.png')!,
      live.find((r) => r.key === 'shop/B.png')!,
      live.find((r) => r.ownerId === 'Bob')!,
    ];
    for (const r of removed) await rm(path.join(localBucketRoot(h.config), ...r.key.split('/')));
    const r = await runCli(['missing-objects'], env);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(1);
    expect(sorted(textRows(r.stdout))).toEqual(sorted(removed));
    expect(lastLine(r.stdout)).toMatch(
      /^3 of \d+ live rows have no object in the local bucket .*deleteImage/,
    );
  });

  it('a key beyond U+FFFF is walked in byte order, as the bucket lists it', async () => {
    // U+FF21 sorts before U+1F600 in bytes and after it in UTF-16 units: the local driver lists
    // in byte order as S3 and COS do (lib/key-order.ts), so pages of two keys meet them in turn.
    const keys = ['utf16/q', 'utf16/\uFF21.png', 'utf16/\u{1F600}.png'];
    for (const key of keys) await addImage(repo, h.storage, 'utf16', key);
    const page = await h.storage.list('utf16/', { maxKeys: 2 });
    expect(page.objects.map((o) => o.key)).toEqual(['utf16/q', 'utf16/\uFF21.png']);
    const found: string[] = [];
    const result = await findMissingObjects(
      { storage: h.storage, images: repo },
      { ownerId: 'utf16', listPageSize: 2, onMissing: (r) => void found.push(r.objectKey) },
    );
    expect(found).toEqual([]);
    expect(result).toMatchObject({ rowsChecked: 3, missing: 0 });
  });

  it('a key the listing leaves out is found by its HEAD, not reported', async () => {
    // A listing that lags the store's writes (or a driver that lists out of order) must not
    // report an object that is there: every absence is confirmed by a HEAD first.
    const keys = ['lag/a.png', 'lag/b.png', 'lag/c.png'];
    for (const key of keys) await addImage(repo, h.storage, 'lag', key);
    const heads: string[] = [];
    const lagging = {
      list: async (prefix: string, o?: { marker?: string; maxKeys?: number }) => {
        const page = await h.storage.list(prefix, o);
        return { ...page, objects: page.objects.filter((x) => x.key !== 'lag/b.png') };
      },
      head: (key: string) => {
        heads.push(key);
        return h.storage.head(key);
      },
    };
    const found: string[] = [];
    const result = await findMissingObjects(
      { storage: lagging, images: repo },
      { ownerId: 'lag', onMissing: (r) => void found.push(r.objectKey) },
    );
    expect(found).toEqual([]);
    expect(heads).toEqual(['lag/b.png']);
    expect(result).toMatchObject({ rowsChecked: 3, missing: 0 });
  });

  it('a DATA_DIR without its bucket folder is an error, not every row missing', async () => {
    const r = await runCli(['missing-objects'], { ...env, DATA_DIR: path.join(h.config.dataDir, 'nowhere') });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^signet: the local bucket .*nowhere.* does not exist/);
    expect(r.stdout).toBe('');
  });
});

describe('missing-objects progress', () => {
  it('off a terminal: no line for a short run, then one at most every interval', () => {
    let t = 0;
    const lines: string[] = [];
    const report = missingProgressReporter(
      { write: (s: string) => lines.push(s) },
      { everyMs: 1000, now: () => t },
    );
    const p = { rowsChecked: 10, missing: 1, listCalls: 2, done: false };
    report(p);
    t = 500;
    report(p);
    expect(lines).toEqual([]);
    t = 1500;
    report({ ...p, rowsChecked: 3000 });
    t = 1600;
    report(p);
    report({ ...p, done: true });
    expect(lines).toEqual(['3000 live rows checked, 1 missing, 2 listing calls · 2000 rows/s\n']);
  });
});
