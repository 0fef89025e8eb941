import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { urlKeys } from '../../src/urls/redis-store.js';
import { runCli } from '../support/cli.js';
import { createTestDatabase } from '../support/database.js';
import { GatewayProcess } from '../support/gateway-process.js';
import { type Harness, startHarness } from '../support/harness.js';
import { waitFor } from '../support/proxy.js';
import { LocalRedisCluster } from '../support/redis-cluster.js';
import { RedisSentinelGroup } from '../support/redis-sentinel.js';
import { PAGE_QUERY, type PageData, seed } from '../support/seed.js';
import { subscribeSse } from '../support/sse.js';
import { makeTlsFiles } from '../support/tls-files.js';
import { checkWriteBack } from '../support/write-back.js';

// Redis with passwords (and TLS) behind Sentinel and in a Cluster: REDIS_PASSWORD and
// REDIS_USERNAME for the data nodes, REDIS_SENTINEL_PASSWORD for the sentinels' own requirepass,
// REDIS_TLS (config.ts, redis/connect.ts). Every server here is a private process this file starts
// on free ports and stops by PID. The passwords are distinctive so that a test can tell they were
// never printed.
const DATA_PW = 'data-pw-7Qx2Lm9Rt4';
const SENTINEL_PW = 'sentinel-pw-K3vZ8nW1';

const noPassword = (text: string) => {
  expect(text).not.toContain(DATA_PW);
  expect(text).not.toContain(SENTINEL_PW);
};

/** The remote port of a client's connection (the primary it is on). */
const remotePort = (client: unknown) => (client as { stream?: { remotePort?: number } }).stream?.remotePort;

/** The `redis` row of `signet check`'s table. */
function redisRow(stdout: string): { status: string; line: string } {
  const line = stdout.split('\n').find((l) => l.startsWith('redis '));
  expect(line, stdout).toBeDefined();
  return { status: line!.split(/\s+/)[1]!, line: line! };
}

