import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isDatabaseUnavailable } from '../../src/db/unavailable.js';
import { createTestDatabase } from '../support/database.js';
import { testDatabaseUrl, testRedisUrl } from '../support/env.js';
import { type Harness, startHarness } from '../support/harness.js';

// A database that refuses this node's connections (switched off for maintenance, dropped, or the
// node's password rotated away) is the database unavailable: a 503 SERVICE_UNAVAILABLE the client
// retries, and the runbook's alert, not a masked INTERNAL_SERVER_ERROR logged as unexpected.

const PAGE = 'query { images(first: 10) { edges { node { id } } } }';

/** A statement on the server's maintenance database (never the test's own). */
async function admin(statement: string): Promise<void> {
  const c = new pg.Client({ connectionString: testDatabaseUrl() });
  await c.connect();
  try {
    await c.query(statement);
  } finally {
    await c.end();
  }
}

describe('a database that refuses connections', () => {
  let pgdb: Awaited<ReturnType<typeof createTestDatabase>>;
  let name: string;
  let h: Harness;

  beforeAll(async () => {
    pgdb = await createTestDatabase();
    name = new URL(pgdb.url).pathname.slice(1);
    h = await startHarness({ redis: testRedisUrl(), env: { DATABASE_URL: pgdb.url } });
  }, 60_000);
  afterAll(async () => {
    await admin(`alter database ${name} allow_connections true`).catch(() => {});
    await h?.close();
    await pgdb?.drop();
  });

  it('switched off (allow_connections false): SERVICE_UNAVAILABLE, nothing logged as unexpected, and pages again once it is back', async () => {
    const token = await h.token('alice');
    expect((await h.gql(PAGE, {}, { token })).errors).toBeUndefined();

    await admin(`alter database ${name} allow_connections false`);
    // The node's pooled connections end too, as a maintenance window's would.
    await admin(`select pg_terminate_backend(pid) from pg_stat_activity where datname = '${name}'`);
    const logsBefore = h.logs.length;
    const refused = await h.gql(PAGE, {}, { token });
    expect(refused.errors?.[0]?.extensions).toMatchObject({ code: 'SERVICE_UNAVAILABLE', retryAfter: 5 });
    expect(h.logs.slice(logsBefore).filter((l) => l.includes('unexpected error'))).toEqual([]);

    await admin(`alter database ${name} allow_connections true`);
    expect((await h.gql(PAGE, {}, { token })).errors).toBeUndefined();
  }, 30_000);

  it('the codes PostgreSQL refuses a connection with are "unavailable"; 55000 only with its connection message', async () => {
    const coded = (code: string, message: string) => Object.assign(new Error(message), { code });
    expect(
      isDatabaseUnavailable(coded('55000', `database "${name}" is not currently accepting connections`)),
    ).toBe(true);
    expect(isDatabaseUnavailable(coded('3D000', 'database "gone" does not exist'))).toBe(true);
    expect(isDatabaseUnavailable(coded('28P01', 'password authentication failed for user "signet"'))).toBe(
      true,
    );
    expect(isDatabaseUnavailable(coded('28000', 'no pg_hba.conf entry for host'))).toBe(true);
    // The same code for a statement's own state is a bug to hear about, not an outage.
    expect(
      isDatabaseUnavailable(coded('55000', 'currval of sequence "s" is not yet defined in this session')),
    ).toBe(false);
  });
});
