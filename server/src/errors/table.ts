/**
 * The one error table: every failure Signet reports, with the code clients see (GraphQL
 * `extensions.code`, REST `error.code`), the HTTP status a REST route answers with, and the
 * headers that belong to it. Nothing else in the code base picks a status or a code.
 * See docs/architecture.md, "Errors".
 */
export interface FailureSpec {
  /** The client-visible code. */
  readonly code: string;
  readonly status: number;
  /** Headers every response of this failure carries. */
  readonly headers?: Readonly<Record<string, string>>;
  /** Retry-After (seconds) when the failure is temporary and the error does not say otherwise. */
  readonly retryAfterSeconds?: number;
  /**
   * The code in a GraphQL response when the failure can happen there, or null for failures of
   * REST routes only (a GraphQL client knows no 405 or 416).
   */
  readonly graphqlCode: string | null;
}

const spec = <const T extends FailureSpec>(s: T) => s;

export const ERROR_TABLE = {
  BAD_USER_INPUT: spec({ code: 'BAD_USER_INPUT', status: 400, graphqlCode: 'BAD_USER_INPUT' }),
  /** graphql-js could not parse the document (yoga's own code for it). */
  GRAPHQL_PARSE_FAILED: spec({
    code: 'GRAPHQL_PARSE_FAILED',
    status: 400,
    graphqlCode: 'GRAPHQL_PARSE_FAILED',
  }),
  /** The document does not validate against the schema (yoga's own code for it). */
  GRAPHQL_VALIDATION_FAILED: spec({
    code: 'GRAPHQL_VALIDATION_FAILED',
    status: 400,
    graphqlCode: 'GRAPHQL_VALIDATION_FAILED',
  }),
  UNAUTHENTICATED: spec({
    code: 'UNAUTHENTICATED',
    status: 401,
    headers: { 'www-authenticate': 'Bearer' },
    graphqlCode: 'UNAUTHENTICATED',
  }),
  FORBIDDEN: spec({ code: 'FORBIDDEN', status: 403, graphqlCode: 'FORBIDDEN' }),
  NOT_FOUND: spec({ code: 'NOT_FOUND', status: 404, graphqlCode: 'NOT_FOUND' }),
  /** REST routes answer GET and HEAD only. */
  METHOD_NOT_ALLOWED: spec({
    code: 'BAD_USER_INPUT',
    status: 405,
    headers: { allow: 'GET, HEAD' },
    graphqlCode: null,
  }),
  PAYLOAD_TOO_LARGE: spec({ code: 'PAYLOAD_TOO_LARGE', status: 413, graphqlCode: 'PAYLOAD_TOO_LARGE' }),
  UNSUPPORTED_MEDIA_TYPE: spec({
    code: 'UNSUPPORTED_MEDIA_TYPE',
    status: 415,
    graphqlCode: 'UNSUPPORTED_MEDIA_TYPE',
  }),
  /**
   * A variant cannot be made of the stored object (corrupt, truncated, not a raster image, or more
   * pixels than any upload may have). The request was fine and a retry will not help; the
   * original itself is still served. REST only (`/local-bucket`, the s3 driver's variants).
   */
  VARIANT_FAILED: spec({ code: 'VARIANT_FAILED', status: 422, graphqlCode: null }),
  /** A Range that cannot be served (the error carries its `content-range: bytes *\/size`). */
  RANGE_NOT_SATISFIABLE: spec({ code: 'BAD_USER_INPUT', status: 416, graphqlCode: null }),
  RATE_LIMITED: spec({
    code: 'RATE_LIMITED',
    status: 429,
    retryAfterSeconds: 60,
    graphqlCode: 'RATE_LIMITED',
  }),
  INTERNAL_SERVER_ERROR: spec({
    code: 'INTERNAL_SERVER_ERROR',
    status: 500,
    graphqlCode: 'INTERNAL_SERVER_ERROR',
  }),
  /** The object store failed a request Signet made for the client (stream mode, uploads). */
  BAD_GATEWAY: spec({
    code: 'BAD_GATEWAY',
    status: 502,
    retryAfterSeconds: 5,
    graphqlCode: 'SERVICE_UNAVAILABLE',
  }),
  /** A dependency that must answer (the database; storage for writes) is away: retry shortly. */
  SERVICE_UNAVAILABLE: spec({
    code: 'SERVICE_UNAVAILABLE',
    status: 503,
    retryAfterSeconds: 5,
    graphqlCode: 'SERVICE_UNAVAILABLE',
  }),
} as const satisfies Record<string, FailureSpec>;

export type Failure = keyof typeof ERROR_TABLE;

/** The codes a GraphQL response may carry (the schema's documented `extensions.code` values). */
export const GRAPHQL_CODES = [
  ...new Set(
    Object.values(ERROR_TABLE as Record<string, FailureSpec>)
      .map((s) => s.graphqlCode)
      .filter((c): c is string => c !== null),
  ),
];

/** The failure a client-visible GraphQL code stands for (yoga's own request errors carry one). */
export function failureOfCode(code: string): Failure | undefined {
  return code in ERROR_TABLE && ERROR_TABLE[code as Failure].graphqlCode === code
    ? (code as Failure)
    : undefined;
}
