import { Kysely, PostgresDialect, sql } from 'kysely';
import pg from 'pg';
import type { Logger } from '../logger.js';
import { pgTypes } from './pg-types.js';
import { requestStatementTimeout } from './statement-timeout.js';
import type { Database } from './types.js';
import { describeError, isDatabaseGone } from './unavailable.js';

export interface ReadReplicaOptions {
  /** DATABASE_READ_URL. */
  url: string;
  /** The primary, asked for its WAL position at every poll. */
  primary: Kysely<Database>;
  /** DATABASE_READ_MAX_LAG_MS: a replica further behind than this is skipped. */
  maxLagMs: number;
  logger: Pick<Logger, 'warn' | 'info'>;
  poolSize?: number;
  /**
   * The URL may be a pooler (DATABASE_DIRECT_URL is set): no startup statement timeout, which
   * PgBouncer refuses (db/statement-timeout.ts).
   */
  pooled?: boolean;
  /** Told every state the poller sets (the container feeds the replica gauges with it). */
  onState?: (state: ReplicaState) => void;
}

/** The replica as the poller last saw it. */
export interface ReplicaState {
  /**
   * Reachable, replaying, no further behind than the bound, and not past the primary (diverged):
   * reads may go to it.
   */
  usable: boolean;
  /**
   * How far behind the primary it was at the last poll (ms, at most one poll interval too high);
   * while it has replayed none of the primary's sampled positions, only a lower bound. With the
   * primary out of reach, measured against the last position it gave, as for an idle primary
   * (0: the replica has replayed all of it). `Infinity` when it could not be measured at all
   * (the replica unreachable, not a replica, or diverged, or the primary never reached): it serves
   * no reads.
   */
  lagMs: number;
  /** Why it is not usable. */
  reason: string | undefined;
}

/**
 * A PostgreSQL streaming replica for reads, watched by a poller (docs/operations.md, "PostgreSQL
 * read replica"). Every poll notes the primary's WAL position (`pg_current_wal_lsn()`) with the
 * time, then asks the replica how far it has replayed (`pg_last_wal_replay_lsn()`): its lag is the
 * age of the newest primary position it has replayed. An idle primary writes nothing, so a
 * replica that has replayed everything is 0 behind however old its last transaction is (which
 * `now() - pg_last_xact_replay_timestamp()` would count as lag).
 *
 * A primary out of reach (stopped, crashed) takes no writes: the poller counts it as an idle
 * primary still at the last position it gave, so a replica that has replayed that position is as
 * current as any database can be and stays in use (0 behind, not aged by the time since the
 * primary last answered), and says once that the primary is unreachable and whether the replica
 * serves reads. The first poll's verdict is logged when the replica is not usable (later ones
 * only when usability changes), so a DATABASE_READ_URL unusable from the start names its reason.
 *
 * A replica that has replayed past the primary's current position holds WAL the primary never
 * wrote: it has split off from it (the primary restored from a backup, or a failover to a server
 * that had received less than this one), and its rows are not the primary's, so it is skipped as
 * diverged until it is rebuilt. Comparing positions alone would call it 0 behind.
 */
export class ReadReplica {
  readonly kysely: Kysely<Database>;
  readonly pollMs: number;
  private readonly samples: { at: number; lsn: bigint }[] = [];
  private current: ReplicaState = {
    usable: false,
    lagMs: Number.POSITIVE_INFINITY,
    reason: 'not polled yet',
  };
  /** Whether a verdict was given yet (the first one is logged even when it is "not usable"). */
  private judged = false;
  /** Why the primary's position could not be read at the last poll; undefined while it answers. */
  private primaryDown: string | undefined;
  /** The replay position at which the replica was found diverged, and why (replicaVerdict). */
  private diverged: { at: bigint; reason: string } | undefined;
  private timer: NodeJS.Timeout | undefined;
  private polling: Promise<void> | undefined;
  private closed = false;

  constructor(private readonly o: ReadReplicaOptions) {
    const pool = new pg.Pool({
      connectionString: o.url,
      max: o.poolSize ?? 10,
      // A replica that is away costs one short wait, then reads go to the primary.
      connectionTimeoutMillis: 1000,
      // A replica that hangs mid-read fails the read, which is then run on the primary.
      query_timeout: 2000,
      idleTimeoutMillis: 30_000,
      ...requestStatementTimeout(o.pooled === true),
      types: pgTypes,
    });
    pool.on('error', () => {});
    pool.on('connect', (client) => client.on('error', () => {}));
    this.kysely = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
    // Often enough that a lag over the bound is seen within a quarter of it.
    this.pollMs = Math.max(50, Math.min(1000, Math.floor(o.maxLagMs / 4)));
  }

