/**
 * True for errors that mean "the database is not there", as opposed to a bad statement. pg and
 * pg-pool report some connection failures with a code and others (pool timeouts, a connection
 * cut mid-query) only with a message: this is the one place that knows both. No imports, so the
 * error table can use it without loading a database driver.
 */
export function isDatabaseUnavailable(err: unknown): boolean {
  const e = err as { code?: string; message?: string; routine?: string } | undefined;
  if (!e) return false;
  // A protocol violation PostgreSQL itself reports (it names the routine; PgBouncer's errors,
  // 08P01 too, name none) is a bug of the client, e.g. more than 65,535 bind parameters, not an
  // outage: it stays unexpected, and does not mark a replica down.
  if (e.code === '08P01' && e.routine !== undefined) return false;
  if (e.code && /^(ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|ENOTFOUND|57P0[1-3]|08\w{3}|53300)$/.test(e.code))
    return true;
  // Refused at connection time by the server itself: the database switched off for maintenance
  // (`allow_connections false`: 55000, a code PostgreSQL also uses for statements, so only with
  // its connection message), dropped or renamed (3D000), or this node's credentials no longer
  // accepted (28000, 28P01: a password rotated before the node's). No request can get through.
  if (e.code === '3D000' || e.code === '28000' || e.code === '28P01') return true;
  if (e.code === '55000' && /is not currently accepting connections/.test(e.message ?? '')) return true;
  return /timeout exceeded when trying to connect|Connection terminated|connect ECONNREFUSED|the database system is (starting|shutting) up|Client has encountered a connection error/i.test(
    e.message ?? '',
  );
}

/**
 * True for errors that mean "the database is there but could not do this now", which the same
 * request may well get through a moment later: the statement timeout (57014, also a cancel by an
 * operator's pg_cancel_backend), a lock not granted (55P03), a serialization failure or deadlock
 * (40001, 40P01), and the server out of a resource (class 53: memory, disk, connections). Not a
 * bad statement, so not the client's fault nor an unexpected error: SERVICE_UNAVAILABLE.
 * PostgreSQL logs the statement itself (log_min_error_statement), which is where an operator
 * finds which one it was (docs/operations.md, "Runbook": the database is slow).
 */
export function isDatabaseBusy(err: unknown): boolean {
  const code = (err as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' && /^(57014|55P03|40001|40P01|53\w\w\w)$/.test(code);
}

/**
 * Whether an error says the database server is not there at all (refused, no such host, shut down
 * or starting, its connection cut), as opposed to there but busy (too many connections, a
 * statement timeout, no free connection in this node's pool) or a protocol error: only then can
 * it be taking no writes (db/read-replica.ts keeps a replica of a primary gone in use). pg reports a refused connection to a name with several addresses as an
 * AggregateError with a code and no message.
 */
export function isDatabaseGone(err: unknown): boolean {
  for (let e: unknown = err; e instanceof Error; e = e.cause) {
    const code = (e as { code?: unknown }).code;
    if (
      typeof code === 'string' &&
      /^(ECONNREFUSED|ENOTFOUND|EHOSTUNREACH|ENETUNREACH|57P0[1-3])$/.test(code)
    )
      return true;
    if (
      /connect ECONNREFUSED|Connection terminated|the database system is (starting|shutting) up/i.test(
        e.message,
      )
    )
      return true;
  }
  return false;
}

/**
 * An error's words: its message, or its code when it has none (pg reports a refused connection
 * to a name with several addresses as an AggregateError with a code and an empty message).
 */
export function describeError(err: unknown): string {
  const e = err as { message?: unknown; code?: unknown } | null | undefined;
  if (typeof e?.message === 'string' && e.message) return e.message;
  if (typeof e?.code === 'string') return e.code;
  return String(err);
}
