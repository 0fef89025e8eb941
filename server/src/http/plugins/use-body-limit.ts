import type { Plugin } from 'graphql-yoga';
import { type AppError, badInput, payloadTooLarge } from '../../errors/index.js';
import { bytesInWords } from '../../lib/byte-size.js';

/**
 * The rest of a refused body is never read: the connection closes with the answer, so node does not
 * drain what is left (a declared gigabyte) and the client does not reuse a half-read socket.
 */
export function bodyTooLarge(maxBytes: number): AppError {
  return payloadTooLarge(maxBytes, `The request body is larger than ${bytesInWords(maxBytes)}`, {
    requestLevel: true,
    headers: { connection: 'close' },
  });
}

/**
 * How deep JSON in a body may nest. Variables and extensions of real operations nest a few
 * levels; JSON.parse of a megabyte of `[[[[…` holds the event loop for half a second.
 */
export const MAX_JSON_DEPTH = 64;
/** Bracket openers a non-JSON body (a form, whose JSON fields are percent-encoded) may hold. */
const MAX_FORM_OPENERS = 1000;

function tooDeep(): AppError {
  return badInput(`JSON in the request is nested deeper than ${MAX_JSON_DEPTH} levels`, undefined, {
    requestLevel: true,
  });
}

/**
 * A one-pass scanner, chunk by chunk, of how deep JSON nests (strings and escapes skipped), so a
 * body that would make JSON.parse stall is refused before it is parsed. For other bodies (forms,
 * where brackets arrive percent-encoded) it counts every opener, plain or encoded.
 */
export function nestingGuard(json: boolean) {
  let depth = 0;
  let openers = 0;
  let inString = false;
  let escaped = false;
  let percent = 0; // 1 after '%', 2 after '%5' or '%7'
  return (chunk: Uint8Array): AppError | undefined => {
    for (let i = 0; i < chunk.length; i++) {
      const c = chunk[i]!;
      if (json) {
        if (inString) {
          if (escaped) escaped = false;
          else if (c === 0x5c) escaped = true;
          else if (c === 0x22) inString = false;
        } else if (c === 0x22) inString = true;
        else if (c === 0x5b || c === 0x7b) {
          if (++depth > MAX_JSON_DEPTH) return tooDeep();
        } else if (c === 0x5d || c === 0x7d) depth--;
        continue;
      }
      if (c === 0x5b || c === 0x7b) openers++;
      else if (c === 0x25) {
        percent = 1;
        continue;
      } else if (percent === 1 && (c === 0x35 || c === 0x37)) {
        percent = 2;
        continue;
      } else if (percent === 2 && (c === 0x42 || c === 0x62)) openers++;
      percent = 0;
      if (openers > MAX_FORM_OPENERS) return tooDeep();
    }
    return undefined;
  };
}

/**
 * The body as it arrives, failing with PAYLOAD_TOO_LARGE at the first byte past maxBytes, and
 * with BAD_USER_INPUT at the first bracket past the nesting bound.
 */
function bounded(
  request: Request,
  maxBytes: number,
  fetchAPI: { Request: typeof Request },
  scan = true,
): Request {
  const body = request.body;
  if (!body) return request;
  let seen = 0;
  const guard = scan
    ? nestingGuard(/\bjson\b/i.test(request.headers.get('content-type') ?? ''))
    : () => undefined;
  let refused: AppError | undefined;
  const limited = body.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        seen += chunk.byteLength;
        if (seen > maxBytes) {
          controller.error(bodyTooLarge(maxBytes));
          return;
        }
        // Once refused, the rest (at most maxBytes) is read and dropped unscanned, so the
        // client, still sending, gets the answer instead of a reset connection.
        refused ??= guard(chunk);
        if (!refused) controller.enqueue(chunk);
      },
      flush(controller) {
        if (refused) controller.error(refused);
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
 * A body of declared length (at most maxBytes, checked by the caller), read whole and scanned
 * before the parser sees it. For the few hundred bytes of a typical operation this costs a
 * fraction of piping it through a TransformStream (measured: the stream's machinery was ~3% of a
 * warm page's CPU).
 */
async function whole(
  request: Request,
  maxBytes: number,
  fetchAPI: { Request: typeof Request },
): Promise<Request> {
  const bytes = new Uint8Array(await request.arrayBuffer());
  // A client may send more than it declared; node stops at the declared length, but be sure.
  if (bytes.byteLength > maxBytes) throw bodyTooLarge(maxBytes);
  const refused = nestingGuard(/\bjson\b/i.test(request.headers.get('content-type') ?? ''))(bytes);
  if (refused) throw refused;
  return new fetchAPI.Request(request.url, {
    method: request.method,
    headers: request.headers,
    signal: request.signal,
    body: bytes,
  });
}

/**
 * Bounds every GraphQL body. Yoga's own whole-body cap is off (graphql.ts): it pipes every body
 * through a TransformStream, which cost ~2.5% of a warm page's CPU, so the bounds are all here.
 * JSON, application/graphql and forms: a declared Content-Length over `maxBytes` is refused
 * before a byte is read, one within it is read whole and scanned; a chunked body is counted as it
 * streams in. Multipart uploads: their declared length is checked by useUploadLimits, and a
 * chunked one is counted here against `multipartMaxBytes` (busboy bounds the parts, not the body).
 */
export function useBodyLimit(maxBytes: number, multipartMaxBytes: number): Plugin {
  return {
    onRequestParse({ request, requestParser, setRequestParser, fetchAPI }) {
      if (request.method !== 'POST' || !requestParser) return;
      const parse = requestParser;
      const declared = Number(request.headers.get('content-length') ?? Number.NaN);
      if (/^multipart\/form-data\b/i.test(request.headers.get('content-type') ?? '')) {
        if (!Number.isFinite(declared)) {
          setRequestParser((req) => parse(bounded(req, multipartMaxBytes, fetchAPI, false)));
        }
        return;
      }
      if (declared > maxBytes) throw bodyTooLarge(maxBytes);
      if (Number.isFinite(declared)) setRequestParser((req) => whole(req, maxBytes, fetchAPI).then(parse));
      else setRequestParser((req) => parse(bounded(req, maxBytes, fetchAPI)));
    },
  };
}
