import type { Plugin } from 'graphql-yoga';
import { type AppError, payloadTooLarge } from '../../errors/index.js';

/**
 * The rest of a refused body is never read: the connection closes with the answer, so node does not
 * drain what is left (a declared gigabyte) and the client does not reuse a half-read socket.
 */
export function bodyTooLarge(maxBytes: number): AppError {
  return payloadTooLarge(maxBytes, `The request body is larger than ${maxBytes} bytes`, {
    requestLevel: true,
    headers: { connection: 'close' },
  });
}

/** The body as it arrives, failing with PAYLOAD_TOO_LARGE at the first byte past maxBytes. */
function bounded(request: Request, maxBytes: number, fetchAPI: { Request: typeof Request }): Request {
  const body = request.body;
  if (!body) return request;
  let seen = 0;
  const limited = body.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        seen += chunk.byteLength;
        if (seen > maxBytes) controller.error(bodyTooLarge(maxBytes));
        else controller.enqueue(chunk);
      },
    }),
  );
  return new fetchAPI.Request(request.url, {
    method: request.method,
    headers: request.headers,
    signal: request.signal,
    body: limited,
    duplex: 'half',
  } as RequestInit);
}

/**
 * Bounds every GraphQL body that is not a multipart upload (JSON, application/graphql, forms):
 * yoga's own limit must admit the largest upload, far more than any document or variables need.
 * A declared Content-Length over the bound is refused before a byte is read; a chunked body is
 * counted as it streams in.
 */
export function useBodyLimit(maxBytes: number): Plugin {
  return {
    onRequestParse({ request, requestParser, setRequestParser, fetchAPI }) {
      if (request.method !== 'POST' || !requestParser) return;
      if (/^multipart\/form-data\b/i.test(request.headers.get('content-type') ?? '')) return;
      const declared = Number(request.headers.get('content-length') ?? Number.NaN);
      if (declared > maxBytes) throw bodyTooLarge(maxBytes);
      const parse = requestParser;
      setRequestParser((req) => parse(bounded(req, maxBytes, fetchAPI)));
    },
  };
}
