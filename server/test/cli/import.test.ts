import { createHash, randomUUID } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { sql } from 'kysely';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeClock } from '../../src/clock.js';
import { OrphanSweeper } from '../../src/images/orphan-sweep.js';
import { SWEEP_MARK_KEY } from '../../src/images/sweep-guard.js';
import { objectKeyFor } from '../../src/images/upload.js';
import { createMetrics } from '../../src/metrics.js';
import { makePng } from '../../src/seed.js';
import { AVIF_SEQUENCE_400x300, makeApng, noisyFrames } from '../fixtures/images.js';
import { collect, runCli, spawnCli } from '../support/cli.js';
import { cosEnv, s3Env, TEST_COS } from '../support/env.js';
import { type Harness, startHarness } from '../support/harness.js';
import { captureLogger } from '../support/logs.js';
import { freePort } from '../support/ports.js';

const LIST = /* GraphQL */ `
  query {
    images(first: 100) {
      totalCount
      edges { node { key contentType width height byteSize signedUrl { url } } }
    }
  }
`;

interface Listed {
  images: {
    totalCount: number;
    edges: {
      node: {
        key: string;
        contentType: string;
        width: number | null;
        height: number | null;
        byteSize: number;
        signedUrl: { url: string };
      };
    }[];
  };
}

/**
 * A baseline JPEG whose frame header sits behind two large APP segments (as EXIF and an ICC
 * profile put it): beyond the first 64 KB, so the importer must read its head further.
 */
function jpegWithLargeHeader(width: number, height: number): Buffer {
  const app = (marker: number, bytes: number) => {
    const seg = Buffer.alloc(4 + bytes - 2);
    seg[0] = 0xff;
    seg[1] = marker;
    seg.writeUInt16BE(bytes, 2);
    return seg;
  };
  const sof = Buffer.from([
    0xff, 0xc0, 0x00, 0x11, 0x08, 0, 0, 0, 0, 0x03, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1,
  ]);
  sof.writeUInt16BE(height, 5);
  sof.writeUInt16BE(width, 7);
  return Buffer.concat([
    Buffer.from([0xff, 0xd8]),
    app(0xe1, 65_000),
    app(0xe2, 65_000),
    sof,
    Buffer.from([0xff, 0xd9]),
  ]);
}

/** `imported N of M objects …; skipped: …` from the command's last line. */
function summary(stdout: string): { imported: number; seen: number; skipped: string } {
  const m = /imported (\d+) of (\d+) objects for owner "[^"]+"; skipped: (.*)$/m.exec(stdout);
  if (!m) throw new Error(`no summary line in: ${stdout}`);
  return { imported: Number(m[1]), seen: Number(m[2]), skipped: m[3]! };
}

async function rowCount(h: Harness, owner: string): Promise<number> {
  const r = await sql<{ n: string }>`select count(*) as n from images where owner_id = ${owner}`.execute(
    h.db.kysely,
  );
  return Number(r.rows[0]!.n);
}

