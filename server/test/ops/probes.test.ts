import { rename } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { localBucketRoot } from '../../src/container.js';
import { testRedisUrl } from '../support/env.js';
import { type Harness, startHarness } from '../support/harness.js';

const METRICS_TOKEN = 'metrics-token-0123456789';

describe('/metrics and /readyz cost the dependencies little and /metrics can be closed', () => {
  let h: Harness;
  const statements: string[] = [];
  beforeAll(async () => {
    h = await startHarness({
      driver: 'local',
      redis: testRedisUrl(),
      env: { METRICS_TOKEN },
      onQuery: (sql) => statements.push(sql),
    });
  });
  afterAll(async () => {
    await h?.close();
  });

  it('logs a dependency that stops answering once, at warn, and once more when it answers again', async () => {
    const lines = (what: string) =>
      h.logs.filter((l) => l.includes(what) && l.includes('"dependency":"storage"'));
    const readyz = async () => {
      // One round of probes answers for a second: wait it out, so each call probes anew.
      await new Promise((r) => setTimeout(r, 1100));
      const r = await fetch(`${h.url}/readyz`);
      return ((await r.json()) as { checks: { storage: { state: string } } }).checks.storage.state;
    };
    const root = localBucketRoot(h.container.config);
    expect(await readyz()).toBe('ok');
    await rename(root, `${root}.away`);
    try {
      expect(await readyz()).toBe('down');
      expect(await readyz()).toBe('down');
    } finally {
      await rename(`${root}.away`, root);
    }
    expect(await readyz()).toBe('ok');
    expect(await readyz()).toBe('ok');
    const down = lines('dependency does not answer');
    expect(down).toHaveLength(1);
    expect(JSON.parse(down[0]!)).toMatchObject({ level: 40, err: expect.stringContaining('does not exist') });
    expect(lines('dependency answers again')).toHaveLength(1);
  });

  it('/metrics wants the METRICS_TOKEN as a bearer token', async () => {
    const none = await fetch(`${h.url}/metrics`);
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toBe('Bearer');
    expect(((await none.json()) as { error: { code: string } }).error.code).toBe('UNAUTHENTICATED');
    const wrong = await fetch(`${h.url}/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}x` } });
    expect(wrong.status).toBe(401);
    await wrong.arrayBuffer();
    const ok = await fetch(`${h.url}/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } });
    expect(ok.status).toBe(200);
    expect(await ok.text()).toContain('signet_dependency_up');
  });

  it('/metrics takes the Bearer scheme in any case (RFC 9110), the token itself exactly', async () => {
    for (const scheme of ['bearer', 'BEARER', 'BeArEr']) {
      const r = await fetch(`${h.url}/metrics`, { headers: { authorization: `${scheme} ${METRICS_TOKEN}` } });
      expect(r.status, scheme).toBe(200);
      await r.arrayBuffer();
    }
    for (const authorization of [
      `bearer ${METRICS_TOKEN.toUpperCase()}`,
      `Basic ${METRICS_TOKEN}`,
      `Bearer${METRICS_TOKEN}`,
      METRICS_TOKEN,
    ]) {
      const r = await fetch(`${h.url}/metrics`, { headers: { authorization } });
      expect(r.status, authorization).toBe(401);
      await r.arrayBuffer();
    }
  });

  it('a flood of /readyz probes the database about once a second, not once a call', async () => {
    await fetch(`${h.url}/readyz`).then((r) => r.arrayBuffer());
    // The ping runs on a connection of its own (db/connect.ts), not through the statement log.
    const db = h.container.db;
    const ping = db.ping;
    let pings = 0;
    db.ping = () => {
      pings++;
      return ping();
    };
    statements.length = 0;
    // Past the first round's second: the flood below starts a round of its own.
    await new Promise((r) => setTimeout(r, 1100));
    const started = performance.now();
    const answers = await Promise.all(Array.from({ length: 50 }, () => fetch(`${h.url}/readyz`)));
    for (let i = 0; i < 50; i++) answers.push(await fetch(`${h.url}/readyz`));
    const elapsed = performance.now() - started;
    for (const r of answers) {
      expect(r.status).toBe(200);
      await r.arrayBuffer();
    }
    db.ping = ping;
    // 100 answers: one round of probes per second at most (plus the one in flight at the start).
    expect(pings).toBeGreaterThanOrEqual(1);
    expect(pings).toBeLessThanOrEqual(Math.ceil(elapsed / 1000) + 1);
    expect(statements).toEqual([]);
  });
});

describe('signet_clock_offset_seconds: this node against PostgreSQL', () => {
  const scrape = async (h: Harness) => {
    const r = await fetch(`${h.url}/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } });
    expect(r.status).toBe(200);
    const line = (await r.text()).split('\n').find((l) => l.startsWith('signet_clock_offset_seconds '));
    return line === undefined ? undefined : Number(line.split(' ')[1]);
  };

  it('is measured at each round of probes, by the clock the node signs with', async () => {
    // A node 90 s ahead of the primary (the harness' clock is what it signs and leases by).
    const ahead = await startHarness({
      driver: 'local',
      env: { METRICS_TOKEN },
      clock: { now: () => Date.now() + 90_000 },
    });
    const same = await startHarness({ driver: 'local', env: { METRICS_TOKEN } });
    try {
      const offset = await scrape(ahead);
      expect(offset).toBeGreaterThan(89.5);
      expect(offset).toBeLessThan(90.5);
      expect(Math.abs((await scrape(same))!)).toBeLessThan(0.5);
    } finally {
      await ahead.close();
      await same.close();
    }
  });

  it("is not exported on embedded PGlite, which runs on the node's own clock", async () => {
    const embedded = await startHarness({ driver: 'local', database: 'pglite', env: { METRICS_TOKEN } });
    try {
      expect(await scrape(embedded)).toBeUndefined();
    } finally {
      await embedded.close();
    }
  });
});
