import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RedisEventBus } from '../../src/events/redis-bus.js';
import { makePng } from '../../src/seed.js';
import { OwnedPostgres, sqlOn } from '../faults/helpers/owned-postgres.js';
import { type Harness, startHarness } from '../support/harness.js';
import { waitFor } from '../support/proxy.js';
import { commandStats, OwnedRedis } from '../support/redis-server.js';
import { PAGE_QUERY, type PageData, seed } from '../support/seed.js';
import { clearOfStepTurns } from '../support/step-turns.js';
import { uploadFile } from '../support/upload.js';

// A poll every 500 ms; a pin lasts the bound plus two polls (3 s).
const MAX_LAG_MS = 2000;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Page queries as the replica's log shows them (log_statement=all). */
const PAGE_SELECT =
  /(?:statement|execute [^:]*): select .* from "images" where "owner_id" = \$1 and "deleted_at" is null (?:and \(created_at, id\) < |order by)/g;
const pageStatements = async (pg: OwnedPostgres) => (await pg.log()).match(PAGE_SELECT)?.length ?? 0;

// Two gateways (SIGNET_ROLE=api) of one deployment: one PostgreSQL primary with a real streaming
// replica (DATABASE_READ_URL on both), and one Redis this file owns (INFO commandstats counts
// only their commands). Write pins travel over the event bus: a viewer who writes through one
// node reads from the primary on the other, and choosing where a page reads costs no Redis
// command (docs/operations.md, "PostgreSQL read replica"; docs/architecture.md, "The hot path").
describe('write pins between gateways, with a read replica', () => {
  let primary: OwnedPostgres;
  let replica: OwnedPostgres;
  let redis: OwnedRedis;
  let admin: Redis;
  let nodeA: Harness;
  let nodeB: Harness;

  beforeAll(async () => {
    primary = await OwnedPostgres.start();
    replica = await primary.replica(['log_statement=all']);
    redis = await OwnedRedis.start();
    admin = redis.client();
    const env = {
      SIGNET_ROLE: 'api',
      DATABASE_URL: primary.url,
      DATABASE_READ_URL: replica.url,
      DATABASE_READ_MAX_LAG_MS: String(MAX_LAG_MS),
    };
    nodeA = await startHarness({ driver: 'cos', redis: redis.url, env });
    nodeB = await startHarness({ nodeOf: nodeA, redis: redis.url, env });
    await Promise.all([nodeA, nodeB].map((h) => (h.container.events as RedisEventBus).whenReady()));
    await waitFor(
      () => nodeA.container.readReplica!.state.usable && nodeB.container.readReplica!.state.usable,
      10_000,
    );
  }, 90_000);
  afterAll(async () => {
    await nodeB?.close();
    await nodeA?.close();
    admin?.disconnect();
    await redis?.kill();
    await replica?.destroy();
    await primary?.destroy();
  });

  const pinMs = () => MAX_LAG_MS + 2 * nodeB.container.readReplica!.pollMs;

  /** Until the replica has replayed everything the primary has written so far. */
  async function caughtUp(): Promise<void> {
    const [{ lsn }] = await sqlOn(primary.url, 'select pg_current_wal_lsn()::text as lsn');
    await waitFor(
      async () =>
        (await sqlOn(replica.url, 'select pg_last_wal_replay_lsn() >= $1::pg_lsn as ok', [lsn]))[0].ok,
      10_000,
    );
  }

  it("an upload through node A is on the uploader's next page through node B, read from the primary while the replica lags", async () => {
    // Replay stopped: the replica stays in use (under the bound for a while) without what is
    // written from now on.
    await sqlOn(replica.url, 'select pg_wal_replay_pause()');
    try {
      const up = await uploadFile(nodeA, makePng(8, 8, [200, 10, 10], [10, 10, 200]), {
        name: 'a.png',
        type: 'image/png',
      });
      expect(up.errors).toBeUndefined();
      const uploaded = up.data!.uploadImage.id;
      await admin.config('RESETSTAT');
      const page = await nodeB.gql<PageData>(PAGE_QUERY, { first: 5 });
      expect(page.errors).toBeUndefined();
      // The replica does not have the row and is still in use on node B (for everyone else): the
      // listing came from the primary because node B heard alice's pin.
      expect(await sqlOn(replica.url, 'select id from images where id = $1', [uploaded])).toEqual([]);
      expect(nodeB.container.readReplica!.state.usable).toBe(true);
      expect(page.data!.images.edges.map((e) => e.node.id)).toEqual([uploaded]);
      // Learning it cost node B no Redis command: no EXISTS, no pin key anywhere.
      const stats = await commandStats(admin);
      expect(stats['exists']).toBeUndefined();
      expect(await admin.keys('*pin:*')).toEqual([]);
    } finally {
      await sqlOn(replica.url, 'select pg_wal_replay_resume()');
    }
  });

  it('a warm page with the read replica in use is one Redis command: one MGET', async () => {
    const ids = await seed(nodeA, 'bob', 10);
    await caughtUp();
    // bob's seeding pinned him on both nodes: let it end, so that the page reads the replica.
    await sleep(pinMs() + 100);
    await waitFor(() => nodeB.container.readReplica!.state.usable, 10_000);
    await clearOfStepTurns(nodeB.config, ids);
    const token = await nodeB.token('bob');
    const warming = await nodeB.gql<PageData>(PAGE_QUERY, { first: 10 }, { token });
    expect(warming.errors).toBeUndefined();
    await sleep(300); // the warming page's write-back leaves after its answer

    const onReplica = await pageStatements(replica);
    await admin.config('RESETSTAT');
    for (let i = 0; i < 10; i++) {
      const page = await nodeB.gql<PageData>(PAGE_QUERY, { first: 10 }, { token });
      expect(page.errors).toBeUndefined();
      expect(page.data!.images.edges).toHaveLength(10);
      expect(page.data!.images.edges.every((e) => e.node.signedUrl.cached)).toBe(true);
    }
    const stats = await commandStats(admin);
    // INFO itself and CONFIG RESETSTAT are ours, not the gateways'.
    delete stats['info'];
    delete stats['config|resetstat'];
    expect(stats).toEqual({ mget: 10 });
    // And the pages ran on the replica.
    await waitFor(async () => (await pageStatements(replica)) - onReplica >= 10, 5000);
  });

  it('a page with Redis frozen waits for no pin lookup', async () => {
    const token = await nodeB.token('bob');
    const pid = Number(/^process_id:(\d+)/m.exec(await admin.info('server'))![1]);
    // Stopped, not gone: connections stay open and commands go unanswered (each waits for its
    // timeout). The pages sign their URLs themselves; none waits on Redis for a pin.
    process.kill(pid, 'SIGSTOP');
    try {
      const ms: number[] = [];
      for (let i = 0; i < 13; i++) {
        const started = performance.now();
        const page = await nodeB.gql<PageData>(PAGE_QUERY, { first: 10 }, { token });
        ms.push(performance.now() - started);
        expect(page.errors).toBeUndefined();
        expect(page.data!.images.edges).toHaveLength(10);
      }
      console.log(`[pins] pages with Redis frozen (ms): ${ms.map(Math.round).join(' ')}`);
      // The first pages may pay the cache read's timeout until the node stops asking.
      const settled = ms.slice(3).sort((x, y) => x - y);
      expect(settled[Math.floor(settled.length / 2)], ms.map(Math.round).join(' ')).toBeLessThan(100);
    } finally {
      process.kill(pid, 'SIGCONT');
    }
  });
});
