import pino, { type Logger } from 'pino';
import { currentRequestId } from './lib/request-scope.js';

export type { Logger };

/** Fields that can hold credentials, signed URLs or capability tokens, at any of two depths. */
const SECRET_FIELDS = [
  'authorization',
  'cookie',
  'token',
  'secret',
  'secretKey',
  'secretId',
  'securityToken',
  'url',
  'location',
  'query',
];

/**
 * Structured logs. Every line written while a request is being handled carries its request id
 * (read from the request's async scope), and anything that looks like a secret or a signature is
 * redacted.
 */
export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'signet' },
      mixin() {
        const requestId = currentRequestId();
        return requestId ? { requestId } : {};
      },
      redact: {
        paths: [
          ...SECRET_FIELDS,
          ...SECRET_FIELDS.map((f) => `*.${f}`),
          'req.headers.authorization',
          'req.headers.cookie',
          'err.cause.url',
          'err.cause.headers',
        ],
        censor: '[redacted]',
      },
    },
    destination,
  );
}
