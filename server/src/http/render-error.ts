import type { ServerResponse } from 'node:http';
import { type AppError, classify, internal } from '../errors/index.js';
import { requestIdOf } from '../lib/request-id.js';
import type { Logger } from '../logger.js';

/**
 * The one place a REST route's failure becomes a response: status, headers and code from the
 * error table, a JSON body with the request id. Routes throw; they never write an error
 * themselves. Anything the table does not know is logged and answered as a masked 500.
 */
export function renderError(res: ServerResponse, err: unknown, logger: Logger): void {
  const requestId = requestIdOf(res.req);
  let app: AppError | undefined = classify(err);
  if (!app) {
    logger.error({ err, requestId }, 'unexpected error');
    app = internal();
  }
  if (res.headersSent) {
    // Mid-body: the only honest signal left is a cut connection.
    res.destroy();
    return;
  }
  const body = JSON.stringify({
    error: { code: app.code, message: app.message, requestId },
  });
  res.writeHead(app.status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
    ...app.headers(),
  });
  res.end(res.req.method === 'HEAD' ? undefined : body);
}
