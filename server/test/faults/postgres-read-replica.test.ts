import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makePng } from '../../src/seed.js';
import { OwnedRedis } from '../support/redis-server.js';
import { Client } from './helpers/client.js';
import { report, SteadyLoad, sleep, until } from './helpers/load.js';
import { OwnedPostgres, sqlOn } from './helpers/owned-postgres.js';
import { Stack } from './helpers/stack.js';

const RATE = 15; // per second, each of: page query, /readyz
const MAX_LAG_MS = 5000;

/** Page queries as the replica's or the primary's log shows them (log_statement=all). */
const PAGE_SELECT =
  /(?:statement|execute [^:]*): select .* from "images" where "owner_id" = \$1 and "deleted_at" is null (?:and \(created_at, id\) < |order by)/g;
const count = (log: string) => log.match(PAGE_SELECT)?.length ?? 0;

async function readyz(url: string): Promise<{ status: number; database: string; overall: string }> {
  const res = await fetch(`${url}/readyz`);
  const body = (await res.json()) as { status: string; checks: { database: string } };
  return { status: res.status, database: body.checks.database, overall: body.status };
}

/** The read replica's gauges as /metrics shows them. */
async function replicaGauges(url: string): Promise<{ lagSeconds: number; inUse: number }> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const value = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1]);
  return { lagSeconds: value('signet_db_replica_lag_seconds'), inUse: value('signet_db_replica_in_use') };
}

// A private PostgreSQL primary and a streaming replica made with pg_basebackup -R, both logging
// every statement; the gateway has DATABASE_URL (the primary) and DATABASE_READ_URL (the replica).
describe('fault: PostgreSQL read replica (DATABASE_READ_URL)', () => {
  let primary: OwnedPostgres;
  let replica: OwnedPostgres;
  let redis: OwnedRedis;
  let stack: Stack;
  let client: Client;
  let running: SteadyLoad | undefined;

  beforeAll(async () => {
    primary = await OwnedPostgres.start(['log_statement=all']);
    replica = await primary.replica(['log_statement=all']);
    redis = await OwnedRedis.start();
    stack = await Stack.start({
      databaseUrl: primary.url,
      redisUrl: redis.url,
      env: { DATABASE_READ_URL: replica.url, DATABASE_READ_MAX_LAG_MS: String(MAX_LAG_MS) },
    });
    client = new Client(stack);
    await until('the replica in use', async () => (await readyz(stack.url)).database === 'ok', 10_000);
    await client.discover();
  }, 90_000);
  afterAll(async () => {
    await running?.stop();
    await stack?.close();
    await redis?.kill();
    await replica?.destroy();
    await primary?.destroy();
  });

  it('runs page queries on the replica, not on the primary', async () => {
    const [onReplica, onPrimary] = [count(await replica.log()), count(await primary.log())];
    for (let i = 0; i < 20; i++) expect((await client.page()).ok).toBe(true);
    const replicaPages = count(await replica.log()) - onReplica;
    const primaryPages = count(await primary.log()) - onPrimary;
    console.log(
      `[faults] 20 page queries: ${replicaPages} page statements on the replica, ${primaryPages} on the primary`,
    );
    expect(replicaPages).toBeGreaterThanOrEqual(20);
    expect(primaryPages).toBe(0);
  });

  it("lists an upload in the uploader's very next query, and a delete, while the replica lags", async () => {
    // Replay stopped: the replica keeps serving (lag under the bound for a few seconds) but does
    // not have what is written from now on.
    await sqlOn(replica.url, 'select pg_wal_replay_pause()');
    try {
      const uploaded = await upload(stack, makePng(8, 8, [200, 10, 10], [10, 10, 200]));
      const first = await firstPageIds(stack);
      // The replica is still in use (for everyone else) and does not have the row: the listing
      // came from the primary because alice had just written.
      expect((await readyz(stack.url)).database).toBe('ok');
      expect(await sqlOn(replica.url, 'select id from images where id = $1', [uploaded])).toEqual([]);
      expect(first[0]).toBe(uploaded);

      const del = await gql(stack, 'mutation ($id: ID!) { deleteImage(id: $id) }', { id: uploaded });
      expect(del).toEqual({ deleteImage: true });
      expect(await firstPageIds(stack)).not.toContain(uploaded);
      expect((await readyz(stack.url)).database).toBe('ok');
    } finally {
      await sqlOn(replica.url, 'select pg_wal_replay_resume()');
    }
  });

  it('skips a replica that falls behind by more than the bound, and uses it again once caught up', async () => {
    await sqlOn(replica.url, 'select pg_wal_replay_pause()');
    let behindAt = 0;
    let behindLag = 0;
    try {
      // Writes on the primary that the paused replica does not replay.
      await sqlOn(primary.url, 'create table if not exists lag_probe (at timestamptz)');
      const started = Date.now();
      await until(
        'the replica skipped for lag',
        async () => {
          await sqlOn(primary.url, 'insert into lag_probe values (now())');
          return (await readyz(stack.url)).database === 'degraded';
        },
        MAX_LAG_MS * 3,
      );
      behindAt = Date.now() - started;
      // The gauges say so too: the lag measured past the bound, reads on the primary.
      const behind = await replicaGauges(stack.url);
      expect(behind.lagSeconds).toBeGreaterThan(MAX_LAG_MS / 1000);
      expect(behind.inUse).toBe(0);
      behindLag = behind.lagSeconds;
      const onReplica = count(await replica.log());
      for (let i = 0; i < 5; i++) expect((await client.page()).ok).toBe(true);
      expect(count(await replica.log())).toBe(onReplica);
    } finally {
      await sqlOn(replica.url, 'select pg_wal_replay_resume()');
    }
    await until('the replica in use again', async () => (await readyz(stack.url)).database === 'ok', 10_000);
    const caughtUp = await replicaGauges(stack.url);
    expect(caughtUp.inUse).toBe(1);
    expect(caughtUp.lagSeconds).toBeLessThanOrEqual(MAX_LAG_MS / 1000);
    console.log(
      `[faults] replica paused: skipped ${behindAt} ms later (bound ${MAX_LAG_MS} ms); signet_db_replica_lag_seconds ${behindLag} then ${caughtUp.lagSeconds} once caught up`,
    );
    expect(behindAt).toBeGreaterThanOrEqual(MAX_LAG_MS - 1000);
  });

  it('answers every query while the replica is stopped, says degraded, and uses it again once started', async () => {
    const load = new SteadyLoad(RATE, { page: client.page, readyz: client.readyz });
    running = load;
    load.start('before');
    await sleep(2000);

    load.phase('down');
    const stoppedAt = Date.now();
    await replica.stop('immediate');
    await until(
      '/readyz to report the database degraded',
      () => load.select({ kind: 'readyz', phase: 'down' }).some((s) => /db=degraded/.test(s.detail ?? '')),
      10_000,
    );
    const degradedMs = Date.now() - stoppedAt;
    await sleep(4000);

    load.phase('starting');
    const startingAt = Date.now();
    const onReplica = count(await replica.log());
    await replica.start();
    load.phase('recovery');
    const startedAt = Date.now();
    await until(
      'page queries on the replica again',
      async () => count(await replica.log()) - onReplica >= 5,
      15_000,
    );
    const backMs = Date.now() - startedAt;
    load.phase('after');
    await sleep(2000);
    await load.stop();

    const phases = ['before', 'down', 'starting', 'recovery', 'after'];
    report(
      `PostgreSQL read replica stopped (-m immediate) and started (degraded after ${degradedMs} ms, replica used again ${backMs} ms after start)`,
      load,
      ['page', 'readyz'],
      phases,
    );
    // Not one query failed, /readyz stayed 200 throughout (the primary serves every read).
    expect(load.failures()).toEqual([]);
    // Every probe answered between "degraded was first seen" and the start said degraded.
    const settled = load
      .select({ kind: 'readyz', phase: 'down' })
      .filter((s) => s.startedAt > stoppedAt + degradedMs && s.startedAt + s.ms < startingAt);
    expect(settled.filter((s) => !/db=degraded/.test(s.detail ?? ''))).toEqual([]);
    expect(load.select({ kind: 'page', phase: 'down' }).length).toBeGreaterThan(RATE * 3);
    expect(load.summary({ kind: 'page', phase: 'down' }).max).toBeLessThan(3000);
    expect((await readyz(stack.url)).database).toBe('ok');
    expect(stack.alive()).toBe(true);
    expect(stack.errorLogs()).toEqual([]);
  });
});

