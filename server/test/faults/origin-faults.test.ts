import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OwnedRedis } from '../support/redis-server.js';
import { Client } from './helpers/client.js';
import { report, SteadyLoad, sleep } from './helpers/load.js';
import { Stack } from './helpers/stack.js';

const RATE = 10; // per second, each of: page query, forced re-signing, proxy stream, proxy redirect, /readyz
/** The COS driver's budget for one operation (storage/cos.ts DEFAULT_TIMEOUT_MS). */
const ORIGIN_TIMEOUT_MS = 10_000;

// The object store failing (500s), hanging (accepting requests and never answering) and slow,
// under load: only the proxy's stream mode needs the origin, and it answers 502 within the
// driver's timeout; signing is CPU only, so GraphQL, re-signing and redirects never notice.
/**
 * Changes the fault with a margin on both sides: requests started within it may meet either the
 * old or the new origin behaviour, so they are labelled 'switching' and held to the loose rules.
 */
async function shift(load: SteadyLoad, next: string, change: () => void): Promise<void> {
  load.phase('switching');
  await sleep(250);
  change();
  await sleep(250);
  load.phase(next);
}

describe('fault: the storage origin failing, hanging and slow under load', () => {
  let redis: OwnedRedis;
  let stack: Stack;
  let client: Client;

  beforeAll(async () => {
    redis = await OwnedRedis.start();
    stack = await Stack.start({ redisUrl: redis.url, env: { REFRESH_RATE_LIMIT_PER_MINUTE: '100000' } });
    client = new Client(stack);
    await client.discover();
  });
  afterAll(async () => {
    await stack?.close();
    await redis?.kill();
  });

  it('streams fail fast with 502 while URLs keep resolving, then stream again', async () => {
    const { fixture } = stack;
    const load = new SteadyLoad(RATE, {
      page: client.page,
      resign: client.resign,
      stream: client.proxy('stream'),
      redirect: client.proxy('redirect'),
      readyz: client.readyz,
    });
    load.start('before');
    await sleep(3000);

    await shift(load, 'failing', () => fixture.failNext(1_000_000_000, 500));
    await sleep(4000);
    await shift(load, 'healed', () => fixture.failNext(0));
    await sleep(2000);

    await shift(load, 'hanging', () => fixture.hang(true));
    await sleep(4000);
    // Streams started while it hung are still waiting for their timeout: let them end.
    await shift(load, 'unhung', () => fixture.hang(false));
    await sleep(ORIGIN_TIMEOUT_MS + 1000);

    await shift(load, 'slow', () => fixture.setLatency(300));
    await sleep(3000);
    await shift(load, 'after', () => fixture.setLatency(0));
    await sleep(2000);
    await load.stop();

    const phases = ['before', 'failing', 'healed', 'hanging', 'unhung', 'slow', 'after', 'switching'];
    report(
      'storage origin: 500s, hanging, +300 ms',
      load,
      ['page', 'resign', 'stream', 'redirect', 'readyz'],
      phases,
    );
    const states = (phase: string) => [
      ...new Set(load.select({ kind: 'readyz', phase }).map((s) => s.detail)),
    ];
    console.log('[faults] readyz while failing:', states('failing'), 'while hanging:', states('hanging'));

    // Signing needs no origin: pages, re-signings and redirects never fail, and stay quick.
    for (const kind of ['page', 'resign', 'redirect']) {
      expect(load.failures({ kind })).toEqual([]);
      expect(load.summary({ kind, phase: ['failing', 'hanging', 'slow'] }).max).toBeLessThan(2000);
    }
    // The node stays ready (another node could not reach the bucket either); storage shows down,
    // and the probe answers quickly however the origin hangs (its storage check stops at 750 ms,
    // under Kubernetes' default probe timeout of 1 s; the bound here only leaves room for a busy CI).
    expect(load.failures({ kind: 'readyz' })).toEqual([]);
    expect(load.summary({ kind: 'readyz' }).max).toBeLessThan(1500);
    expect(states('hanging').some((d) => d?.includes('storage=down'))).toBe(true);

    // Streams: 200 when the origin answers; 502 when it fails (quickly) or hangs (at the timeout).
    for (const phase of ['before', 'healed', 'unhung', 'slow', 'after'])
      expect(load.failures({ kind: 'stream', phase })).toEqual([]);
    const failing = load.select({ kind: 'stream', phase: 'failing' });
    expect(failing.length).toBeGreaterThan(RATE * 3);
    expect(failing.every((s) => s.status === 502)).toBe(true);
    expect(load.summary({ kind: 'stream', phase: 'failing' }).max).toBeLessThan(2000);
    const hung = load.select({ kind: 'stream', phase: 'hanging' });
    expect(hung.length).toBeGreaterThan(RATE * 3);
    expect(hung.every((s) => s.status === 502)).toBe(true);
    expect(load.summary({ kind: 'stream', phase: 'hanging' }).max).toBeLessThan(ORIGIN_TIMEOUT_MS + 2000);
    // Once the origin answers again, so do new streams (those still hung end at their timeout).
    expect(load.failures({ kind: 'stream', phase: 'unhung' })).toEqual([]);
    // While switching: the answer of either side of the change.
    expect(
      load.failures({ phase: 'switching' }).filter((s) => s.kind !== 'stream' || s.status !== 502),
    ).toEqual([]);
    expect(stack.alive()).toBe(true);
    expect(stack.errorLogs()).toEqual([]);
  });
});