describe('signet import: a COS bucket (the fixture)', () => {
  let h: Harness;
  let env: Record<string, string>;

  beforeAll(async () => {
    h = await startHarness({ driver: 'cos', redis: 'memory' });
    env = { ...cosEnv(h.fixture!), DATABASE_URL: h.config.databaseUrl!, DATA_DIR: h.config.dataDir };
    // Stored by some other tool, with a type that says nothing: the content decides.
    for (let i = 0; i < 5; i++) {
      await h.storage.put(
        `legacy/p${i}.png`,
        makePng(10 + i, 20, [0, 0, 0], [255, 255, 255]),
        'binary/octet-stream',
      );
    }
    await h.storage.put('legacy/big-exif.jpg', jpegWithLargeHeader(640, 480), 'binary/octet-stream');
    await h.storage.put('legacy/notes.txt', Buffer.from('not an image'), 'text/plain');
    await h.storage.put('legacy/empty.png', Buffer.alloc(0), 'image/png');
    await h.storage.put('other/q.png', makePng(7, 7, [0, 0, 0], [9, 9, 9]), 'image/png');
    // Signet's own upload key: not adopted by an import, whoever it belongs to.
    await h.storage.put(
      'u/bob/11111111-1111-4111-8111-111111111111.png',
      makePng(3, 3, [0, 0, 0], [1, 1, 1]),
      'image/png',
    );
  });
  afterAll(async () => {
    await h?.close();
  });

  it('imports the images under a prefix, skips the rest by reason, and a second run adds nothing', async () => {
    const first = await runCli(['import', '--owner', 'shop', '--prefix', 'legacy/'], env);
    expect(first.stderr).toBe('');
    expect(first.code).toBe(0);
    expect(summary(first.stdout)).toEqual({ imported: 6, seen: 8, skipped: 'empty 1, not-an-image 1' });

    const token = await h.token('shop');
    const listed = await h.gql<Listed>(LIST, {}, { token });
    expect(listed.errors).toBeUndefined();
    const byKey = new Map(listed.data!.images.edges.map((e) => [e.node.key, e.node]));
    expect([...byKey.keys()].sort()).toEqual([
      'legacy/big-exif.jpg',
      'legacy/p0.png',
      'legacy/p1.png',
      'legacy/p2.png',
      'legacy/p3.png',
      'legacy/p4.png',
    ]);
    expect(byKey.get('legacy/p3.png')).toMatchObject({ contentType: 'image/png', width: 13, height: 20 });
    expect(byKey.get('legacy/big-exif.jpg')).toMatchObject({
      contentType: 'image/jpeg',
      width: 640,
      height: 480,
    });
    // The signed URL of an imported image works against the bucket.
    const got = await fetch(byKey.get('legacy/p0.png')!.signedUrl.url);
    expect(got.status).toBe(200);
    expect(
      Buffer.from(await got.arrayBuffer())
        .subarray(1, 4)
        .toString(),
    ).toBe('PNG');

    const again = await runCli(['import', '--owner', 'shop', '--prefix', 'legacy/'], env);
    expect(again.code).toBe(0);
    expect(summary(again.stdout)).toEqual({
      imported: 0,
      seen: 8,
      skipped: 'already-imported 6, empty 1, not-an-image 1',
    });
    expect(await rowCount(h, 'shop')).toBe(6);
  });

  it("the whole bucket: only what is new; Signet's own upload keys and the sweep's mark are left alone", async () => {
    // The orphan sweep's mark, as a worker writes it (images/sweep-guard.ts).
    const mark = Buffer.from('{"token":"t","at":"2026-12-07T00:00:00Z"}');
    await h.storage.put(SWEEP_MARK_KEY, mark, 'application/json', mark.length);
    const dry = await runCli(['import', '--owner', 'shop', '--dry-run'], env);
    expect(dry.code).toBe(0);
    expect(dry.stdout).toContain('dry run: would import 1 of 11 objects');
    expect(await rowCount(h, 'shop')).toBe(6);

    const run = await runCli(['import', '--owner', 'shop'], env);
    expect(run.code).toBe(0);
    const s = summary(run.stdout);
    expect(s.imported).toBe(1);
    expect(s.skipped).toContain('signet-object 2');
    expect(await rowCount(h, 'shop')).toBe(7);
    expect(await rowCount(h, 'bob')).toBe(0);
  });

  it('refuses an --owner the gateway would not accept as a subject (exit 2), importing nothing', async () => {
    for (const owner of ['has space', 'x'.repeat(129)]) {
      const run = await runCli(['import', '--owner', owner, '--prefix', 'legacy/'], env);
      expect(run.code, owner).toBe(2);
      expect(run.stderr, owner).toContain('--owner must be');
      expect(run.stderr, owner).toContain('[A-Za-z0-9._@:|-]');
      expect(await rowCount(h, owner), owner).toBe(0);
    }
  });

  it('an unreachable bucket fails fast, naming the variables', async () => {
    const started = Date.now();
    const run = await runCli(['import', '--owner', 'shop'], {
      ...env,
      COS_DOMAIN: `127.0.0.1:${await freePort()}`,
      COS_TIMEOUT_MS: '2000',
    });
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('cannot list the bucket');
    expect(run.stderr).toContain('COS_BUCKET=');
    expect(run.stderr).toContain('COS_DOMAIN=');
    expect(Date.now() - started).toBeLessThan(40_000);
  });

  it('with several regions, imported rows are homed in the importing region (only its bucket is known to hold them)', async () => {
    await h.storage.put('regional/r.png', makePng(4, 4, [0, 0, 0], [5, 5, 5]), 'image/png');
    const run = await runCli(['import', '--owner', 'regional', '--prefix', 'regional/'], {
      ...env,
      SIGNET_REGION: 'here',
      STORAGE_REGIONS: `here=${TEST_COS.bucket},there=elsewhere-1250000000`,
    });
    expect(run.code).toBe(0);
    expect(summary(run.stdout).imported).toBe(1);
    const rows = await sql<{ home_region: string | null; replicated_regions: string[] }>`
      select home_region, replicated_regions from images where owner_id = 'regional'`.execute(h.db.kysely);
    expect(rows.rows).toEqual([{ home_region: 'here', replicated_regions: [] }]);
  });
});