async function gql(stack: Stack, query: string, variables: Record<string, unknown>): Promise<unknown> {
  const res = await fetch(`${stack.url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${stack.token}` },
    body: JSON.stringify({ query, variables }),
  });
  const body = (await res.json()) as { data?: unknown; errors?: unknown[] };
  if (body.errors) throw new Error(JSON.stringify(body.errors));
  return body.data;
}

async function firstPageIds(stack: Stack): Promise<string[]> {
  const data = (await gql(stack, 'query { images(first: 5) { edges { node { id } } } }', {})) as {
    images: { edges: { node: { id: string } }[] };
  };
  return data.images.edges.map((e) => e.node.id);
}

/** A GraphQL multipart upload as alice; returns the new image's id. */
async function upload(stack: Stack, png: Buffer): Promise<string> {
  const form = new FormData();
  form.append(
    'operations',
    JSON.stringify({
      query: 'mutation ($file: File!) { uploadImage(file: $file) { id } }',
      variables: { file: null },
    }),
  );
  form.append('map', JSON.stringify({ 0: ['variables.file'] }));
  form.append('0', new Blob([new Uint8Array(png)], { type: 'image/png' }), 'a.png');
  const res = await fetch(`${stack.url}/graphql`, {
    method: 'POST',
    headers: { 'x-graphql-yoga-csrf': '1', authorization: `Bearer ${stack.token}` },
    body: form,
  });
  const body = (await res.json()) as { data?: { uploadImage: { id: string } }; errors?: unknown[] };
  if (!body.data) throw new Error(`upload failed: ${JSON.stringify(body.errors)}`);
  return body.data.uploadImage.id;
}
