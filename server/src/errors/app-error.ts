import { GraphQLError } from 'graphql';
import { bytesInWords } from '../lib/byte-size.js';
import { ERROR_TABLE, type Failure, type FailureSpec } from './table.js';

export interface AppErrorOptions {
  /** Client-visible details (`extensions` in GraphQL; also in the REST body). */
  details?: Record<string, unknown>;
  /** Headers of this one response (e.g. `content-range` of a 416), on top of the table's. */
  headers?: Record<string, string>;
  /** Overrides the table's Retry-After. */
  retryAfterSeconds?: number;
  /**
   * Raised before execution (a request-level refusal in a yoga plugin): the GraphQL response
   * then carries the table's HTTP status too, not 200.
   */
  requestLevel?: boolean;
}

/**
 * An error meant for the client: its message is shown as it is, its code, status and headers
 * come from the error table. Thrown by the domain, REST routes and GraphQL resolvers alike;
 * rendered once per transport (http/render-error.ts; the GraphQL mask in http/error-mask.ts).
 */
export class AppError extends GraphQLError {
  readonly failure: Failure;
  readonly spec: FailureSpec;
  readonly retryAfterSeconds: number | undefined;
  private readonly extraHeaders: Record<string, string>;

  constructor(failure: Failure, message: string, options: AppErrorOptions = {}) {
    const spec: FailureSpec = ERROR_TABLE[failure];
    const retryAfterSeconds = options.retryAfterSeconds ?? spec.retryAfterSeconds;
    super(message, {
      extensions: {
        code: spec.graphqlCode ?? spec.code,
        ...(retryAfterSeconds !== undefined ? { retryAfter: retryAfterSeconds } : {}),
        ...options.details,
        ...(options.requestLevel
          ? { http: { status: spec.status, headers: { ...spec.headers, ...options.headers } } }
          : {}),
      },
    });
    this.name = 'AppError';
    this.failure = failure;
    this.spec = spec;
    this.retryAfterSeconds = retryAfterSeconds;
    this.extraHeaders = options.headers ?? {};
  }

  /** The code a REST body carries. */
  get code(): string {
    return this.spec.code;
  }

  get status(): number {
    return this.spec.status;
  }

  /** Every header of the REST response: the table's, Retry-After, then this error's own. */
  headers(): Record<string, string> {
    return {
      ...this.spec.headers,
      ...(this.retryAfterSeconds !== undefined ? { 'retry-after': String(this.retryAfterSeconds) } : {}),
      ...this.extraHeaders,
    };
  }
}

type Factory = (message?: string, options?: AppErrorOptions) => AppError;
const factory =
  (failure: Failure, fallback: string): Factory =>
  (message = fallback, options) =>
    new AppError(failure, message, options);

/** `argument` names the GraphQL argument (or query parameter) at fault. */
export const badInput = (message: string, details?: Record<string, unknown>, options?: AppErrorOptions) =>
  new AppError('BAD_USER_INPUT', message, { ...options, ...(details ? { details } : {}) });
export const unauthenticated = factory('UNAUTHENTICATED', 'Authentication required');
export const forbidden = factory('FORBIDDEN', 'Forbidden');
export const notFound = factory('NOT_FOUND', 'Not found');
export const methodNotAllowed = factory('METHOD_NOT_ALLOWED', 'Only GET and HEAD');
export const unsupportedMediaType = factory('UNSUPPORTED_MEDIA_TYPE', 'Unsupported media type');
export const rateLimited = (message: string, retryAfterSeconds: number) =>
  new AppError('RATE_LIMITED', message, { retryAfterSeconds });
export const variantFailed = factory('VARIANT_FAILED', 'A variant cannot be made of this object');
export const badGateway = factory('BAD_GATEWAY', 'The object store did not answer');
export const unavailable = factory('SERVICE_UNAVAILABLE', 'A dependency is unavailable; retry shortly');
export const internal = factory('INTERNAL_SERVER_ERROR', 'Unexpected error');

export function payloadTooLarge(
  maxBytes: number,
  message = `The file is larger than the upload limit of ${bytesInWords(maxBytes)}`,
  options?: AppErrorOptions,
): AppError {
  return new AppError('PAYLOAD_TOO_LARGE', message, { ...options, details: { maxBytes } });
}

export function rangeNotSatisfiable(size: number | undefined): AppError {
  return new AppError('RANGE_NOT_SATISFIABLE', 'Range not satisfiable', {
    ...(size !== undefined ? { headers: { 'content-range': `bytes */${size}` } } : {}),
  });
}

/** Walks `originalError`/`cause` links (yoga and graphql-js wrap errors) to find an AppError. */
export function findAppError(err: unknown): AppError | undefined {
  let cur: unknown = err;
  for (let i = 0; i < 5 && cur; i++) {
    if (cur instanceof AppError) return cur;
    cur =
      (cur as { originalError?: unknown; cause?: unknown }).originalError ??
      (cur as { cause?: unknown }).cause;
  }
  return undefined;
}
