/**
 * The statement timeout of the pools that serve requests: a query that runs longer fails
 * instead of holding a request and a connection. It is sent as a startup parameter, which costs
 * no statement. PgBouncer refuses every startup parameter it does not track ("unsupported startup
 * parameter: statement_timeout"), so behind a pooler (DATABASE_DIRECT_URL set) none is sent and
 * the timeout is the role's: `alter role … set statement_timeout = '10s'` (docs/operations.md,
 * "PgBouncer").
 */
export const REQUEST_STATEMENT_TIMEOUT_MS = 10_000;

/** The pg pool options that set it, or none behind a pooler. */
export function requestStatementTimeout(pooled: boolean): { statement_timeout?: number } {
  return pooled ? {} : { statement_timeout: REQUEST_STATEMENT_TIMEOUT_MS };
}
