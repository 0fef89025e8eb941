import type { ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fromRedis } from '../../src/errors/index.js';
import { CommandTimeoutError } from '../../src/redis/command-timeout.js';
import { type Harness, startHarness } from '../support/harness.js';
import { OwnedRedis } from '../support/redis-server.js';
import { seed } from '../support/seed.js';

// A Redis that stops answering (SIGSTOP of the redis-server this file starts: a stall, a frozen
// VM) while a page asks what only Redis knows: `Image.urlStatus` and `urlStats`. That is the
// error table's SERVICE_UNAVAILABLE with retryAfter, logged once (not a stack per image under
// "unexpected error", as INTERNAL_SERVER_ERROR), and the page's URLs are still signed directly.

const STATUS_PAGE = /* GraphQL */ `
  query ($ids: [ID!]!) { imagesByIds(ids: $ids) { id signedUrl { url cached } urlStatus { cached accessCount } } }
`;
const URL_PAGE = /* GraphQL */ `
  query ($ids: [ID!]!) { imagesByIds(ids: $ids) { id signedUrl { url cached } } }
`;

describe('a stalled Redis (SIGSTOP)', () => {
  let redis: OwnedRedis;
  let h: Harness;
  let ids: string[];
  const signal = (sig: NodeJS.Signals) => {
    // OwnedRedis keeps its child private; the process is this file's own, stopped by its PID.
    const child = (redis as unknown as { child: ChildProcess }).child;
    expect(child.pid).toBeGreaterThan(0);
    process.kill(child.pid!, sig);
  };

  beforeAll(async () => {
    redis = await OwnedRedis.start();
    h = await startHarness({ redis: redis.url });
    ids = await seed(h, 'alice', 20);
  }, 60_000);
  afterAll(async () => {
    try {
      signal('SIGCONT');
    } catch {
      // already gone
    }
    await h?.close();
    await redis?.kill();
  });

  it('urlStatus and urlStats are SERVICE_UNAVAILABLE with retryAfter, logged once, the URLs still served', async () => {
    const admin = await h.token('root', { role: 'admin' });
    const before = await h.gql(STATUS_PAGE, { ids });
    expect(before.errors).toBeUndefined();
    const expected = await h.gql<{ imagesByIds: { signedUrl: { url: string } }[] }>(URL_PAGE, { ids });

    signal('SIGSTOP');
    try {
      const logsBefore = h.logs.length;
      const res = await h.gql<{ imagesByIds: ({ signedUrl: { url: string } } | null)[] }>(STATUS_PAGE, {
        ids,
      });
      expect(res.status).toBe(200);
      expect(res.errors?.length).toBe(ids.length);
      for (const e of res.errors ?? []) {
        expect(e.extensions).toMatchObject({ code: 'SERVICE_UNAVAILABLE', retryAfter: 5 });
      }
      const stats = await h.gql('query { urlStats(days: 1) { requests } }', {}, { token: admin });
      expect(stats.errors?.[0]?.extensions).toMatchObject({ code: 'SERVICE_UNAVAILABLE', retryAfter: 5 });

      const logs = h.logs.slice(logsBefore);
      expect(logs.filter((l) => l.includes('unexpected error'))).toEqual([]);
      expect(logs.filter((l) => l.includes('URL status unavailable')).length).toBe(1);

      // The page itself (no urlStatus) answers with the URLs it would have had from the cache.
      const page = await h.gql<{ imagesByIds: { signedUrl: { url: string } }[] }>(URL_PAGE, { ids });
      expect(page.errors).toBeUndefined();
      expect(page.data!.imagesByIds.map((i) => i.signedUrl.url)).toEqual(
        expected.data!.imagesByIds.map((i) => i.signedUrl.url),
      );
    } finally {
      signal('SIGCONT');
    }
    // Back: answered again.
    let again = await h.gql(STATUS_PAGE, { ids });
    for (let i = 0; i < 10 && again.errors; i++) {
      await new Promise((r) => setTimeout(r, 300));
      again = await h.gql(STATUS_PAGE, { ids });
    }
    expect(again.errors).toBeUndefined();
  }, 60_000);

  it('classifies the ways Redis is away, and not a command that is wrong', () => {
    const away = [
      new CommandTimeoutError(),
      new Error('Connection is closed.'),
      new Error("Stream isn't writeable and enableOfflineQueue options is false"),
      new Error('CLUSTERDOWN The cluster is down'),
      new Error('Too many Cluster redirections. Last error: ReplyError: CLUSTERDOWN The cluster is down'),
      new Error('redis call exceeded its 300 ms deadline'),
      new Error('All keys in the pipeline should belong to the same slots allocation group'),
    ];
    for (const err of away)
      expect(fromRedis(err)?.extensions['code'], err.message).toBe('SERVICE_UNAVAILABLE');
    expect(fromRedis(new Error('ERR Error running script'))).toBeUndefined();
    expect(
      fromRedis(new Error('WRONGTYPE Operation against a key holding the wrong kind of value')),
    ).toBeUndefined();
  });
});
