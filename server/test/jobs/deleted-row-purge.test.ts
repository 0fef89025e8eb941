import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import { afterEach, describe, expect, it } from 'vitest';
import { createImagesRepo } from '../../src/db/images-repo.js';
import { testRedisUrl } from '../support/env.js';
import { type Harness, startHarness } from '../support/harness.js';

// The deleted-row purge is one of the recurring jobs of a worker (SIGNET_ROLE all or worker), run
// by whichever engine the node has: in-process timers without Redis, a BullMQ job scheduler with
// it. Both run it once at start: with DELETED_ROW_RETENTION_DAYS=0 a row deleted before the start
// is gone soon after, and a live row is not; an api node never runs it.

const opened: Harness[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((h) => h.close()));
});

async function deletedAndLiveRows(h: Harness) {
  const repo = createImagesRepo(h.db);
  const ids = { deleted: randomUUID(), live: randomUUID() };
  for (const id of Object.values(ids)) {
    await repo.insert({
      id,
      ownerId: 'gina',
      objectKey: `u/gina/${id}.png`,
      contentType: 'image/png',
      byteSize: 10,
      width: 1,
      height: 1,
      etag: null,
      animated: false,
      createdAt: new Date(),
    });
  }
  expect(await repo.softDelete('gina', ids.deleted, new Date(Date.now() - 1000))).not.toBeNull();
  return ids;
}

const rowThere = async (h: Harness, id: string) =>
  (await sql`select 1 from images where id = ${id}`.execute(h.db.kysely)).rows.length > 0;

async function gone(h: Harness, id: string, ms = 20_000) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (!(await rowThere(h, id))) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}

describe('the deleted-row purge, as a recurring job', () => {
  it.each([
    ['timers (no Redis)', 'memory'],
    ['BullMQ (Redis)', testRedisUrl()],
  ])('%s: runs at the start of a worker and removes the rows past the retention', async (_name, redis) => {
    const h = await startHarness({ driver: 'local', redis, env: { DELETED_ROW_RETENTION_DAYS: '0' } });
    opened.push(h);
    const ids = await deletedAndLiveRows(h);
    const before = (await h.container.metrics.deletedRowsPurged.get()).values[0]?.value ?? 0;
    await h.container.start();
    expect(await gone(h, ids.deleted), h.logs.filter((l) => /purge|index|job/.test(l)).join('\n')).toBe(true);
    expect(await rowThere(h, ids.live)).toBe(true);
    expect((await h.container.metrics.deletedRowsPurged.get()).values[0]?.value).toBe(before + 1);
  });

  it('an api node does not run it', async () => {
    const h = await startHarness({
      driver: 'local',
      redis: 'memory',
      env: { DELETED_ROW_RETENTION_DAYS: '0', SIGNET_ROLE: 'api' },
    });
    opened.push(h);
    const ids = await deletedAndLiveRows(h);
    await h.container.start();
    await new Promise((r) => setTimeout(r, 1500));
    expect(await rowThere(h, ids.deleted)).toBe(true);
  });
});
