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

/** Pipes a body with backpressure; a client that goes away destroys the source (aborting it). */
export async function pipeBody(
  source: NodeJS.ReadableStream & { destroy(err?: Error): void },
  res: ServerResponse,
) {
  try {
    await pipeline(source, res);
  } catch {
    source.destroy();
    if (!res.writableEnded) res.destroy();
  }
}
