import type { ServerResponse } from 'node:http';
import { pipeline } from 'node:stream/promises';

export function sendText(
  res: ServerResponse,
  status: number,
  body: string,
  contentType = 'text/plain; charset=utf-8',
) {
  res.writeHead(status, {
    'content-type': contentType,
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
  });
  res.end(res.req.method === 'HEAD' ? undefined : body);
}

export function sendJson(res: ServerResponse, status: number, value: unknown) {
  sendText(res, status, JSON.stringify(value), 'application/json; charset=utf-8');
}

/**
 * Room for the 'close' listeners stream/promises' pipeline adds to the response itself (seven on
 * Node 20; ten leaves room for other versions). With those every response carries (access log, stall guard) and a route's own (the
 * proxy's metrics and origin abort), Node's default of ten is passed and it prints a
 * MaxListenersExceededWarning, stack and all, on stderr for every download. Raising the bound by
 * pipeline's share only keeps the warning for a real leak of ours.
 */
const PIPELINE_CLOSE_LISTENERS = 10;

/** Pipes a body with backpressure; a client that goes away destroys the source (aborting it). */
export async function pipeBody(
  source: NodeJS.ReadableStream & { destroy(err?: Error): void },
  res: ServerResponse,
) {
  res.setMaxListeners(res.getMaxListeners() + PIPELINE_CLOSE_LISTENERS);
  try {
    await pipeline(source, res);
  } catch {
    source.destroy();
    if (!res.writableEnded) res.destroy();
  }
}
