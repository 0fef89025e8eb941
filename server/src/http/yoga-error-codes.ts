import { GraphQLError } from 'graphql';
import { ERROR_TABLE, type Failure, failureOfCode } from '../errors/index.js';

/** Codes yoga gives its own request errors, and the failure of the error table each one is. */
const RENAMED: Record<string, Failure> = {
  REQUEST_ENTITY_TOO_LARGE: 'PAYLOAD_TOO_LARGE',
  BAD_REQUEST: 'BAD_USER_INPUT',
  // operationName names no operation of the document
  OPERATION_RESOLUTION_FAILURE: 'BAD_USER_INPUT',
};

/** yoga's codeless request errors (CSRF, method, multipart fields) by their HTTP status. */
const BY_STATUS: Record<number, Failure> = {
  401: 'UNAUTHENTICATED',
  403: 'FORBIDDEN',
  413: 'PAYLOAD_TOO_LARGE',
  415: 'UNSUPPORTED_MEDIA_TYPE',
};

/**
 * The headers of which a GET or a form, multipart or text POST to /graphql must carry one (any
 * value): a browser sends such a request cross-site without asking the server first (no CORS
 * preflight), and a custom header is what it cannot add there.
 */
export const CSRF_HEADERS = ['x-graphql-yoga-csrf', 'apollo-require-preflight'] as const;

/** yoga's CSRF refusal names no header; a curl user is told which one to send. */
const YOGA_CSRF_MESSAGE = 'Required CSRF header(s) not present';
const CSRF_MESSAGE = `A GET or a form, multipart or text POST to /graphql must carry the header ${CSRF_HEADERS[0]}: 1 (or ${CSRF_HEADERS[1]}: true), so that another site cannot make a browser send it`;

/**
 * graphql-js' and yoga's own errors with a code of the error table. graphql-js reports parse,
 * validation and variable-coercion errors with no code at all: every one of them describes the
 * client's document or variables, so they are BAD_USER_INPUT (and keep the status yoga chose).
 * yoga's request errors (body too large, invalid JSON or multipart, CSRF header missing, wrong
 * method) carry a code of their own or only an HTTP status; they are renamed to the table's.
 */
export function withTableCode(error: GraphQLError): GraphQLError {
  const code = error.extensions?.['code'];
  const http = error.extensions?.['http'] as { status?: number } | undefined;
  let failure: Failure | undefined;
  if (typeof code === 'string') {
    if (failureOfCode(code)) return error;
    failure = RENAMED[code] ?? 'BAD_USER_INPUT';
  } else if (http?.status) {
    failure = BY_STATUS[http.status] ?? 'BAD_USER_INPUT';
  } else {
    return new GraphQLError(error.message, {
      nodes: error.nodes,
      path: error.path,
      extensions: { ...error.extensions, code: 'BAD_USER_INPUT' },
    });
  }
  const spec = ERROR_TABLE[failure];
  // yoga puts the parser's error in `originalError`, whose message quotes the body it choked on
  // (up to the whole megabyte): a refusal never echoes more than a short excerpt of the request.
  // (The field stays: yoga reads the HTTP status of a request error with it present.)
  const extensions = { ...error.extensions };
  const original = extensions['originalError'] as { name?: unknown; message?: unknown } | undefined;
  if (original && typeof original === 'object' && typeof original.message === 'string') {
    extensions['originalError'] = { name: original.name, message: `${original.message.slice(0, 120)}…` };
  }
  const message =
    failure === 'FORBIDDEN' && error.message === YOGA_CSRF_MESSAGE ? CSRF_MESSAGE : error.message;
  return new GraphQLError(message, {
    nodes: error.nodes,
    path: error.path,
    extensions: { http: { status: spec.status }, ...extensions, code: spec.graphqlCode ?? spec.code },
  });
}
