import { GraphQLError } from 'graphql';
import { ERROR_CODES, type ErrorCode } from '../../errors.js';

/** Codes yoga gives its own request errors, and the code of the one error table each one is. */
const RENAMED: Record<string, ErrorCode> = {
  REQUEST_ENTITY_TOO_LARGE: 'PAYLOAD_TOO_LARGE',
  BAD_REQUEST: 'BAD_USER_INPUT',
  // operationName names no operation of the document
  OPERATION_RESOLUTION_FAILURE: 'BAD_USER_INPUT',
};

/** yoga's codeless request errors (CSRF, method, multipart fields) by their HTTP status. */
const BY_STATUS: Record<number, ErrorCode> = {
  401: 'UNAUTHENTICATED',
  403: 'FORBIDDEN',
  413: 'PAYLOAD_TOO_LARGE',
  415: 'UNSUPPORTED_MEDIA_TYPE',
};

/**
 * yoga's request errors (body too large, invalid JSON or multipart, CSRF header missing, wrong
 * method) with a code of the error table; everything they describe is the client's request.
 */
export function withTableCode(error: GraphQLError): GraphQLError {
  const code = error.extensions?.['code'];
  let renamed: ErrorCode | undefined;
  if (typeof code === 'string') renamed = RENAMED[code];
  else if (code === undefined) {
    const status = (error.extensions?.['http'] as { status?: number } | undefined)?.status;
    renamed = (status && BY_STATUS[status]) || 'BAD_USER_INPUT';
  }
  if (!renamed) return error;
  return new GraphQLError(error.message, {
    nodes: error.nodes,
    path: error.path,
    extensions: { http: { status: ERROR_CODES[renamed] }, ...error.extensions, code: renamed },
  });
}
