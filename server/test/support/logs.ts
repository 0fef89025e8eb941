import { Writable } from 'node:stream';
import { createLogger, type Logger } from '../../src/logger.js';

/** The product's logger writing its JSON lines into `logs`, so a test can read what was logged. */
export function captureLogger(level = 'info'): { logger: Logger; logs: string[] } {
  const logs: string[] = [];
  const logger = createLogger(
    level,
    new Writable({
      write(chunk, _enc, cb) {
        logs.push(chunk.toString());
        cb();
      },
    }),
  );
  return { logger, logs };
}
