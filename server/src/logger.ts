import pino, { type Logger } from 'pino';

export type { Logger };

/** Structured logs; anything that looks like a secret or a signature is redacted. */
export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'signet' },
      redact: {
        paths: [
          'req.headers.authorization',
          'req.headers.cookie',
          'headers.authorization',
          'authorization',
          'token',
          'secret',
          'url',
          '*.secretKey',
          '*.secretId',
        ],
        censor: '[redacted]',
      },
    },
    destination,
  );
}
