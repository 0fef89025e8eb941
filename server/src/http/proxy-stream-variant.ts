import type { IncomingMessage, ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import type { ImagePreset } from '../config-images.js';
import { RECENT_ROW_MS } from '../db/recent-rows.js';
import {
  type AppError,
  badGateway,
  notFound,
  rangeNotSatisfiable,
  unavailable,
  variantFailed,
} from '../errors/index.js';
import type { ProxyGrant } from '../images/proxy-grant.js';
import { requestIdOf } from '../lib/request-id.js';
import { urlIdOf } from '../storage/variant.js';
import { untrustedObjectHeaders } from './object-headers.js';
import type { RedirectDeps } from './proxy-redirect.js';
import { type StreamDeps, streamCacheControl } from './proxy-stream.js';
import { pipeBody } from './send.js';

/** Request headers passed to the store: the range and the conditions on it. */
const FORWARDED = ['range', 'if-range', 'if-none-match', 'if-modified-since'] as const;

/** The size in a 416's `Content-Range: bytes *\/<size>`, or undefined. */
function sizeOfUnsatisfied(header: string | null): number | undefined {
  const m = header === null ? null : /^bytes \*\/(\d{1,15})$/.exec(header.trim());
  return m ? Number(m[1]) : undefined;
}

/** Headers of the store's answer that describe the bytes (and may pass to the client). */
const PASSED = ['content-type', 'content-length', 'content-range', 'etag', 'last-modified'] as const;

/** Bytes of an upstream error body read at most (the gateway's own JSON error is ~200 bytes). */
const ERROR_BODY_MAX_BYTES = 4096;

/**
 * The failures of a variant's render that the route rendering it (the local bucket, the s3
 * driver's variants: Signet itself, behind the signed URL) answers with, by their table entry:
 * VARIANT_FAILED (422, for good) and SERVICE_UNAVAILABLE (503, the node's load, with its
 * Retry-After). Recognised by status and the JSON body's code together, so a store's own 503
 * (S3's SlowDown, a CDN's) stays the store's fault: 502. Undefined for anything else. The body
 * is read up to ERROR_BODY_MAX_BYTES and is always consumed or cancelled.
 */
async function renderFailure(answer: Response): Promise<AppError | undefined> {
  const expected =
    answer.status === 422 ? 'VARIANT_FAILED' : answer.status === 503 ? 'SERVICE_UNAVAILABLE' : undefined;
  const json = (answer.headers.get('content-type') ?? '').startsWith('application/json');
  if (!expected || !json || !answer.body) {
    await answer.body?.cancel();
    return undefined;
  }
  const text = await boundedText(answer.body, ERROR_BODY_MAX_BYTES);
  let error: { code?: unknown; message?: unknown } | undefined;
  try {
    error = text === undefined ? undefined : (JSON.parse(text) as { error?: typeof error }).error;
  } catch {
    return undefined;
  }
  if (error?.code !== expected) return undefined;
  const message = typeof error.message === 'string' ? error.message : undefined;
  if (expected === 'VARIANT_FAILED') return variantFailed(message);
  // Retry-After in seconds, as the renderer's route sends it; else the table's.
  const retry = answer.headers.get('retry-after');
  const seconds = retry !== null && /^\d{1,6}$/.test(retry.trim()) ? Number(retry.trim()) : undefined;
  return unavailable(message, seconds !== undefined ? { retryAfterSeconds: seconds } : undefined);
}

/** The body as text, or undefined (and the rest cancelled) when it is longer than `max` bytes. */
async function boundedText(body: ReadableStream<Uint8Array>, max: number): Promise<string | undefined> {
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return Buffer.concat(chunks, size).toString('utf8');
      size += value.byteLength;
      if (size > max) {
        await reader.cancel();
        return undefined;
      }
      chunks.push(value);
    }
  } catch {
    await reader.cancel().catch(() => {});
    return undefined;
  }
}

/**
 * Stream mode for a variant: the gateway fetches the variant through its own signed URL (the
 * same URL a redirect would hand out, so every driver — processing at COS, derived objects, the
 * local bucket, a CDN — is served alike) and streams the answer, passing Range and
 * If-None-Match through. See docs/architecture.md, "Variants".
 */
export async function streamVariant(
  s: RedirectDeps & Pick<StreamDeps, 'config' | 'clock' | 'logger'>,
  req: IncomingMessage,
  res: ServerResponse,
  g: ProxyGrant,
  preset: ImagePreset,
): Promise<void> {
  const variant = s.variants.forImage(preset, g.row);
  const resolved = await s.urls.resolveRecent(
    {
      id: urlIdOf(g.row.id, variant),
      key: s.variants.objectKeyFor(g.row, variant, preset.name),
      placement: g.row,
      minTtl: s.config.defaultMinTtlSeconds,
      variant,
      preset: variant ? preset.name : undefined,
    },
    RECENT_ROW_MS,
  );
  const upstream = new AbortController();
  const onClose = () => upstream.abort();
  res.once('close', onClose);
  const headers: Record<string, string> = {};
  // The store answers the conditions itself: If-Range (a stale validator gets the whole object,
  // not a range of another version) and the two that may give 304.
  for (const name of FORWARDED) {
    const v = req.headers[name];
    if (typeof v === 'string') headers[name] = v;
  }
  let answer: Response;
  try {
    answer = await fetch(resolved.url, {
      method: req.method,
      headers,
      signal: upstream.signal,
      redirect: 'error',
    });
  } catch (err) {
    if (res.destroyed) return;
    s.logger.warn(
      { err: (err as Error).message, imageId: g.row.id, requestId: requestIdOf(req) },
      'proxy: variant fetch failed',
    );
    throw badGateway();
  }
  if (answer.status === 404) {
    await answer.body?.cancel();
    throw notFound('No such object');
  }
  if (answer.status === 416) {
    await answer.body?.cancel();
    // The store's `bytes */<size>` says how long the variant is: the client should hear it too.
    throw rangeNotSatisfiable(sizeOfUnsatisfied(answer.headers.get('content-range')));
  }
  if (answer.status !== 200 && answer.status !== 206 && answer.status !== 304) {
    // The variant's own failure, told by the route that renders it, is the client's answer too:
    // a redirect would have shown it, so stream mode must not turn it into the store's fault.
    const passed = await renderFailure(answer);
    if (passed) throw passed;
    s.logger.warn(
      { status: answer.status, imageId: g.row.id, requestId: requestIdOf(req) },
      'proxy: the store refused a variant',
    );
    throw badGateway();
  }
  const out: Record<string, string> = {
    'cache-control': streamCacheControl(s, g),
    'accept-ranges': 'bytes',
    ...(g.byBearer ? { vary: 'Authorization' } : {}),
  };
  for (const h of PASSED) {
    const v = answer.headers.get(h);
    if (v !== null) out[h] = v;
  }
  Object.assign(out, untrustedObjectHeaders(out['content-type']));
  res.writeHead(answer.status, out);
  if (!answer.body || req.method === 'HEAD' || answer.status === 304) {
    await answer.body?.cancel();
    res.end();
    return;
  }
  await pipeBody(Readable.fromWeb(answer.body as import('node:stream/web').ReadableStream), res);
  res.off('close', onClose);
}
