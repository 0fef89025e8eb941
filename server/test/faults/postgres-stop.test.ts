import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OwnedRedis } from '../support/redis-server.js';
import { Client } from './helpers/client.js';
import { report, type Sample, SteadyLoad, sleep, until } from './helpers/load.js';
import { OwnedPostgres } from './helpers/owned-postgres.js';
import { Stack } from './helpers/stack.js';

/** /readyz reuses one round of probes for a second (server/src/http/health.ts). */
const PROBE_REUSE_MS = 1100;

const RATE = 15; // per second, each of: page query, /proxy redirect, /readyz

/** The clean answers while the database is away; anything else (a 500 above all) is a failure. */
function cleanRefusal(s: Sample): boolean {
  if (s.ok) return s.kind !== 'readyz'; // a readiness probe saying "ready" with no database is wrong
  if (s.kind === 'page') return s.detail === 'SERVICE_UNAVAILABLE';
  if (s.kind === 'proxy') return s.status === 503 && s.detail === '503 retry-after=5';
  return s.status === 503 && /^down db=down /.test(s.detail ?? '');
}

/** While stopping or starting, both the normal answer and the clean refusal are right. */
const eitherWay = (s: Sample) => s.ok || cleanRefusal(s);

// A private PostgreSQL server stopped under load and started again: while it is away the gateway
// refuses cleanly (SERVICE_UNAVAILABLE, 503 + Retry-After, /readyz 503), never a 500, never a
// crash; once it is back the same process serves again (the pg pool reconnects on its own).
describe('fault: PostgreSQL stopped and started under load', () => {
  let pg: OwnedPostgres;
  let redis: OwnedRedis;
  let stack: Stack;
  let client: Client;

  beforeAll(async () => {
    pg = await OwnedPostgres.start();
    redis = await OwnedRedis.start();
    stack = await Stack.start({ databaseUrl: pg.url, redisUrl: redis.url });
    client = new Client(stack);
    await client.discover();
  });
  afterAll(async () => {
    await stack?.close();
    await redis?.kill();
    await pg?.destroy();
  });

  // fast: sessions are terminated and the server shuts down cleanly; immediate: like a crash
  // (connections cut, crash recovery at the next start).
  it.each(['fast', 'immediate'] as const)(
    'stop -m %s: refuses cleanly while down, recovers without a restart',
    async (mode) => {
      const pid = stack.gateway.child.pid;
      const load = new SteadyLoad(RATE, {
        page: client.page,
        proxy: client.proxy('redirect'),
        readyz: client.readyz,
      });
      load.start('before');
      await sleep(3000);

      load.phase('stopping');
      await pg.stop(mode);
      load.phase('down');
      const downAt = Date.now();
      await sleep(6000);

      load.phase('starting');
      await pg.start();
      const startedAt = Date.now();
      load.phase('recovery');
      await until(
        'queries served again',
        () => {
          const recent = load.select({ phase: 'recovery' }).slice(-3 * 5);
          return recent.length === 15 && recent.every((s) => s.ok);
        },
        20_000,
      );
      const recoveredMs = Date.now() - startedAt;
      load.phase('after');
      await sleep(3000);
      await load.stop();

      const phases = ['before', 'stopping', 'down', 'starting', 'recovery', 'after'];
      report(
        `PostgreSQL stop -m ${mode} + start (served again ${recoveredMs} ms after start)`,
        load,
        ['page', 'proxy', 'readyz'],
        phases,
      );
      const tally = (kind: string) => {
        const t: Record<string, number> = {};
        for (const s of load.select({ kind, phase: 'down' })) {
          const k = s.ok ? 'ok' : `${s.status} ${s.detail}`;
          t[k] = (t[k] ?? 0) + 1;
        }
        return t;
      };
      console.log(
        '[faults] while down:',
        JSON.stringify({ page: tally('page'), proxy: tally('proxy'), readyz: tally('readyz') }),
      );

      // Up: nothing fails.
      expect(load.failures({ phase: ['before', 'after'] })).toEqual([]);
      // Down: every answer is the clean refusal, and it comes quickly. (/readyz reuses a round of
      // probes for a second, so within the first second it may still report the last round.)
      const down = load.select({ phase: 'down' });
      expect(down.length).toBeGreaterThan(RATE * 3 * 4);
      const staleProbe = (s: (typeof down)[number]) =>
        s.kind === 'readyz' && s.ok && s.startedAt < downAt + PROBE_REUSE_MS;
      expect(down.filter((s) => !cleanRefusal(s) && !staleProbe(s))).toEqual([]);
      for (const kind of ['page', 'proxy', 'readyz']) {
        expect(load.summary({ kind, phase: 'down' }).max).toBeLessThan(3000);
      }
      // Stopping, starting, recovering: the normal answer or the clean refusal, nothing else.
      expect(
        load.select({ phase: ['stopping', 'starting', 'recovery'] }).filter((s) => !eitherWay(s)),
      ).toEqual([]);
      // The same process, never restarted, and nothing masked as an unexpected error.
      expect(recoveredMs).toBeLessThan(15_000);
      expect(stack.alive()).toBe(true);
      expect(stack.gateway.child.pid).toBe(pid);
      expect(stack.errorLogs()).toEqual([]);
    },
  );
});
