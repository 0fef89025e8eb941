// A Redis client's errors that say Redis cannot be reached, as opposed to a command's failure
// (the Redis side of what db/unavailable.ts is for PostgreSQL).
const UNREACHABLE =
  /ECONNREFUSED|ECONNRESET|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|ENOTFOUND|EAI_AGAIN|EPIPE|Connection is closed|All sentinels are unreachable|None of startup nodes is available|Failed to refresh slots cache/;

/** Whether a Redis client's error says Redis cannot be reached (rather than a command's failure). */
export function isRedisUnreachable(err: Error & { code?: string }): boolean {
  return UNREACHABLE.test(err.code ?? '') || UNREACHABLE.test(err.message);
}