  /** Polls once now (reads go to the primary until a poll finds the replica usable), then on a timer. */
  async start(): Promise<void> {
    await this.poll();
    const tick = () => {
      this.timer = setTimeout(async () => {
        await this.poll();
        if (!this.closed) tick();
      }, this.pollMs);
      this.timer.unref();
    };
    tick();
  }

  get state(): ReplicaState {
    return this.current;
  }

  /** A read on the replica failed for want of a server: skip it until a poll finds it again. */
  markDown(err: Error): void {
    this.set({ usable: false, lagMs: Number.POSITIVE_INFINITY, reason: `read failed: ${err.message}` });
  }

  poll(): Promise<void> {
    this.polling ??= this.pollOnce().finally(() => {
      this.polling = undefined;
    });
    return this.polling;
  }

  private async pollOnce(): Promise<void> {
    const now = Date.now();
    let primaryDown: string | undefined;
    /** The primary's position read by this poll (undefined when it could not be read). */
    let sampled: bigint | undefined;
    try {
      sampled = await this.primaryLsn();
      this.samples.push({ at: now, lsn: sampled });
    } catch (err) {
      // A primary that is not there (stopped, crashed, no such host) takes no writes: its
      // position now is still the last it gave, as an idle primary's would be. So a replica
      // that has replayed it is 0 behind (not aged by the time since the primary last
      // answered), one that has not is as far behind as with an idle primary, and once the
      // primary is back the outage does not count as lag. A primary that answers but fails
      // the poll (busy: a statement timeout, too many connections), or a pool with no connection
      // free for the poll (a busy node), may be taking writes: its last position then ages as
      // before (isDatabaseGone says which is which).
      if (isDatabaseGone(err)) {
        primaryDown = describeError(err);
        const last = this.samples.at(-1);
        if (last) this.samples.push({ at: now, lsn: last.lsn });
      }
    }
    // Enough history to tell "behind by the bound" from "behind by more".
    while (this.samples.length > 2 && this.samples[0]!.at < now - 2 * this.o.maxLagMs - this.pollMs)
      this.samples.shift();
    const verdict = await this.replicaVerdict(now, primaryDown !== undefined, sampled);
    // A replica that has not yet replayed the positions sampled since start, but could still be
    // within the bound, is not judged yet: a primary that wrote just before the first poll (this
    // node's own migrations, another node's writes) leaves a caught-up replica a few ms behind
    // it, and logging that as "skipped" would warn at every start. It is judged (and logged) at
    // the first poll that finds it in use, or behind by more than the bound.
    const undecided =
      !this.judged && verdict.lagMs <= this.o.maxLagMs && verdict.reason?.startsWith(LAG_UNKNOWN) === true;
    this.set(verdict, undecided);
    this.notePrimary(primaryDown);
  }

  /** The primary's current WAL position. */
  private async primaryLsn(): Promise<bigint> {
    const p = await sql<{ lsn: string }>`select pg_current_wal_lsn()::text as lsn`.execute(this.o.primary);
    return parseLsn(p.rows[0]!.lsn);
  }

