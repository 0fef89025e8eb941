import pino, { type Logger } from 'pino';

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
 * Structured logs. Lines about one request (its access line, an unexpected error, an origin that
 * failed it) name its `requestId` themselves (docs/architecture.md, "Request ids and logging"),
 * and anything that looks like a secret or a signature is redacted.
 */
export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'signet' },
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
