import type { Plugin } from 'graphql-yoga';
import type { Authenticate } from '../../auth/viewer.js';
import { badInput, payloadTooLarge } from '../../errors/index.js';

/** Room for the `operations` and `map` fields and the part headers around the file. */
export const MULTIPART_OVERHEAD_BYTES = 64 * 1024;

/** whatwg-node's Request.formData takes busboy limits (the WHATWG signature has no argument). */
type FormDataWithLimits = (opts: { formDataLimits: Record<string, number> }) => Promise<unknown>;

/**
 * Multipart requests are parsed into memory before any resolver runs, so the limits go here:
 * anonymous uploads are refused before their body is read, a declared Content-Length over the
 * limit is refused outright, and the parser stops at maxFileBytes (one file per request).
 */
export function useUploadLimits(opts: { maxFileBytes: number; authenticate: Authenticate }): Plugin {
  const { maxFileBytes, authenticate } = opts;
  const formDataLimits = {
    fileSize: maxFileBytes,
    files: 1,
    fields: 8,
    parts: 9,
    fieldSize: MULTIPART_OVERHEAD_BYTES,
  };
  return {
    onRequestParse({ request, requestParser, setRequestParser }) {
      if (request.method !== 'POST' || !requestParser) return;
      if (!/^multipart\/form-data\b/i.test(request.headers.get('content-type') ?? '')) return;
      const declared = Number(request.headers.get('content-length') ?? Number.NaN);
      if (declared > maxFileBytes + MULTIPART_OVERHEAD_BYTES)
        throw payloadTooLarge(maxFileBytes, undefined, { requestLevel: true });
      const parse = requestParser;
      setRequestParser(async (req) => {
        await authenticate(req.headers.get('authorization'));
        try {
          // Parses once with limits; yoga's own parser then gets the cached form data.
          await (req.formData as unknown as FormDataWithLimits).call(req, { formDataLimits });
        } catch (err) {
          throw multipartError(err, maxFileBytes);
        }
        return parse(req);
      });
    },
  };
}

function multipartError(err: unknown, maxFileBytes: number): unknown {
  const e = err as { name?: string; message?: string; extensions?: { code?: unknown } };
  if (e?.name === 'AbortError') return err;
  if (e?.extensions?.code === 'REQUEST_ENTITY_TOO_LARGE' || /^File size limit/.test(e?.message ?? '')) {
    return payloadTooLarge(maxFileBytes, undefined, { requestLevel: true });
  }
  return badInput(`Malformed multipart request: ${e?.message ?? 'unreadable body'}`, undefined, {
    requestLevel: true,
  });
}