describe('signet import: keys with a dot segment (the COS fixture)', () => {
  let h: Harness;
  let env: Record<string, string>;
  /** URL parsers remove these segments, so no signed URL of such an object could be loaded. */
  const DOT_KEYS = [
    'photos/./dot.png',
    'photos/../up.png',
    'photos/.',
    'photos/..',
    './lead.png',
    '.',
    '..',
    '../..',
  ];

  beforeAll(async () => {
    h = await startHarness({ driver: 'cos', redis: 'memory' });
    env = { ...cosEnv(h.fixture!), DATABASE_URL: h.config.databaseUrl!, DATA_DIR: h.config.dataDir };
    await h.storage.put('photos/ok.png', makePng(6, 4, [0, 0, 0], [9, 9, 9]), 'image/png');
    // A `%2e` segment is no dot segment once the key is encoded for a URL (`%252e`): imported.
    await h.storage.put('photos/%2e/pct.png', makePng(5, 3, [0, 0, 0], [9, 9, 9]), 'image/png');
    // Written by another tool that sends its paths as they are: the driver cannot name these keys
    // in a URL (that is the point), so they go into the fixture's bucket directly.
    for (const key of DOT_KEYS) {
      const body = makePng(4, 4, [0, 0, 0], [1, 2, 3]);
      h.fixture!.objects.set(key, {
        body,
        contentType: 'image/png',
        etag: `"${createHash('md5').update(body).digest('hex')}"`,
        lastModified: new Date(),
      });
    }
  });
  afterAll(async () => {
    await h?.close();
  });

  it('skips them as unaddressable and imports the keys beside them, whose signed URLs load', async () => {
    const run = await runCli(['import', '--owner', 'dots'], env);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(summary(run.stdout)).toEqual({
      imported: 2,
      seen: 2 + DOT_KEYS.length,
      skipped: `unaddressable ${DOT_KEYS.length}`,
    });
    const rows = await sql<{ object_key: string }>`
      select object_key from images where owner_id = 'dots' order by object_key`.execute(h.db.kysely);
    expect(rows.rows.map((r) => r.object_key)).toEqual(['photos/%2e/pct.png', 'photos/ok.png']);

    const listed = await h.gql<Listed>(LIST, {}, { token: await h.token('dots') });
    expect(listed.errors).toBeUndefined();
    for (const { node } of listed.data!.images.edges) {
      expect((await fetch(node.signedUrl.url)).status, node.key).toBe(200);
    }
  });
});

// An animated WebP, an APNG and an AVIF sequence in a bucket: the import records animation from
// the head it reads with ranged GETs (as an upload does), so their variants are the original.
describe('signet import: animated originals (the COS fixture)', () => {
  let h: Harness;
  let env: Record<string, string>;
  const expected: Record<string, boolean> = {};

  beforeAll(async () => {
    h = await startHarness({ driver: 'cos', redis: 'memory' });
    env = { ...cosEnv(h.fixture!), DATABASE_URL: h.config.databaseUrl!, DATA_DIR: h.config.dataDir };
    // Noisy frames: the WebP and the APNG are larger than the first ranged read (64 KB).
    const frames = await noisyFrames();
    const objects: [string, Buffer, boolean][] = [
      [
        'anim/moving.webp',
        await sharp(frames, { join: { animated: true } })
          .webp()
          .toBuffer(),
        true,
      ],
      ['anim/moving.png', makeApng(frames), true],
      ['anim/moving.avif', AVIF_SEQUENCE_400x300, true],
      ['anim/still.webp', await sharp(frames[0]!).webp().toBuffer(), false],
      ['anim/still.png', frames[0]!, false],
      ['anim/still.avif', await sharp(frames[0]!).avif().toBuffer(), false],
    ];
    for (const [key, body, animated] of objects) {
      await h.storage.put(key, body, 'binary/octet-stream');
      expected[key] = animated;
    }
  });
  afterAll(async () => {
    await h?.close();
  });

  it("records which are animated, and an animated one's preset and srcset are its original's URL", async () => {
    const run = await runCli(['import', '--owner', 'anim', '--prefix', 'anim/'], env);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(summary(run.stdout)).toEqual({ imported: 6, seen: 6, skipped: 'none' });
    const rows = await sql<{ object_key: string; animated: boolean | null }>`
      select object_key, animated from images where owner_id = 'anim'`.execute(h.db.kysely);
    expect(Object.fromEntries(rows.rows.map((r) => [r.object_key, r.animated]))).toEqual(expected);

    const res = await h.gql<{
      images: { edges: { node: { key: string; o: { url: string }; t: { url: string }; s: string } }[] };
    }>(
      '{ images(first: 10) { edges { node { key o: signedUrl { url } t: signedUrl(preset: "thumb") { url } s: srcset(preset: "thumb") } } } }',
      {},
      { token: await h.token('anim') },
    );
    expect(res.errors).toBeUndefined();
    for (const { node } of res.data!.images.edges) {
      if (expected[node.key]) {
        expect(node.t.url, node.key).toBe(node.o.url);
        expect(node.s, node.key).toBe(`${node.o.url} 400w`);
      } else {
        expect(node.t.url, node.key).not.toBe(node.o.url);
      }
    }
  });
});