/** Asks the gateway's first page until every URL on it comes from the cache (the write-back landed). */
async function pageUntilCached(g: { url: string; logs: string[] }, first: number): Promise<void> {
  let cached = false;
  for (let i = 0; i < 20 && !cached; i++) {
    const res = await fetch(`${g.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: PAGE_QUERY, variables: { first } }),
    });
    const body = (await res.json()) as { data?: PageData; errors?: unknown };
    expect(body.errors).toBeUndefined();
    cached =
      body.data!.images.edges.length > 0 && body.data!.images.edges.every((e) => e.node.signedUrl.cached);
    if (!cached) await new Promise((r) => setTimeout(r, 300));
  }
  expect(cached, g.logs.join('\n')).toBe(true);
}

describe('Redis behind Sentinel, with a password on the nodes and another on the sentinels', () => {
  let group: RedisSentinelGroup;
  let h: Harness;
  let ids: string[];

  beforeAll(async () => {
    group = await RedisSentinelGroup.start({
      security: { password: DATA_PW },
      sentinelPassword: SENTINEL_PW,
      downAfterMs: 1000,
      failoverTimeoutMs: 5000,
    });
    h = await startHarness({
      driver: 'cos',
      // BullMQ's connections too (the job engine's queue and workers).
      start: true,
      env: {
        REDIS_SENTINELS: group.sentinels,
        REDIS_SENTINEL_NAME: group.name,
        REDIS_PASSWORD: DATA_PW,
        REDIS_SENTINEL_PASSWORD: SENTINEL_PW,
      },
    });
    ids = await seed(h, 'alice', 40);
  }, 90_000);
  afterAll(async () => {
    await h?.close();
    await group?.stop();
  });

  /** Pages of 10 until one is all from the cache; its ids. */
  async function cachedPage(): Promise<string[]> {
    let page: PageData | null = null;
    for (let i = 0; i < 10; i++) {
      const res = await h.gql<PageData>(PAGE_QUERY, { first: 10 });
      expect(res.errors).toBeUndefined();
      page = res.data;
      if (page!.images.edges.every((e) => e.node.signedUrl.cached)) break;
      await new Promise((r) => setTimeout(r, 300));
    }
    expect(page!.images.edges.every((e) => e.node.signedUrl.cached)).toBe(true);
    return page!.images.edges.map((e) => e.node.id);
  }

  /** Waits until the URLs of `pageIds` are on the Redis a test client `c` reaches. */
  async function cachedOn(c: Redis, pageIds: string[]): Promise<void> {
    const k = urlKeys(h.config.redisPrefix);
    await waitFor(async () => (await c.exists(...pageIds.map((id) => k.url(id)))) === pageIds.length, 10_000);
  }

  /** A refresh's events reach an SSE subscriber (the event bus' subscriber connection). */
  async function eventsArrive(eventIds: string[]): Promise<void> {
    const sse = subscribeSse<{ data?: { signedUrlRefreshed: { imageId: string } } }>(
      h.url,
      'subscription ($ids: [ID!]!) { signedUrlRefreshed(ids: $ids) { imageId } }',
      { ids: eventIds },
      await h.token('alice'),
    );
    try {
      await sse.opened;
      const res = await h.gql('mutation ($ids: [ID!]!) { refreshSignedUrls(ids: $ids) { url } }', {
        ids: eventIds,
      });
      expect(res.errors).toBeUndefined();
      await sse
        .waitFor(
          (ev) => new Set(ev.map((e) => e.data.data?.signedUrlRefreshed.imageId)).size >= eventIds.length,
          10_000,
        )
        .catch((err: Error) => {
          throw new Error(`${err.message}; the node's log:\n${h.logs.slice(-30).join('\n')}`);
        });
    } finally {
      sse.close();
    }
  }

  /** A preload runs as a BullMQ job (its workers' blocking connections) and caches its URLs. */
  async function preloadCaches(c: Redis, preloadIds: string[]): Promise<void> {
    const res = await h.gql<{ preloadSignedUrls: number }>(
      'mutation ($ids: [ID!]!) { preloadSignedUrls(ids: $ids) }',
      { ids: preloadIds },
    );
    expect(res.errors).toBeUndefined();
    await cachedOn(c, preloadIds);
  }

  it('serves pages from the cache on the primary; events and BullMQ jobs go through', async () => {
    const pageIds = await cachedPage();
    const primary = group.primary.client();
    try {
      await cachedOn(primary, pageIds);
      await eventsArrive(ids.slice(0, 3));
      await preloadCaches(primary, ids.slice(30, 35));
    } finally {
      primary.disconnect();
    }
  });

  it('follows a switchover as soon as it is announced (the watch asks the sentinels with their password)', async () => {
    expect(remotePort(h.redis)).toBe(group.primary.port);
    await group.switchover();
    // The watch moves the connections within a second or two; without it they stay on the old
    // primary until the sentinels demote it, ~10 s later (sentinel-switch.ts).
    await waitFor(() => remotePort(h.redis) === group.replica.port, 5000).catch(() => {
      throw new Error(
        `the command connection is still on ${remotePort(h.redis)} 5 s after the switchover to ${group.replica.port}`,
      );
    });
    expect(h.logs.some((l) => l.includes('Redis primary switched (Sentinel); moving connections'))).toBe(
      true,
    );
    const promoted = group.replica.client();
    try {
      await cachedOn(promoted, await cachedPage());
    } finally {
      promoted.disconnect();
    }
  });

  it('finds the promoted replica after its primary is SIGKILLed, and keeps caching, publishing and running jobs', async () => {
    // The primary now is the former replica; the old primary follows it (it needs masterauth).
    await group.waitReplicaOf(group.primary, group.replica.port);
    await group.replica.kill();
    await group.waitPromoted(group.primary.port);
    const promoted = group.primary.client();
    try {
      await waitFor(async () => {
        const res = await h.gql<PageData>(PAGE_QUERY, { first: 10 });
        return res.errors === undefined && res.data!.images.edges.every((e) => e.node.signedUrl.cached);
      }, 15_000);
      await cachedOn(promoted, await cachedPage());
      await eventsArrive(ids.slice(20, 23));
      await preloadCaches(promoted, ids.slice(35, 40));
    } finally {
      promoted.disconnect();
    }
    noPassword(h.logs.join('\n'));
  });
});

