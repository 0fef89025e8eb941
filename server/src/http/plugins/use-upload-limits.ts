import type { IncomingMessage, ServerResponse } from 'node:http';
import { type DocumentNode, getOperationAST, Kind, type SelectionSetNode } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import { type Authenticate, requireSignedIn, type Viewer } from '../../auth/viewer.js';
import { badInput, findAppError, payloadTooLarge } from '../../errors/index.js';
import type { UploadLease, UploadSlots } from '../../images/upload-slots.js';
import type { Logger } from '../../logger.js';
import { guardSlowBody } from '../slow-body.js';

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
 * stored them, since a client that hangs up does not stop a put under way. A body that arrives
 * slower than `minBytesPerSecond` has its connection cut (slow-body.ts), so a trickle cannot
 * hold a slot.
 */
export function useUploadLimits(opts: {
  maxFileBytes: number;
  authenticate: Authenticate;
  slots: Pick<UploadSlots, 'acquire'>;
  /** UPLOAD_MIN_BYTES_PER_SECOND. */
  minBytesPerSecond: number;
  logger: Logger;
}): Plugin {
  const { maxFileBytes, authenticate, slots, minBytesPerSecond, logger } = opts;
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
      const { req: nodeReq, res } = serverContext as { req?: IncomingMessage; res?: ServerResponse };
      setRequestParser(async (req) => {
        const viewer = await signedIn(authenticate, req.headers.get('authorization'));
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
        const stopGuard = nodeReq
          ? guardSlowBody(nodeReq, minBytesPerSecond, (received, elapsedMs) =>
              logger.info(
                { viewer: viewer.id, received, seconds: Math.round(elapsedMs / 100) / 10, minBytesPerSecond },
                'upload cut: its body arrived slower than UPLOAD_MIN_BYTES_PER_SECOND',
              ),
            )
          : () => {};
        try {
          // Parses once with limits; yoga's own parser then gets the cached form data.
          await (req.formData as unknown as FormDataWithLimits).call(req, { formDataLimits });
        } catch (err) {
          throw multipartError(err, maxFileBytes);
        } finally {
          stopGuard();
        }
        return parse(req);
      });
    },
    onExecute({ args, setResultAndStopExecution }) {
      const held = leases.get((args.contextValue as { request?: Request }).request as Request);
      if (!held) return;
      // One file part is one image: aliases would store it once per field (the map check refuses
      // one file at several paths). docs/architecture.md, "The upload pipeline".
      const uploads = uploadFieldKeys(args.document, args.operationName);
      if (uploads.size > 1) {
        setResultAndStopExecution({
          errors: [
            badInput(
              `A request may upload one image: the operation has ${uploads.size} uploadImage fields (${[...uploads].slice(0, 5).join(', ')})`,
              undefined,
              { requestLevel: true },
            ),
          ],
        });
        return;
      }
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

/**
 * The viewer of an upload, refused at the request level (401 with `www-authenticate`, as a JSON
 * request's) when anonymous or when its token is refused (`authenticate`'s refusals are
 * request-level themselves).
 */
async function signedIn(authenticate: Authenticate, authorization: string | null): Promise<Viewer> {
  const viewer = await authenticate(authorization);
  requireSignedIn(viewer, { requestLevel: true });
  return viewer;
}

/**
 * The response keys of the `uploadImage` fields the operation executes, through its fragments
 * (each fragment once: a fragment spread twice merges into the same fields).
 */
export function uploadFieldKeys(document: DocumentNode, operationName?: string | null): Set<string> {
  const keys = new Set<string>();
  const op = getOperationAST(document, operationName);
  if (op?.operation !== 'mutation') return keys;
  const fragments = new Map<string, SelectionSetNode>();
  for (const def of document.definitions)
    if (def.kind === Kind.FRAGMENT_DEFINITION) fragments.set(def.name.value, def.selectionSet);
  const seen = new Set<string>();
  // Only the root: uploadImage is a field of Mutation, so nothing below it is looked at.
  const walk = (set: SelectionSetNode) => {
    for (const sel of set.selections) {
      if (sel.kind === Kind.FIELD) {
        if (sel.name.value === 'uploadImage') keys.add(sel.alias?.value ?? sel.name.value);
      } else if (sel.kind === Kind.INLINE_FRAGMENT) {
        walk(sel.selectionSet);
      } else if (!seen.has(sel.name.value)) {
        seen.add(sel.name.value);
        const frag = fragments.get(sel.name.value);
        if (frag) walk(frag);
      }
    }
  };
  walk(op.selectionSet);
  return keys;
}

function multipartError(err: unknown, maxFileBytes: number): unknown {
  const e = err as { name?: string; message?: string; extensions?: { code?: unknown } };
  // The client left (or was cut) mid-body: its input, not our failure. No one reads the answer;
  // what matters is that it is not logged as an unexpected error, one line per dropped upload.
  if (e?.name === 'AbortError') {
    return badInput('The upload ended before its body was complete (the connection closed)', undefined, {
      requestLevel: true,
    });
  }
  // Already one of ours: the body bound of a chunked upload (use-body-limit.ts).
  const known = findAppError(err);
  if (known) return known;
  if (e?.extensions?.code === 'REQUEST_ENTITY_TOO_LARGE' || /^File size limit/.test(e?.message ?? '')) {
    return payloadTooLarge(maxFileBytes, undefined, { requestLevel: true });
  }
  return badInput(`Malformed multipart request: ${e?.message ?? 'unreadable body'}`, undefined, {
    requestLevel: true,
  });
}
