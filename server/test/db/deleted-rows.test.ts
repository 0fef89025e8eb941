import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { sql } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeClock } from '../../src/clock.js';
import { openDatabase } from '../../src/db/connect.js';
import { createImagesRepo } from '../../src/db/images-repo.js';
import type { Db } from '../../src/db/types.js';
import { DeletedRowPurge } from '../../src/images/deleted-row-purge.js';
import { createMetrics } from '../../src/metrics.js';
import { createTestDatabase } from '../support/database.js';
import { captureLogger } from '../support/logs.js';

// What a delete leaves in the database, and for how long (docs/architecture.md, "Deleting an
// image"): the delete clears what describes the photo on the row it keeps; the purge removes the
// rows deleted longer ago than DELETED_ROW_RETENTION_DAYS, in bounded batches, on a partial index
// of the deleted rows. On both databases Signet runs on.

const DAY = 86_400_000;

describe.each(['postgres', 'pglite'] as const)('deleted rows (%s)', (kind) => {
  let dir: string;
  let pgdb: Awaited<ReturnType<typeof createTestDatabase>> | undefined;
  let db: Db;
  let repo: ReturnType<typeof createImagesRepo>;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'signet-deleted-rows-'));
    if (kind === 'postgres') pgdb = await createTestDatabase();
    db = await openDatabase({ databaseUrl: pgdb?.url, dataDir: dir });
    repo = createImagesRepo(db);
  }, 60_000);
  afterAll(async () => {
    await db?.close();
    await pgdb?.drop();
    await rm(dir, { recursive: true, force: true });
  });

  const add = async (owner: string, over: { placeholder?: string | null } = {}) => {
    const id = randomUUID();
    await repo.insert({
      id,
      ownerId: owner,
      objectKey: `u/${owner}/${id}.png`,
      contentType: 'image/png',
      byteSize: 1234,
      width: 640,
      height: 480,
      etag: '"abc"',
      placeholder: over.placeholder === undefined ? 'YJqGPQw7sFlslqhFafSE+Q6oJ1h2iHB2Rw' : over.placeholder,
      animated: false,
      createdAt: new Date(),
    });
    return id;
  };
  const rawRow = async (id: string) =>
    (
      await sql<Record<string, unknown>>`
        select owner_id, object_key, placeholder, width, height, etag, deleted_at from images where id = ${id}`.execute(
        db.kysely,
      )
    ).rows[0];

  it('a delete clears the placeholder, dimensions and ETag, and keeps what the sweep and import need', async () => {
    const id = await add('carol');
    const deleted = await repo.softDelete('carol', id, new Date());
    expect(deleted).not.toBeNull();
    const row = await rawRow(id);
    expect(row).toMatchObject({
      owner_id: 'carol',
      object_key: `u/carol/${id}.png`,
      placeholder: null,
      width: null,
      height: null,
      etag: null,
    });
    expect(row!.deleted_at).toBeInstanceOf(Date);
    // The orphan sweep and `signet import` still tell a deleted row's key from an unknown one.
    expect(await repo.keysWithRows([`u/carol/${id}.png`])).toEqual(
      new Map([[`u/carol/${id}.png`, 'deleted']]),
    );
    expect(await repo.keysWithLiveRows([`u/carol/${id}.png`])).toEqual(new Set());
  });

  it('a placeholder computed while the image was being deleted does not come back on its row', async () => {
    const id = await add('carol', { placeholder: null });
    await repo.softDelete('carol', id, new Date());
    expect(await repo.setPlaceholder(id, 'YJqGPQw7sFlslqhFafSE+Q6oJ1h2iHB2Rw')).toBe(false);
    expect((await rawRow(id))!.placeholder).toBeNull();
  });

  it('the purge removes the rows deleted longer ago than the retention, in bounded runs, and counts them', async () => {
    const clock = new FakeClock(Date.now());
    const old: string[] = [];
    for (let i = 0; i < 5; i++) {
      const id = await add('dave');
      await repo.softDelete('dave', id, new Date(clock.now() - 31 * DAY - i * 1000));
      old.push(id);
    }
    const recent = await add('dave');
    await repo.softDelete('dave', recent, new Date(clock.now() - 29 * DAY));
    const live = await add('dave');

    const metrics = createMetrics({ defaultMetrics: false });
    const { logger } = captureLogger();
    const purge = new DeletedRowPurge(
      { images: repo, metrics, clock, logger },
      { retentionDays: 30, batchSize: 2, maxBatches: 2 },
    );
    // Two batches of two: four of the five, the longest deleted first; the next run goes on.
    expect(await purge.run()).toEqual({ purged: 4, complete: false });
    expect(await purge.run()).toEqual({ purged: 1, complete: true });
    for (const id of old) expect(await rawRow(id), id).toBeUndefined();
    expect(await rawRow(recent)).toBeDefined();
    expect(await rawRow(live)).toMatchObject({ deleted_at: null, width: 640 });
    expect((await metrics.deletedRowsPurged.get()).values[0]?.value).toBe(5);

    // Retention 0: every deleted row at the next run.
    const now = new DeletedRowPurge({ images: repo, metrics, clock, logger }, { retentionDays: 0 });
    expect((await now.run()).purged).toBeGreaterThanOrEqual(1);
    expect(await rawRow(recent)).toBeUndefined();
    expect(await rawRow(live)).toBeDefined();
    expect(await repo.findLive([live])).toHaveLength(1);
  });

  it("its index and the animation backfill's, built at once at a start, are built one after the other", async () => {
    if (kind === 'pglite') return; // built in place at start, before anything runs
    await sql`drop index if exists images_deleted`.execute(db.kysely);
    await sql`drop index if exists images_animation_unknown`.execute(db.kysely);
    // A transaction holding a snapshot: a concurrent build waits until it ends. Two builds waiting
    // together on one table also wait for each other's transaction: a deadlock PostgreSQL ends by
    // failing one of them (the purge's, at a worker's start, before the fix).
    const reader = new pg.Client({ connectionString: pgdb!.url });
    await reader.connect();
    try {
      await reader.query('begin isolation level repeatable read');
      await reader.query('select count(*) from images');
      const both = Promise.all([repo.prepareAnimationWorkList(), repo.prepareDeletedWorkList()]);
      await new Promise((r) => setTimeout(r, 1000));
      // Another node meanwhile builds nothing, whichever index it wants, and does not wait.
      const otherNode = await openDatabase({ databaseUrl: pgdb!.url, dataDir: dir });
      try {
        expect(await createImagesRepo(otherNode).prepareDeletedWorkList()).toBe('building elsewhere');
      } finally {
        await otherNode.close();
      }
      await reader.query('commit');
      expect(await both).toEqual(['ready', 'ready']);
    } finally {
      await reader.end();
    }
  }, 60_000);

  it('runs on a partial index of the deleted rows, built by its first run', async () => {
    expect(await repo.prepareDeletedWorkList()).toBe('ready');
    const r = await sql<{ indexdef: string }>`
      select indexdef from pg_indexes where indexname = 'images_deleted'`.execute(db.kysely);
    expect(r.rows[0]?.indexdef).toMatch(/WHERE \(deleted_at IS NOT NULL\)/);
    if (kind === 'pglite') return;
    const c = new pg.Client({ connectionString: pgdb!.url });
    await c.connect();
    try {
      await c.query('set enable_seqscan = off');
      const plan = await c.query(`explain delete from images where id in (
        select id from images where deleted_at is not null and deleted_at < now()
        order by deleted_at, id limit 500)`);
      expect(plan.rows.map((x) => x['QUERY PLAN']).join('\n')).toContain('images_deleted');
    } finally {
      await c.end();
    }
  });
});