describe('signet import: a local folder of 1,000 objects', () => {
  let h: Harness;
  let env: Record<string, string>;
  const IMAGES = 900;

  beforeAll(async () => {
    h = await startHarness({ driver: 'local', redis: 'memory' });
    env = { DATABASE_URL: h.config.databaseUrl!, DATA_DIR: h.config.dataDir, STORAGE_DRIVER: 'local' };
    // Copied into the bucket folder by hand: no side files, so no stored content type.
    const dir = path.join(h.config.dataDir, 'bucket', 'catalog');
    await mkdir(dir, { recursive: true });
    for (let i = 0; i < 1000; i++) {
      const name = String(i).padStart(4, '0');
      if (i % 10 === 9) await writeFile(path.join(dir, `${name}.csv`), `sku,price\n${i},9.99\n`);
      else
        await writeFile(
          path.join(dir, `${name}.png`),
          makePng(1 + (i % 40), 2, [i % 256, 0, 0], [0, 0, 255]),
        );
    }
  });
  afterAll(async () => {
    await h?.close();
  });

  it('a run killed mid-way resumes to the full count; a further run creates nothing', async () => {
    const child = spawnCli(['import', '--owner', 'catalog', '--batch', '20'], env);
    const done = collect(child, 120_000);
    // Kill it as soon as it has inserted some rows (and not all of them).
    let atKill = 0;
    for (;;) {
      atKill = await rowCount(h, 'catalog');
      if (atKill > 0 || child.exitCode !== null) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    child.kill('SIGKILL');
    const killed = await done;
    expect(killed.signal).toBe('SIGKILL');
    const afterKill = await rowCount(h, 'catalog');
    expect(afterKill).toBeGreaterThan(0);
    expect(afterKill).toBeLessThan(IMAGES);

    const resumed = await runCli(['import', '--owner', 'catalog'], env);
    expect(resumed.stderr).toBe('');
    expect(resumed.code).toBe(0);
    const s = summary(resumed.stdout);
    expect(s.seen).toBe(1000);
    expect(s.imported).toBe(IMAGES - afterKill);
    expect(s.skipped).toBe(`already-imported ${afterKill}, not-an-image 100`);
    expect(await rowCount(h, 'catalog')).toBe(IMAGES);
    // Not a TTY: plain progress lines, no carriage returns.
    expect(resumed.stdout).not.toContain('\r');

    const again = await runCli(['import', '--owner', 'catalog'], env);
    expect(summary(again.stdout)).toMatchObject({ imported: 0, seen: 1000 });
    expect(await rowCount(h, 'catalog')).toBe(IMAGES);
  }, 240_000); // three runs of the command, each starting through tsx

  it('an imported object is served with its real type, though Signet did not write it', async () => {
    const token = await h.token('catalog');
    const listed = await h.gql<Listed>(LIST, {}, { token });
    expect(listed.errors).toBeUndefined();
    expect(listed.data!.images.totalCount).toBe(IMAGES);
    const node = listed.data!.images.edges[0]!.node;
    expect(node.contentType).toBe('image/png');
    const got = await fetch(node.signedUrl.url);
    expect(got.status).toBe(200);
    expect(got.headers.get('content-type')).toBe('image/png');
    expect(Number(got.headers.get('content-length'))).toBe(node.byteSize);
  });
});

describe('signet import: an S3 bucket of 1,000 objects (s3rver behind the verifying front)', () => {
  let h: Harness;
  let env: Record<string, string>;
  const IMAGES = 900;

  beforeAll(async () => {
    h = await startHarness({ driver: 's3', redis: 'memory' });
    env = {
      ...s3Env(h.s3Fixture!),
      DATABASE_URL: h.config.databaseUrl!,
      DATA_DIR: h.config.dataDir,
      // On Node 20 the AWS SDK warns once on stderr that its 2027 releases need Node 22; the
      // runs' stderr is asserted empty, so the notice (not an error of the import) is turned off.
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    };
    // Put by some other tool, with a type that says nothing: the content decides.
    const puts: (() => Promise<unknown>)[] = [];
    for (let i = 0; i < 1000; i++) {
      const name = `catalog/${String(i).padStart(4, '0')}`;
      puts.push(() =>
        i % 10 === 9
          ? h.storage.put(`${name}.csv`, Buffer.from(`sku,price\n${i},9.99\n`), 'binary/octet-stream')
          : h.storage.put(
              `${name}.png`,
              makePng(1 + (i % 40), 2, [i % 256, 0, 0], [0, 0, 255]),
              'binary/octet-stream',
            ),
      );
    }
    // Signet's own keys: an upload and a derived variant are never adopted by an import.
    const upload = 'u/bob/22222222-2222-4222-8222-222222222222.png';
    puts.push(() => h.storage.put(upload, makePng(3, 3, [0, 0, 0], [1, 1, 1]), 'image/png'));
    puts.push(() =>
      h.storage.put(
        `_signet/variants/${upload}/320x320-cover-webp-75`,
        makePng(3, 3, [0, 0, 0], [1, 1, 1]),
        'image/webp',
      ),
    );
    for (let at = 0; at < puts.length; at += 25) await Promise.all(puts.slice(at, at + 25).map((p) => p()));
  }, 120_000);
  afterAll(async () => {
    await h?.close();
  });

  it('a run killed mid-way resumes to the full count; a further run creates nothing', async () => {
    const child = spawnCli(['import', '--owner', 'catalog', '--batch', '20'], env);
    const done = collect(child, 120_000);
    let atKill = 0;
    for (;;) {
      atKill = await rowCount(h, 'catalog');
      if (atKill > 0 || child.exitCode !== null) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    child.kill('SIGKILL');
    const killed = await done;
    expect(killed.signal).toBe('SIGKILL');
    const afterKill = await rowCount(h, 'catalog');
    expect(afterKill).toBeGreaterThan(0);
    expect(afterKill).toBeLessThan(IMAGES);

    const resumed = await runCli(['import', '--owner', 'catalog'], env);
    expect(resumed.stderr).toBe('');
    expect(resumed.code).toBe(0);
    const s = summary(resumed.stdout);
    expect(s.seen).toBe(1002);
    expect(s.imported).toBe(IMAGES - afterKill);
    expect(s.skipped).toBe(`already-imported ${afterKill}, not-an-image 100, signet-object 2`);
    expect(await rowCount(h, 'catalog')).toBe(IMAGES);
    expect(await rowCount(h, 'bob')).toBe(0);

    const again = await runCli(['import', '--owner', 'catalog'], env);
    expect(again.code).toBe(0);
    expect(summary(again.stdout)).toMatchObject({ imported: 0, seen: 1002 });
    expect(await rowCount(h, 'catalog')).toBe(IMAGES);
    // Every listing, head and ranged read went through the front, which verified its signature.
    expect(h.s3Fixture!.signatureFailures).toBe(0);
  }, 240_000);

  it('an imported object is served from the bucket with its real type, through a presigned URL', async () => {
    const token = await h.token('catalog');
    const listed = await h.gql<Listed>(LIST, {}, { token });
    expect(listed.errors).toBeUndefined();
    expect(listed.data!.images.totalCount).toBe(IMAGES);
    const node = listed.data!.images.edges[0]!.node;
    expect(node.contentType).toBe('image/png');
    expect(node.key.startsWith('catalog/')).toBe(true);
    const got = await fetch(node.signedUrl.url);
    expect(got.status).toBe(200);
    expect(Number(got.headers.get('content-length'))).toBe(node.byteSize);
    expect(
      Buffer.from(await got.arrayBuffer())
        .subarray(1, 4)
        .toString(),
    ).toBe('PNG');
  });
});

// Finding (data loss): a bucket imported with objects of its own under `u/` (`u/legacy/…`, put
// there long before Signet) had them skipped as Signet's, and the orphan sweep then deleted every
// one of them: no live row named them. Now only keys of an upload's exact shape are Signet's.
describe("signet import and the orphan sweep: an operator's objects under u/ (the COS fixture)", () => {
  let h: Harness;
  let env: Record<string, string>;
  const LONG_AGO = new Date('2024-03-01T10:00:00Z');
  const LEGACY = ['u/legacy/avatar.png', 'u/2023/banner.png', 'u/alice/photo.png'];
  /** A real Signet orphan: an upload's key (put, never inserted), no row. */
  const ORPHAN = objectKeyFor('alice', randomUUID(), 'png');

  async function putOld(key: string, body: Buffer): Promise<void> {
    await h.storage.put(key, body, 'binary/octet-stream');
    h.fixture!.objects.get(key)!.lastModified = LONG_AGO;
  }

  beforeAll(async () => {
    h = await startHarness({ driver: 'cos', redis: 'memory' });
    env = { ...cosEnv(h.fixture!), DATABASE_URL: h.config.databaseUrl!, DATA_DIR: h.config.dataDir };
    for (const [i, key] of LEGACY.entries()) await putOld(key, makePng(8 + i, 8, [0, 0, 0], [9, 9, 9]));
    await putOld(ORPHAN, makePng(3, 3, [0, 0, 0], [1, 1, 1]));
    for (let i = 0; i < 3; i++) {
      await putOld(`products/p${i}.png`, makePng(5 + i, 5, [0, 0, 0], [200, 0, 0]));
    }
  });
  afterAll(async () => {
    await h?.close();
  });

  it('the import reports them as reserved-prefix with one warning; the sweep keeps them and deletes only the orphan', async () => {
    const run = await runCli(['import', '--owner', 'shop'], env);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(summary(run.stdout)).toEqual({
      imported: 3,
      seen: 3 + LEGACY.length + 1,
      skipped: `reserved-prefix ${LEGACY.length}, signet-object 1`,
    });
    const warnings = run.stdout.split('\n').filter((l) => l.startsWith('warning:'));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain(
      `${LEGACY.length} objects sit under Signet's reserved prefixes (u/, _signet/variants/)`,
    );
    expect(warnings[0]).toContain('"u/2023/banner.png"');
    expect(warnings[0]).toContain('not imported, and left alone');
    expect(warnings[0]).toContain('copy or move them under another prefix');
    // The dry run says the same.
    const dry = await runCli(['import', '--owner', 'shop', '--dry-run'], env);
    expect(dry.stdout).toContain('warning: 3 objects sit under');

    // The sweep, past the grace of every object here (all last modified in 2024).
    const { logger, logs } = captureLogger('info');
    const metrics = createMetrics();
    const sweeper = new OrphanSweeper(
      {
        storage: h.storage,
        images: h.container.imagesRepo,
        guard: h.container.sweepGuard,
        metrics,
        clock: new FakeClock(Date.now()),
        logger,
      },
      { graceSeconds: 3600, pageSize: 2, maxPages: 1 },
    );
    const runs = [];
    for (let n = 0; n < 10; n++) {
      const r = await sweeper.sweep();
      runs.push(r);
      if (r.complete) break;
    }
    expect(runs.at(-1)!.complete).toBe(true);
    expect(runs.reduce((n, r) => n + r.deleted, 0)).toBe(1);
    expect(runs.reduce((n, r) => n + (r.leftAlone ?? 0), 0)).toBe(LEGACY.length);
    expect(h.fixture!.objects.has(ORPHAN)).toBe(false);
    for (const key of LEGACY) {
      expect(h.fixture!.objects.has(key), key).toBe(true);
      expect(await h.storage.head(key), key).not.toBeNull();
    }
    for (let i = 0; i < 3; i++) expect(h.fixture!.objects.has(`products/p${i}.png`)).toBe(true);
    // One info line for the pass (over two runs), no warning per key.
    const leftAloneLines = logs.filter((l) => l.includes('orphan sweep left alone'));
    expect(leftAloneLines).toHaveLength(1);
    expect(JSON.parse(leftAloneLines[0]!)).toMatchObject({ level: 30, keys: LEGACY.length }); // 30: pino's info
    expect(logs.filter((l) => l.includes('orphan sweep deleted'))).toHaveLength(1);

    // A second pass: the same, one line again.
    for (let n = 0; n < 10; n++) if ((await sweeper.sweep()).complete) break;
    for (const key of LEGACY) expect(h.fixture!.objects.has(key), key).toBe(true);
    expect(logs.filter((l) => l.includes('orphan sweep left alone'))).toHaveLength(2);
  });

  it('--visibility public makes the rows public; a bad value is refused before anything is read', async () => {
    for (let i = 0; i < 2; i++) {
      await h.storage.put(`catalog/c${i}.png`, makePng(4 + i, 4, [0, 0, 0], [0, 200, 0]), 'image/png');
    }
    for (const bad of ['secret', 'publik', '']) {
      const refused = await runCli(['import', '--owner', 'catalog', '--visibility', bad], env);
      expect(refused.code, bad).toBe(2);
      expect(refused.stderr, bad).toContain(`--visibility must be private or public, got "${bad}"`);
      expect(await rowCount(h, 'catalog'), bad).toBe(0);
    }

    const run = await runCli(
      ['import', '--owner', 'catalog', '--prefix', 'catalog/', '--visibility', 'public'],
      env,
    );
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(summary(run.stdout)).toEqual({ imported: 2, seen: 2, skipped: 'none' });
    const rows = await sql<{ visibility: string }>`
      select visibility from images where owner_id = 'catalog'`.execute(h.db.kysely);
    expect(rows.rows).toEqual([{ visibility: 'public' }, { visibility: 'public' }]);
    // As the API sees it: another viewer reads them, as any public image.
    const res = await h.gql<{ imagesByIds: ({ key: string; visibility: string } | null)[] }>(
      'query($ids: [ID!]!) { imagesByIds(ids: $ids) { key visibility } }',
      {
        ids: (
          await sql<{ id: string }>`select id from images where owner_id = 'catalog'`.execute(h.db.kysely)
        ).rows.map((r) => r.id),
      },
      { token: await h.token('someone-else') },
    );
    expect(res.errors).toBeUndefined();
    expect(res.data!.imagesByIds.map((n) => n?.visibility)).toEqual(['PUBLIC', 'PUBLIC']);

    // The default stays private.
    await h.storage.put('private/x.png', makePng(4, 4, [0, 0, 0], [0, 0, 200]), 'image/png');
    expect((await runCli(['import', '--owner', 'quiet', '--prefix', 'private/'], env)).code).toBe(0);
    const quiet = await sql<{ visibility: string }>`
      select visibility from images where owner_id = 'quiet'`.execute(h.db.kysely);
    expect(quiet.rows).toEqual([{ visibility: 'private' }]);
  });

  it('a key whose row was deleted is reported as deleted-row and its row stays deleted', async () => {
    await h.storage.put('gone/a.png', makePng(6, 6, [0, 0, 0], [1, 1, 1]), 'image/png');
    await h.storage.put('gone/b.png', makePng(7, 6, [0, 0, 0], [1, 1, 1]), 'image/png');
    expect(
      summary((await runCli(['import', '--owner', 'gone', '--prefix', 'gone/'], env)).stdout),
    ).toMatchObject({
      imported: 2,
    });
    // Deleted (the object is put back afterwards, as a replication or a copy could).
    await sql`update images set deleted_at = now() where object_key = 'gone/a.png'`.execute(h.db.kysely);

    const again = await runCli(['import', '--owner', 'gone', '--prefix', 'gone/'], env);
    expect(again.code).toBe(0);
    expect(summary(again.stdout)).toEqual({
      imported: 0,
      seen: 2,
      skipped: 'already-imported 1, deleted-row 1',
    });
    const rows = await sql<{ object_key: string; deleted: boolean }>`
      select object_key, deleted_at is not null as deleted from images where owner_id = 'gone' order by object_key`.execute(
      h.db.kysely,
    );
    expect(rows.rows).toEqual([
      { object_key: 'gone/a.png', deleted: true },
      { object_key: 'gone/b.png', deleted: false },
    ]);
  });
});