  /**
   * The replica's state from its replay position and the primary positions sampled so far.
   * `sampled`: the primary's position read by this poll, before the replica was asked.
   */
  private async replicaVerdict(
    now: number,
    primaryDown: boolean,
    sampled: bigint | undefined,
  ): Promise<ReplicaState> {
    const unmeasured = Number.POSITIVE_INFINITY;
    let replayed: bigint;
    let replayedText: string;
    try {
      const r = await sql<{
        lsn: string | null;
      }>`select pg_last_wal_replay_lsn()::text as lsn`.execute(this.kysely);
      const lsn = r.rows[0]?.lsn;
      if (!lsn)
        return { usable: false, lagMs: unmeasured, reason: 'not a streaming replica (not in recovery)' };
      replayed = parseLsn(lsn);
      replayedText = lsn;
    } catch (err) {
      return { usable: false, lagMs: unmeasured, reason: `unreachable: ${describeError(err)}` };
    }
    // Still where it was found diverged: it still holds what the primary never wrote, even once
    // the primary has written past that position (it can then look current, or only behind). A
    // replica split off by a promotion cannot follow the new timeline and stays there; one that
    // was rebuilt, or replays anything more, is judged afresh.
    if (this.diverged?.at === replayed)
      return { usable: false, lagMs: unmeasured, reason: this.diverged.reason };
    this.diverged = undefined;
    // A follower replays only WAL the primary has written, so it is never past the primary's
    // position read after its own. It may well be past this poll's sample, read before it was
    // asked (it replays writes made in between within milliseconds): only then is the primary
    // asked again, and the replica is diverged only if it is past that reading too. With the
    // primary out of reach (or failing the poll) this cannot be told, and it is judged as before.
    if (sampled !== undefined && replayed > sampled) {
      let current: bigint | undefined;
      try {
        current = await this.primaryLsn();
      } catch {
        current = undefined;
      }
      if (current !== undefined && replayed > current) {
        const reason = `${DIVERGED}has replayed past the primary's current position (${replayedText} > ${formatLsn(current)}); rebuild it from the primary (pg_basebackup)`;
        this.diverged = { at: replayed, reason };
        return { usable: false, lagMs: unmeasured, reason };
      }
    }
    const oldest = this.samples[0];
    if (!oldest)
      return {
        usable: false,
        lagMs: unmeasured,
        reason: "lag unknown: the primary's position could not be read",
      };
    const primary = primaryDown ? ' (the primary unreachable)' : '';
    // The newest primary position it has replayed was the primary's this long ago.
    let newestReplayed: number | undefined;
    for (const s of this.samples) if (s.lsn <= replayed) newestReplayed = s.at;
    if (newestReplayed === undefined) {
      // None of the positions sampled so far: it is at least as far behind as the oldest one,
      // and how much further is unknown. At start that oldest sample is this poll's own, so a
      // replica far behind (replay paused, a long catch-up) would look a few ms behind; it is
      // skipped until it replays a position we sampled. A caught-up replica of an idle primary
      // has replayed this poll's position already, so it comes into use at the first poll.
      return {
        usable: false,
        lagMs: now - oldest.at,
        reason: `${LAG_UNKNOWN}${now - oldest.at} ms ago${primary}`,
      };
    }
    const lagMs = now - newestReplayed;
    return lagMs <= this.o.maxLagMs
      ? { usable: true, lagMs, reason: undefined }
      : { usable: false, lagMs, reason: `${lagMs} ms behind (bound ${this.o.maxLagMs} ms)${primary}` };
  }

  /** Logs once when the primary stops answering the poll (saying whether reads go on), and when it is back. */
  private notePrimary(down: string | undefined): void {
    const was = this.primaryDown;
    this.primaryDown = down;
    if (down !== undefined && was === undefined) {
      if (this.current.usable)
        this.o.logger.warn(
          { err: down, lagMs: this.current.lagMs },
          'primary unreachable: the read replica serves reads',
        );
      else
        this.o.logger.warn(
          { err: down, reason: this.current.reason },
          'primary unreachable, and the read replica cannot serve reads either',
        );
    } else if (down === undefined && was !== undefined) {
      this.o.logger.info({ replicaUsable: this.current.usable }, 'primary reachable again');
    }
  }

  /** `undecided`: the first verdict is not given yet (pollOnce says when); the state is still set. */
  private set(next: ReplicaState, undecided = false): void {
    // The first verdict is logged even when it is "not usable" (the state before it says so
    // too): a DATABASE_READ_URL unusable from the start names its reason once.
    const first = !this.judged && !undecided;
    if (!undecided) this.judged = true;
    if (next.usable !== this.current.usable || (first && !next.usable)) {
      if (next.usable) this.o.logger.info({ lagMs: next.lagMs }, 'read replica in use');
      else this.o.logger.warn({ reason: next.reason }, 'read replica skipped: reads go to the primary');
    }
    this.current = next;
    this.o.onState?.(next);
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    await this.polling;
    await this.kysely.destroy();
  }
}

/** The reason's start while the replica has replayed none of the primary's sampled positions. */
const LAG_UNKNOWN = "lag unknown: has not replayed the primary's position of ";

/** The start of the reason for a replica that has split off from the primary (replicaVerdict). */
export const DIVERGED = 'diverged: ';

/** A pg_lsn (`16/B374D848`: two hex halves of a 64-bit WAL position) as a number. */
export function parseLsn(text: string): bigint {
  const m = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/.exec(text);
  if (!m) throw new Error(`not a pg_lsn: ${text}`);
  return (BigInt(`0x${m[1]}`) << 32n) | BigInt(`0x${m[2]}`);
}

/** A WAL position as PostgreSQL writes a pg_lsn (`16/B374D848`). */
export function formatLsn(lsn: bigint): string {
  return `${(lsn >> 32n).toString(16).toUpperCase()}/${(lsn & 0xffffffffn).toString(16).toUpperCase()}`;
}
