import type { ServerResponse } from 'node:http';
import type { Plugin } from 'graphql-yoga';
import { type Authenticate, requireSignedIn } from '../../auth/viewer.js';
import { badInput, payloadTooLarge } from '../../errors/index.js';
import type { UploadLease, UploadSlots } from '../../images/upload-slots.js';

/** Room for the `operations` and `map` fields and the part headers around the file. */
export const MULTIPART_OVERHEAD_BYTES = 64 * 1024;

/** whatwg-node's Request.formData takes busboy limits (the WHATWG signature has no argument). */
type FormDataWithLimits = (opts: { formDataLimits: Record<string, number> }) => Promise<unknown>;

/**
 * Multipart requests are parsed into memory before any resolver runs, so the limits go here:
 * anonymous uploads are refused before their body is read, a declared Content-Length over the
 * limit is refused outright, the parser stops at maxFileBytes (one file per request), and an
 * upload slot (per viewer and per node) is taken before the body is read.
 *
 * The slot is held for as long as the upload's bytes may be alive: by the HTTP exchange until its
 * response is out (or its connection closed), and by the execution until the resolver has
 * stored them, since a client that hangs up does not stop a put under way.
 */
export function useUploadLimits(opts: {
  maxFileBytes: number;
  authenticate: Authenticate;
  slots: Pick<UploadSlots, 'acquire'>;
}): Plugin {
  const { maxFileBytes, authenticate, slots } = opts;
  const leases = new WeakMap<Request, { lease: UploadLease; endExchange: () => void }>();
  const formDataLimits = {
    fileSize: maxFileBytes,
    files: 1,
    fields: 8,
    parts: 9,
    fieldSize: MULTIPART_OVERHEAD_BYTES,
  };
  return {
    onRequestParse({ request, requestParser, setRequestParser, serverContext }) {
      if (request.method !== 'POST' || !requestParser) return;
      if (!/^multipart\/form-data\b/i.test(request.headers.get('content-type') ?? '')) return;
      const declared = Number(request.headers.get('content-length') ?? Number.NaN);
      if (declared > maxFileBytes + MULTIPART_OVERHEAD_BYTES)
        throw payloadTooLarge(maxFileBytes, undefined, { requestLevel: true });
      const parse = requestParser;
      const res = (serverContext as { res?: ServerResponse }).res;
      setRequestParser(async (req) => {
        const viewer = await authenticate(req.headers.get('authorization'));
        requireSignedIn(viewer, { requestLevel: true });
        const lease = slots.acquire(viewer.id, { requestLevel: true });
        let ended = false;
        const endExchange = () => {
          if (ended) return;
          ended = true;
          lease.release();
        };
        leases.set(request, { lease, endExchange });
        // Always fires, whatever became of the request: the slot cannot leak.
        res?.once('close', endExchange);
        try {
          // Parses once with limits; yoga's own parser then gets the cached form data.
          await (req.formData as unknown as FormDataWithLimits).call(req, { formDataLimits });
        } catch (err) {
          throw multipartError(err, maxFileBytes);
        }
        return parse(req);
      });
    },
    onExecute({ args }) {
      const held = leases.get((args.contextValue as { request?: Request }).request as Request);
      if (!held) return;
      held.lease.retain();
      return {
        onExecuteDone() {
          held.lease.release();
        },
      };
    },
    onResponse({ request }) {
      leases.get(request)?.endExchange();
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
