import { type Harness, startHarness } from '../../support/harness.js';
import { until } from './load.js';
import { OwnedPostgres, sqlOn } from './owned-postgres.js';

/**
 * A private primary, a streaming replica of it (pg_basebackup -R) and a gateway in process (the
 * container, as main.ts builds it) with DATABASE_URL on the primary and DATABASE_READ_URL on the
 * replica, bounded by `maxLagMs`: the setting of the read-replica fault tests.
 */
export async function startReplicaPair(maxLagMs: number) {
  const primary = await OwnedPostgres.start();
  const replica = await primary.replica();
  const h: Harness = await startHarness({
    driver: 'cos',
    redis: 'memory',
    env: {
      DATABASE_URL: primary.url,
      DATABASE_READ_URL: replica.url,
      DATABASE_READ_MAX_LAG_MS: String(maxLagMs),
    },
  });
  return {
    primary,
    replica,
    h,
    /** Until the replica has replayed everything the primary has written so far. */
    async caughtUp(): Promise<void> {
      const [{ lsn }] = await sqlOn(primary.url, 'select pg_current_wal_lsn()::text as lsn');
      await until(
        'the replica caught up',
        async () =>
          (await sqlOn(replica.url, 'select pg_last_wal_replay_lsn() >= $1::pg_lsn as ok', [lsn]))[0].ok,
        10_000,
      );
    },
    /** Until the gateway's poller has judged the replica usable. */
    inUse: () =>
      until('the container to use the replica', () => h.container.readReplica!.state.usable, 10_000),
    async stop(): Promise<void> {
      await h.close();
      await replica.destroy();
      await primary.destroy();
    },
  };
}
