import type { IncomingMessage, ServerResponse } from 'node:http';
import { brotliCompress, constants, gzip } from 'node:zlib';
import { sendNodeResponse } from '@whatwg-node/server';
import { type Coding, MIN_COMPRESSIBLE_BYTES, negotiateEncoding } from './compression.js';
import type { Yoga } from './graphql.js';
import { mergeVary } from './vary.js';

/**
 * GraphQL's JSON answers in br or gzip when the request accepts it (GRAPHQL_COMPRESSION, on by
 * default). Why the gateway does it itself: a page of 24 images is 25-32 KB of JSON (48-67 KB
 * with COS's long signed URLs) and 5-6 KB coded; scrolling a gallery moved more bytes of GraphQL
 * than of thumbnails, and the embedded mode and docker-compose.yml have no proxy in front to
 * compress them. A proxy that compresses can still do it instead: GRAPHQL_COMPRESSION=false.
 *
 * Why it stays off the event loop: node:zlib's callback API runs the coding on libuv's
 * threadpool, so the loop only hands the buffer over and takes the result back. Each coding at
 * its fastest setting (measured on the web app's page of 24 images: docs/architecture.md,
 * "HTTP and GraphQL", under Compressed answers): brotli quality 1 takes no more CPU than gzip
 * level 1 (~0.05-0.1 ms for 25-48 KB) and is never larger (0.2-5 % smaller); higher settings
 * cost two to four times the CPU for 2-10 % fewer bytes, as signed URLs are mostly random
 * characters no setting shrinks.
 *
 * What it leaves alone: a request that accepts neither coding (no Accept-Encoding at all, as
 * from the benchmark's load generator, costs one header read and goes to yoga's own node adapter
 * as before); answers that are not JSON (text/event-stream subscriptions, multipart/mixed
 * incremental delivery, the GraphiQL page with its own coding), JSON under a kilobyte (most
 * errors), and anything already coded. Those go out exactly as yoga's adapter sends them.
 */

/** The JSON answers yoga writes (`application/json` or `application/graphql-response+json`). */
const JSON_TYPE = /^application\/(?:graphql-response\+)?json\s*(?:;|$)/i;

/** `body` in `coding`, on libuv's threadpool: gzip level 1 or brotli quality 1. */
function encode(body: Buffer, coding: Coding): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const done = (err: Error | null, out: Buffer) => (err ? reject(err) : resolve(out));
    if (coding === 'gzip') {
      gzip(body, { level: 1 }, done);
      return;
    }
    brotliCompress(
      body,
      {
        params: {
          [constants.BROTLI_PARAM_QUALITY]: 1,
          [constants.BROTLI_PARAM_MODE]: constants.BROTLI_MODE_TEXT,
          [constants.BROTLI_PARAM_SIZE_HINT]: body.length,
        },
      },
      done,
    );
  });
}

export type GraphqlHandler = (req: IncomingMessage, res: ServerResponse) => unknown;

/**
 * yoga's node handler, answering in br or gzip where that pays (RFC 9110 negotiation:
 * `negotiateEncoding`). `yoga(req, res)` itself when the request accepts neither. The headers
 * the HTTP layer set on `res` (Cache-Control, Vary) stay; `Vary` gains `Accept-Encoding`.
 */
export function withGraphqlCompression(yoga: Yoga): GraphqlHandler {
  async function answer(req: IncomingMessage, res: ServerResponse, coding: Coding): Promise<void> {
    // As yoga's own node adapter (`yoga(req, res)`) calls it, less the write at the end: its
    // plugins find the node objects on their server context.
    const response = await yoga.handleNodeRequestAndResponse(req, res, { req, res } as never);
    const type = response.headers.get('content-type');
    if (!type || !JSON_TYPE.test(type) || response.headers.has('content-encoding')) {
      await sendNodeResponse(response, res, req, true);
      return;
    }
    // yoga's JSON is a string (`text()` hands it over as it is), not a stream.
    const body = Buffer.from(await response.text(), 'utf8');
    const out = body.length >= MIN_COMPRESSIBLE_BYTES ? await encode(body, coding) : undefined;
    if (res.destroyed || res.headersSent) return;
    const headers: Record<string, string | string[]> = {};
    response.headers.forEach((value, name) => {
      headers[name.toLowerCase()] = value;
    });
    const cookies = response.headers.getSetCookie?.();
    if (cookies?.length) headers['set-cookie'] = cookies;
    // One Vary for all: what the HTTP layer set (Authorization, Origin), yoga's, and the coding.
    headers.vary = mergeVary([res.getHeader('vary'), headers.vary], 'Accept-Encoding');
    const coded = out !== undefined && out.length < body.length;
    if (coded) headers['content-encoding'] = coding;
    headers['content-length'] = String(coded ? out.length : body.length);
    res.writeHead(response.status, response.statusText, headers);
    res.end(coded ? out : body);
  }
  return (req, res) => {
    const accept = req.headers['accept-encoding'];
    if (!accept) return yoga(req, res);
    const coding = negotiateEncoding(accept);
    return coding === 'identity' ? yoga(req, res) : answer(req, res, coding);
  };
}
