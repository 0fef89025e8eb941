import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemClock } from '../../src/clock.js';
import { openDatabase } from '../../src/db/connect.js';
import { createImagesRepo } from '../../src/db/images-repo.js';
import type { Db } from '../../src/db/types.js';
import { seedImages } from '../../src/seed.js';
import { createCosStorage } from '../../src/storage/cos.js';
import { RedisUrlStore, urlKeys } from '../../src/urls/redis-store.js';
import { type CosFixture, startCosFixture } from '../fixtures/cos-fixture.js';
import { listenToBus } from '../support/bus-listener.js';
import { createTestDatabase } from '../support/database.js';
import { COS_CREDENTIALS, cosStorageOptions, gatewayEnv } from '../support/env.js';
import { GatewayProcess } from '../support/gateway-process.js';
import { signToken } from '../support/jwt.js';
import { OwnedRedis } from '../support/redis-server.js';
import { type SseSubscription, subscribeSse } from '../support/sse.js';

const TTL = 20;
const AHEAD = 10;
const RUN_MS = 45_000;

interface EventData {
  data?: { signedUrlRefreshed: { imageId: string; signedUrl: { url: string; expiresAt: string } } };
  errors?: { message: string }[];
}

async function gql<T>(url: string, token: string, query: string, variables: Record<string, unknown> = {}) {
  const res = await fetch(`${url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ query, variables }),
  });
  return (await res.json()) as { data?: T; errors?: { message: string; extensions?: { code?: string } }[] };
}

async function refreshesOn(node: GatewayProcess): Promise<number> {
  const text = await (await fetch(`${node.url}/metrics`)).text();
  const m = /^signet_refreshes_total (\d+)/m.exec(text);
  return m ? Number(m[1]) : 0;
}

// Three real gateway processes on one Redis and one PostgreSQL, the COS fixture as origin.
describe('refresh across three nodes', () => {
  let redis: OwnedRedis;
  let fixture: CosFixture;
  let pg: { url: string; drop: () => Promise<void> };
  let db: Db;
  let dataDir: string;
  let nodes: GatewayProcess[] = [];
  let ids: string[] = [];
  let alice: string;
  let bob: string;
  let sse: SseSubscription<EventData> | undefined;
  let wire: Awaited<ReturnType<typeof listenToBus>> | undefined;

  beforeAll(async () => {
    redis = await OwnedRedis.start();
    fixture = await startCosFixture(COS_CREDENTIALS);
    pg = await createTestDatabase();
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'signet-nodes-'));
    db = await openDatabase({ databaseUrl: pg.url, dataDir });
    const storage = createCosStorage(cosStorageOptions(fixture));
    ids = await seedImages({
      storage,
      images: createImagesRepo(db),
      clock: systemClock,
      ownerId: 'alice',
      count: 30,
      width: 8,
      height: 8,
    });
    await seedImages({
      storage,
      images: createImagesRepo(db),
      clock: systemClock,
      ownerId: 'bob',
      count: 2,
      width: 8,
      height: 8,
    });
    alice = await signToken('alice');
    bob = await signToken('bob');
    const env = {
      ...gatewayEnv(fixture, pg.url),
      DATA_DIR: dataDir,
      REDIS_URL: redis.url,
      URL_TTL_SECONDS: String(TTL),
      REFRESH_AHEAD_SECONDS: String(AHEAD),
      LOG_LEVEL: 'warn',
    };
    nodes = await Promise.all([
      GatewayProcess.start(env),
      GatewayProcess.start(env),
      GatewayProcess.start(env),
    ]);
  }, 90_000);

  afterAll(async () => {
    sse?.close();
    wire?.close();
    await Promise.all(nodes.map((n) => n.stop()));
    await db?.close();
    await pg?.drop();
    await fixture?.close();
    await redis?.kill();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('pushes refreshes made anywhere to SSE clients on another node, once per window, surviving a SIGKILL', async () => {
    const [a, b, c] = nodes as [GatewayProcess, GatewayProcess, GatewayProcess];
    // Every batch published on the bus, as Redis delivers it: a failure then tells an event that
    // was never published from one that was published and not delivered by node C.
    wire = await listenToBus(redis.client(), 'signet:events');
    // Bob listens to alice's ids on node C: he must get nothing.
    const bobSse = subscribeSse<EventData>(c.url, SUB, { ids }, bob);
    sse = subscribeSse<EventData>(c.url, SUB, { ids }, alice);
    await Promise.all([sse.opened, bobSse.opened]);

    const first = await gql<{ images: { edges: { node: { id: string } }[] } }>(a.url, alice, PAGE, {});
    expect(first.errors).toBeUndefined();
    expect(first.data!.images.edges).toHaveLength(30);

    const started = Date.now();
    const store = new RedisUrlStore(redis.client(), 'signet:');
    let abandoned: string[] = [];
    let killed = false;
    let killedAt = 0;
    let served = 0;
    while (Date.now() - started < RUN_MS) {
      await new Promise((r) => setTimeout(r, 1500));
      const node = killed ? a : [a, b][served % 2]!;
      const page = await gql<{
        images: { edges: { node: { id: string; signedUrl: { url: string; expiresAt: string } } }[] };
      }>(node.url, alice, PAGE, {});
      expect(page.errors).toBeUndefined();
      served++;
      for (const e of page.data!.images.edges) {
        // Never a URL close to death (default minTtl is a quarter of the TTL: 5 s).
        expect(Date.parse(e.node.signedUrl.expiresAt) - Date.now()).toBeGreaterThan(4000);
      }
      const sample = page.data!.images.edges[served % 30]!.node.signedUrl.url;
      expect((await fetch(sample)).status).toBe(200);

      const elapsed = Date.now() - started;
      if (abandoned.length === 0 && elapsed > 10_500) {
        // A claimer that took a batch coming due and died: the lease runs out, another node takes
        // it. (It looks 4 s ahead: on the grid, whatever is due now was signed at its boundary by
        // the sweeps or the pages within a second.)
        const claim = await store.claimDue(Date.now() + 4000, 10, 3000, 0);
        abandoned = claim.claimed;
      }
      if (!killed && elapsed > 15_000) {
        killedAt = Date.now();
        await b.kill('SIGKILL');
        killed = true;
      }
    }
    expect(abandoned.length).toBeGreaterThan(0);

    // The nodes keep refreshing while this checks. So the sweeps' refresh counters (bumped in
    // Redis by every node's write-back) are read first, and the events a moment later: each
    // signing counted by then has published its event in the same tick, and a boundary passing
    // in between only adds events. Read the other way round, a sweep signing between the two
    // reads was counted without its event (seen once, under load).
    const admin = redis.client();
    const counted = new Map<string, number>();
    for (const id of ids) counted.set(id, Number(await admin.hget(urlKeys('signet:').meta(id), 'r')));
    admin.disconnect();
    await new Promise((r) => setTimeout(r, 1000));

    // Every image was refreshed, and each refresh reached the subscriber on node C.
    const byImage = new Map<string, number[]>();
    const arrivals = new Map<string, number[]>();
    for (const e of sse.events) {
      const ev = e.data.data?.signedUrlRefreshed;
      if (!ev) continue;
      const list = byImage.get(ev.imageId) ?? [];
      list.push(Date.parse(ev.signedUrl.expiresAt));
      byImage.set(ev.imageId, list);
      arrivals.set(ev.imageId, [...(arrivals.get(ev.imageId) ?? []), e.at]);
    }
    expect(new Set(byImage.keys())).toEqual(new Set(ids));
    // Events that carried errors instead of a URL, and the nodes' warnings and errors
    // (LOG_LEVEL=warn: nothing else is logged), for a failure.
    const failed = sse.events.filter((e) => e.data.errors);
    const errored = `${failed.length} event(s) with errors${failed.length > 0 ? `, the first: ${JSON.stringify(failed[0]!.data.errors)}` : ''}`;
    const warnings = nodes
      .flatMap((n, i) => n.output.flatMap((chunk) => chunk.split('\n')).map((l) => `${'ABC'[i]}: ${l}`))
      .filter((l) => l.length > 3)
      .slice(-20)
      .join('\n');
    for (const id of ids) {
      const expiries = byImage.get(id)!;
      // ~45 s / ~10 s per window.
      expect(expiries.length).toBeGreaterThanOrEqual(3);
      // One URL per step, each step exactly one step after the one before, and the next one
      // always before the previous URL expired (the abandoned batch included). A page and a
      // sweep racing at the same boundary may both sign it: the very same URL (the grid), its
      // event twice (clients ignore an event not later than theirs). At most once per image here.
      const steps = [...new Set(expiries)].sort((x, y) => x - y);
      // What a failure needs to be read, from the start: this image's steps as node C delivered
      // them and as they were published, when node B died, and what the nodes logged.
      const published = (wire.byImage.get(id) ?? []).map((w) => `${w.expiresAt - started}@${w.at - started}`);
      const heard = arrivals.get(id)!;
      const story = `${id}: expiries (expiry@when) ${expiries.map((e, i) => `${e - started}@${heard[i]! - started}`).join(', ')} ms; published (expiry@when) ${published.join(', ')}; B killed at ${killedAt - started} ms; ${errored}; nodes logged:\n${warnings || '(nothing)'}`;
      expect(expiries.length - steps.length, story).toBeLessThanOrEqual(1);
      for (let i = 1; i < steps.length; i++) {
        const gap = steps[i]! - steps[i - 1]!;
        expect(gap, story).toBeGreaterThanOrEqual((TTL - AHEAD - 2) * 1000);
        expect(gap, story).toBeLessThan(TTL * 1000);
      }
      // Every signing published one event (the first, on-demand one included). On the grid a
      // step is signed by whoever comes first after its boundary, a sweep or a page, never both:
      // the refresh counter all nodes bump in Redis counts the sweeps' share, at most all but the
      // first.
      expect(counted.get(id)!, story).toBeLessThanOrEqual(expiries.length - 1);
    }
    expect(await refreshesOn(a)).toBeGreaterThan(0);

    // Refresh on node A -> SSE delivery on node C, through Redis pub/sub.
    const delays: number[] = [];
    for (const id of ids.slice(0, 5)) {
      const before = sse.events.length;
      const t0 = Date.now();
      const forced = await gql(
        a.url,
        alice,
        'mutation ($ids: [ID!]!) { refreshSignedUrls(ids: $ids) { url } }',
        {
          ids: [id],
        },
      );
      expect(forced.errors).toBeUndefined();
      await sse.waitFor((ev) => ev.slice(before).some((e) => e.data.data?.signedUrlRefreshed.imageId === id));
      delays.push(
        sse.events.slice(before).find((e) => e.data.data?.signedUrlRefreshed.imageId === id)!.at - t0,
      );
    }
    console.log(
      `refresh on node A -> SSE on node C (ms, incl. the mutation round trip): ${delays.join(', ')}`,
    );
    expect(bobSse.events.filter((e) => e.data.data?.signedUrlRefreshed)).toEqual([]);
    bobSse.close();
  }, 120_000);
});

const SUB = /* GraphQL */ `
  subscription ($ids: [ID!]!) {
    signedUrlRefreshed(ids: $ids) { imageId signedUrl { url expiresAt } }
  }
`;
const PAGE = /* GraphQL */ `
  query { images(first: 100) { edges { node { id signedUrl { url expiresAt } } } } }
`;
