/**
 * True for errors that mean "the database is not there", as opposed to a bad statement. pg and
 * pg-pool report some connection failures with a code and others (pool timeouts, a connection
 * cut mid-query) only with a message: this is the one place that knows both. No imports, so the
 * error table can use it without loading a database driver.
 */
export function isDatabaseUnavailable(err: unknown): boolean {
  const e = err as { code?: string; message?: string } | undefined;
  if (!e) return false;
  if (e.code && /^(ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|ENOTFOUND|57P0[1-3]|08\w\w|53300)$/.test(e.code))
    return true;
  return /timeout exceeded when trying to connect|Connection terminated|connect ECONNREFUSED|the database system is (starting|shutting) up|Client has encountered a connection error/i.test(
    e.message ?? '',
  );
}