describe('a Redis Cluster with requirepass', () => {
  let cluster: LocalRedisCluster;
  let h: Harness;

  beforeAll(async () => {
    cluster = await LocalRedisCluster.start(3, { password: DATA_PW });
    h = await startHarness({
      driver: 'cos',
      env: { REDIS_CLUSTER_NODES: cluster.nodes, REDIS_PASSWORD: DATA_PW },
    });
    await seed(h, 'alice', 30);
  }, 60_000);
  afterAll(async () => {
    await h?.close();
    await cluster?.stop();
  });

  it('writes back across every node and reads a page with MGET', async () => {
    await h.store.purge(
      await checkWriteBack(h.store, h.redis!, h.config.redisPrefix, 300, Date.now() + 3_600_000),
    );
    await cluster.resetStats();
    let cached = false;
    for (let i = 0; i < 10 && !cached; i++) {
      const res = await h.gql<PageData>(PAGE_QUERY, { first: 30 });
      expect(res.errors).toBeUndefined();
      cached = res.data!.images.edges.every((e) => e.node.signedUrl.cached);
      if (!cached) await new Promise((r) => setTimeout(r, 300));
    }
    expect(cached).toBe(true);
    expect((await cluster.commandStats())['mget'] ?? 0).toBeGreaterThan(0);
    noPassword(h.logs.join('\n'));
  });

  it('signet check reaches the Cluster with the password, and is down without it', async () => {
    const db = await createTestDatabase();
    const dataDir = await mkdtemp(path.join(os.tmpdir(), 'signet-redis-auth-'));
    try {
      const base = { DATA_DIR: dataDir, DATABASE_URL: db.url, STORAGE_DRIVER: 'local' };
      const ok = await runCli(['check'], {
        ...base,
        REDIS_CLUSTER_NODES: cluster.nodes,
        REDIS_PASSWORD: DATA_PW,
      });
      expect(redisRow(ok.stdout).status, ok.stdout).toBe('ok');
      noPassword(ok.stdout + ok.stderr);
      const without = await runCli(['check'], { ...base, REDIS_CLUSTER_NODES: cluster.nodes });
      expect(redisRow(without.stdout).status, without.stdout).toBe('down');

      // An ACL user (REDIS_USERNAME) with a password of its own, on every node (ACLs are per node).
      const USER_PW = 'user-pw-Hd5sJ0pX';
      for (const port of cluster.ports) {
        const c = new Redis(port, '127.0.0.1', { password: DATA_PW, maxRetriesPerRequest: 0 });
        c.on('error', () => {});
        await c.call('ACL', 'SETUSER', 'signet', 'on', `>${USER_PW}`, '~*', '&*', '+@all');
        c.disconnect();
      }
      const asUser = await runCli(['check'], {
        ...base,
        REDIS_CLUSTER_NODES: cluster.nodes,
        REDIS_USERNAME: 'signet',
        REDIS_PASSWORD: USER_PW,
      });
      expect(redisRow(asUser.stdout).status, asUser.stdout).toBe('ok');
      const wrongUser = await runCli(['check'], {
        ...base,
        REDIS_CLUSTER_NODES: cluster.nodes,
        REDIS_USERNAME: 'nobody',
        REDIS_PASSWORD: USER_PW,
      });
      expect(redisRow(wrongUser.stdout).status, wrongUser.stdout).toBe('down');
      expect(wrongUser.stdout).not.toContain(USER_PW);
    } finally {
      await db.drop();
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});

describe('signet check and a gateway with a wrong Redis password (Sentinel)', () => {
  let group: RedisSentinelGroup;
  let db: { url: string; drop: () => Promise<void> };
  let dataDir: string;
  let base: Record<string, string>;

  beforeAll(async () => {
    group = await RedisSentinelGroup.start({
      security: { password: DATA_PW },
      sentinelPassword: SENTINEL_PW,
    });
    db = await createTestDatabase();
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'signet-redis-auth-'));
    // As a node's first start leaves it (check.test.ts): the storage row is then ok too.
    await mkdir(path.join(dataDir, 'bucket'));
    base = {
      DATA_DIR: dataDir,
      DATABASE_URL: db.url,
      STORAGE_DRIVER: 'local',
      REDIS_SENTINELS: group.sentinels,
    };
  }, 90_000);
  afterAll(async () => {
    await group?.stop();
    await db?.drop();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it('check: ok with both passwords; a down line naming the cause, never the password, with a wrong one', async () => {
    const ok = await runCli(['check'], {
      ...base,
      REDIS_PASSWORD: DATA_PW,
      REDIS_SENTINEL_PASSWORD: SENTINEL_PW,
    });
    expect(ok.code, ok.stdout + ok.stderr).toBe(0);
    expect(redisRow(ok.stdout).line).toContain('sentinel mymaster');
    noPassword(ok.stdout + ok.stderr);

    // The reviewer's repro: no password at all.
    const none = await runCli(['check'], base);
    expect(none.code).toBe(1);
    expect(redisRow(none.stdout).status).toBe('down');
    expect(redisRow(none.stdout).line).toMatch(/NOAUTH/);

    const wrongData = await runCli(['check'], {
      ...base,
      REDIS_PASSWORD: `${DATA_PW}-wrong`,
      REDIS_SENTINEL_PASSWORD: SENTINEL_PW,
    });
    expect(wrongData.code).toBe(1);
    expect(redisRow(wrongData.stdout).status).toBe('down');
    expect(redisRow(wrongData.stdout).line).toMatch(/WRONGPASS/);
    noPassword(wrongData.stdout + wrongData.stderr);

    const wrongSentinel = await runCli(['check'], {
      ...base,
      REDIS_PASSWORD: DATA_PW,
      REDIS_SENTINEL_PASSWORD: `${SENTINEL_PW}-wrong`,
    });
    expect(wrongSentinel.code).toBe(1);
    expect(redisRow(wrongSentinel.stdout).status).toBe('down');
    expect(redisRow(wrongSentinel.stdout).line).toMatch(/WRONGPASS/);
    noPassword(wrongSentinel.stdout + wrongSentinel.stderr);

    // A refused combination is one config row naming the variable, without the value.
    const refused = await runCli(['check'], {
      ...base,
      REDIS_SENTINELS: '',
      REDIS_PASSWORD: DATA_PW,
      REDIS_CLUSTER_NODES: '',
      REDIS_URL: 'redis://127.0.0.1:1',
    });
    expect(refused.code).toBe(78);
    expect(refused.stdout).toContain('REDIS_PASSWORD');
    noPassword(refused.stdout + refused.stderr);
  });

  it('a gateway with a wrong password says so in its log, without the password', async () => {
    const g = await GatewayProcess.start({
      ...base,
      REDIS_PASSWORD: `${DATA_PW}-wrong`,
      REDIS_SENTINEL_PASSWORD: SENTINEL_PW,
    });
    try {
      await waitFor(() => g.logs.some((l) => l.includes('WRONGPASS')), 10_000).catch(() => {
        throw new Error(`no WRONGPASS in the gateway's log:\n${g.logs.join('\n')}`);
      });
      const ready = await (await fetch(`${g.url}/readyz`)).text();
      noPassword(ready);
      noPassword(g.logs.join('\n'));
    } finally {
      await g.stop();
    }
    noPassword(g.logs.join('\n'));
  });
});

describe('Redis behind Sentinel over TLS (REDIS_TLS, a private CA in NODE_EXTRA_CA_CERTS)', () => {
  let group: RedisSentinelGroup;
  let tlsDir: string;
  let ca: string;
  let db: { url: string; drop: () => Promise<void> };
  let base: Record<string, string>;

  beforeAll(async () => {
    tlsDir = await mkdtemp(path.join(os.tmpdir(), 'signet-redis-tls-'));
    await mkdir(path.join(tlsDir, 'bucket'));
    const tls = await makeTlsFiles(tlsDir);
    ca = tls.ca;
    group = await RedisSentinelGroup.start({
      security: { password: DATA_PW, tls },
      sentinelPassword: SENTINEL_PW,
    });
    db = await createTestDatabase();
    base = {
      DATA_DIR: tlsDir,
      DATABASE_URL: db.url,
      STORAGE_DRIVER: 'local',
      REDIS_SENTINELS: group.sentinels,
      REDIS_PASSWORD: DATA_PW,
      REDIS_SENTINEL_PASSWORD: SENTINEL_PW,
    };
  }, 90_000);
  afterAll(async () => {
    await group?.stop();
    await db?.drop();
    if (tlsDir) await rm(tlsDir, { recursive: true, force: true });
  });

  it('check reaches the primary through the sentinels over TLS; down without REDIS_TLS or the CA', async () => {
    const ok = await runCli(['check'], { ...base, REDIS_TLS: 'true', NODE_EXTRA_CA_CERTS: ca });
    expect(ok.code, ok.stdout + ok.stderr).toBe(0);
    expect(redisRow(ok.stdout).status).toBe('ok');
    noPassword(ok.stdout + ok.stderr);

    const plain = await runCli(['check'], { ...base, NODE_EXTRA_CA_CERTS: ca });
    expect(redisRow(plain.stdout).status).toBe('down');
    const untrusted = await runCli(['check'], { ...base, REDIS_TLS: 'true' });
    expect(redisRow(untrusted.stdout).status).toBe('down');
    // (ioredis reports a sentinel it could not verify as "Connection is closed.", not the reason.)
    noPassword(untrusted.stdout + untrusted.stderr);
  });

  it('a gateway pages and caches through TLS connections', async () => {
    const g = await GatewayProcess.start({
      ...base,
      DATA_DIR: await mkdtemp(path.join(tlsDir, 'gateway-')),
      REDIS_TLS: 'true',
      NODE_EXTRA_CA_CERTS: ca,
      SEED_DEMO: 'true',
      SEED_DEMO_COUNT: '4',
    });
    try {
      await pageUntilCached(g, 4);
      // From Redis, over TLS: the URLs are on the primary (a test client that trusts the CA).
      const primary = group.primary.client();
      try {
        expect((await primary.keys('signet:*url:*')).length).toBeGreaterThanOrEqual(4);
      } finally {
        primary.disconnect();
      }
      noPassword(g.logs.join('\n'));
    } finally {
      await g.stop();
    }
  });
});

describe('a Redis Cluster over TLS with requirepass (REDIS_TLS, redisOptions of every node)', () => {
  let cluster: LocalRedisCluster;
  let tlsDir: string;
  let ca: string;
  let db: { url: string; drop: () => Promise<void> };
  let base: Record<string, string>;

  beforeAll(async () => {
    tlsDir = await mkdtemp(path.join(os.tmpdir(), 'signet-cluster-tls-'));
    await mkdir(path.join(tlsDir, 'bucket'));
    const tls = await makeTlsFiles(tlsDir);
    ca = tls.ca;
    cluster = await LocalRedisCluster.start(3, { password: DATA_PW, tls });
    db = await createTestDatabase();
    base = {
      DATA_DIR: tlsDir,
      DATABASE_URL: db.url,
      STORAGE_DRIVER: 'local',
      REDIS_CLUSTER_NODES: cluster.nodes,
      REDIS_PASSWORD: DATA_PW,
    };
  }, 90_000);
  afterAll(async () => {
    await cluster?.stop();
    await db?.drop();
    if (tlsDir) await rm(tlsDir, { recursive: true, force: true });
  });

  it('check is ok over TLS (down without REDIS_TLS); a gateway reads its pages with MGET from every node', async () => {
    const ok = await runCli(['check'], { ...base, REDIS_TLS: 'true', NODE_EXTRA_CA_CERTS: ca });
    expect(ok.code, ok.stdout + ok.stderr).toBe(0);
    noPassword(ok.stdout + ok.stderr);
    const plain = await runCli(['check'], { ...base, NODE_EXTRA_CA_CERTS: ca });
    expect(redisRow(plain.stdout).status).toBe('down');

    const g = await GatewayProcess.start({
      ...base,
      DATA_DIR: await mkdtemp(path.join(tlsDir, 'gateway-')),
      REDIS_TLS: 'true',
      NODE_EXTRA_CA_CERTS: ca,
      SEED_DEMO: 'true',
      SEED_DEMO_COUNT: '8',
    });
    try {
      await cluster.resetStats();
      await pageUntilCached(g, 8);
      expect((await cluster.commandStats())['mget'] ?? 0).toBeGreaterThan(0);
      noPassword(g.logs.join('\n'));
    } finally {
      await g.stop();
    }
  });
});
