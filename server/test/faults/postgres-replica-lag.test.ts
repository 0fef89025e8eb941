import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ReadReplica, type ReadReplicaOptions } from '../../src/db/read-replica.js';
import type { Harness } from '../support/harness.js';
import { seed } from '../support/seed.js';
import { sleep, until } from './helpers/load.js';
import { type OwnedPostgres, sqlOn } from './helpers/owned-postgres.js';
import { startReplicaPair } from './helpers/replica-pair.js';

const MAX_LAG_MS = 5000;

const status = async (url: string, init: RequestInit = {}) => {
  const res = await fetch(url, { redirect: 'manual', ...init });
  await res.arrayBuffer();
  return res.status;
};

const quiet = { info: () => {}, warn: () => {} };

/** A logger that keeps the messages it is given, in order. */
function recording() {
  const lines: string[] = [];
  const keep = (_fields?: unknown, msg?: unknown) => void lines.push(String(msg));
  return { lines, logger: { info: keep, warn: keep } };
}

// What the replica does not have yet, on the paths that read it without a viewer (docs/operations.md,
// "PostgreSQL read replica"): the lag poller at start, the refresh sweep's row lookup, and the
// /proxy row check. A private primary and a streaming replica (pg_basebackup -R) whose replay the
// test pauses; the gateway runs in process (the container, as main.ts builds it) with
// DATABASE_URL on the primary and DATABASE_READ_URL on the replica.
describe('fault: a read replica behind the primary (replay paused)', () => {
  let pair: Awaited<ReturnType<typeof startReplicaPair>>;
  let primary: OwnedPostgres;
  let replica: OwnedPostgres;
  let h: Harness;

  /** Replay on the replica stopped while `run` runs (the replica keeps answering, from the past). */
  async function replayPaused<T>(run: () => Promise<T>): Promise<T> {
    await sqlOn(replica.url, 'select pg_wal_replay_pause()');
    try {
      return await run();
    } finally {
      await sqlOn(replica.url, 'select pg_wal_replay_resume()');
    }
  }

  /** A poller of its own on the replica (the container's keeps running beside it). */
  const pollerOn = (logger: ReadReplicaOptions['logger']) =>
    new ReadReplica({ url: replica.url, primary: h.db.kysely, maxLagMs: MAX_LAG_MS, logger });

  const caughtUp = () => pair.caughtUp();
  const replicaInUse = () => pair.inUse();

  const onReplica = async (id: string) =>
    (await sqlOn(replica.url, 'select visibility from images where id = $1', [id]))[0]?.visibility as
      | string
      | undefined;

  beforeAll(async () => {
    pair = await startReplicaPair(MAX_LAG_MS);
    ({ primary, replica, h } = pair);
    await caughtUp();
    await replicaInUse();
  }, 90_000);
  afterAll(async () => {
    await pair?.stop();
  });

  it('does not use a replica far behind at its first poll, and uses it once it has caught up', async () => {
    // Caught up with an idle primary: in use at the first poll, as before.
    await caughtUp();
    const fresh = pollerOn(quiet);
    try {
      await fresh.start();
      expect(fresh.state.usable).toBe(true);
      expect(fresh.state.lagMs).toBeLessThanOrEqual(MAX_LAG_MS);
    } finally {
      await fresh.close();
    }

    const log = recording();
    const behind = pollerOn(log.logger);
    const states: { usable: boolean; lagMs: number | undefined }[] = [];
    try {
      await replayPaused(async () => {
        await sqlOn(primary.url, 'create table if not exists lag_probe (at timestamptz)');
        await sqlOn(primary.url, 'insert into lag_probe values (now())');
        // Further behind than the bound before the poller ever sees it.
        await sleep(MAX_LAG_MS + 1500);
        await behind.start();
        const first = behind.state;
        console.log(`[faults] a replica ${MAX_LAG_MS + 1500} ms behind at start: ${JSON.stringify(first)}`);
        expect(first.usable).toBe(false);
        expect(first.reason).toMatch(/^lag unknown: has not replayed the primary's position of \d+ ms ago$/);
        // Not in use at any poll while it stays behind (it was, for about the bound, when an
        // unreplayed history counted as one poll behind).
        for (let i = 0; i < 6; i++) {
          await sleep(behind.pollMs);
          states.push(behind.state);
        }
        expect(states.filter((s) => s.usable)).toEqual([]);
        // Said once, when the positions it had not replayed were older than the bound.
        expect(log.lines).toEqual(['read replica skipped: reads go to the primary']);
      });
      await until('the replica in use once caught up', () => behind.state.usable, 10_000);
      expect(behind.state.lagMs).toBeLessThanOrEqual(MAX_LAG_MS);
      expect(log.lines).toEqual(['read replica skipped: reads go to the primary', 'read replica in use']);
    } finally {
      await behind.close();
    }
  }, 60_000);

  it('a replica a moment behind at its first poll (the primary wrote just before) is not logged as skipped', async () => {
    await caughtUp();
    const log = recording();
    const poller = pollerOn(log.logger);
    try {
      await replayPaused(async () => {
        await sqlOn(primary.url, 'create table if not exists lag_probe (at timestamptz)');
        await sqlOn(primary.url, 'insert into lag_probe values (now())');
        await poller.start();
        // Not usable yet (the write is not replayed), but within the bound: no verdict logged.
        expect(poller.state.usable).toBe(false);
        expect(poller.state.reason).toMatch(/^lag unknown: /);
      });
      await until('the replica in use once it replays the write', () => poller.state.usable, 10_000);
      // CI once failed a fault test on the "skipped" line this start used to log.
      expect(log.lines).toEqual(['read replica in use']);
    } finally {
      await poller.close();
    }
  }, 30_000);

  it('a sweep refreshes a due, live image whose row the replica has not replayed, and keeps it scheduled', async () => {
    await caughtUp();
    await replicaInUse();
    await replayPaused(async () => {
      const [id] = await seed(h, 'alice', 1);
      expect(await onReplica(id!)).toBeUndefined();
      expect(h.container.readReplica!.state.usable).toBe(true);
      // Its URL in the cache and due now (an image whose grid step ends right after its upload),
      // and read lately: the sweep must sign it again.
      const now = Date.now();
      const sec = Math.floor(now / 1000);
      await h.store.write(
        [{ id: id!, sig: { start: sec - 60, end: sec + 10, sig: 'x' }, ttlMs: 5000, refreshAt: now - 1 }],
        'miss',
      );
      await h.store.recordAccess(new Map([[id!, { count: 1, lastAt: now }]]));

      const result = await h.container.refresher.sweep();
      expect(result).toMatchObject({ refreshed: 1, failedBatches: 0 });
      const [after] = await h.store.status([id!]);
      expect(after?.refreshCount).toBe(1);
      expect(after?.sig?.sig).not.toBe('x');
      // Still scheduled: due again before its new URL ends (not dropped as deleted).
      expect((await h.store.scheduleInfo(now + 7 * 24 * 3600 * 1000)).backlog).toBe(1);
      expect(h.container.readReplica!.state.usable).toBe(true);
      expect(await onReplica(id!)).toBeUndefined();
    });
  }, 60_000);

  it('/proxy sees a revocation at once, and a fresh upload, while the replica has neither', async () => {
    await caughtUp();
    await replicaInUse();
    const [id] = await seed(h, 'alice', 1);
    const alice = await h.token('alice');
    const set = (visibility: 'PUBLIC' | 'PRIVATE') =>
      h.gql(
        'mutation ($id: ID!, $v: ImageVisibility!) { setImageVisibility(id: $id, visibility: $v) { id } }',
        { id, v: visibility },
        { token: alice },
      );
    expect((await set('PUBLIC')).errors).toBeUndefined();
    await caughtUp();
    // Bob reads alice's public image: his link is public-scoped, good while it stays public.
    const bobs = await h.gql<{ image: { proxyUrl: string } | null }>(
      'query ($id: ID!) { image(id: $id) { proxyUrl } }',
      { id },
      { token: await h.token('bob') },
    );
    const link = bobs.data!.image!.proxyUrl;
    expect(await status(link)).toBe(302);
    expect(h.container.recentRows.recent(id!)?.visibility).toBe('public');

    await replayPaused(async () => {
      expect((await set('PRIVATE')).errors).toBeUndefined();
      // The replica, still in use, says public.
      expect(h.container.readReplica!.state.usable).toBe(true);
      expect(await onReplica(id!)).toBe('public');
      expect(await status(link)).toBe(404);
      // And stays revoked: what is remembered now is the primary's row.
      expect(h.container.recentRows.recent(id!)?.visibility).toBe('private');
      expect((await h.container.recentRows.find(id!))?.visibility).toBe('private');
      expect(await status(link)).toBe(404);

      // A new upload, which the replica has not replayed: its link works at once.
      const [fresh] = await seed(h, 'alice', 1);
      expect(await onReplica(fresh!)).toBeUndefined();
      const own = await h.gql<{ image: { proxyUrl: string } | null }>(
        'query ($id: ID!) { image(id: $id) { proxyUrl } }',
        { id: fresh },
        { token: alice },
      );
      expect(await status(own.data!.image!.proxyUrl)).toBe(302);
      expect(h.container.recentRows.recent(fresh!)?.id).toBe(fresh);
      expect(h.container.readReplica!.state.usable).toBe(true);
    });
  }, 60_000);
});
