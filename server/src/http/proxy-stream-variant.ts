import type { IncomingMessage, ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import type { ImagePreset } from '../config-images.js';
import { RECENT_ROW_MS } from '../db/recent-rows.js';
import { badGateway, notFound, rangeNotSatisfiable } from '../errors/index.js';
import { type ProxyGrant, secondsUntil } from '../images/proxy-grant.js';
import { requestIdOf } from '../lib/request-id.js';
import { OBJECT_MAX_AGE_SECONDS } from '../storage/storage.js';
import { urlIdOf } from '../storage/variant.js';
import { untrustedObjectHeaders } from './object-headers.js';
import type { RedirectDeps } from './proxy-redirect.js';
import type { StreamDeps } from './proxy-stream.js';
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

/**
 * Stream mode for a variant: the gateway fetches the variant through its own signed URL (the
 * same URL a redirect would hand out, so every driver — processing at COS, derived objects, the
 * local bucket, a CDN — is served alike) and streams the answer, passing Range and
 * If-None-Match through. See docs/architecture.md, "Variants".
 */
export async function streamVariant(
  s: RedirectDeps & Pick<StreamDeps, 'clock' | 'logger'>,
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
  if (answer.status === 404) throw notFound('No such object');
  if (answer.status === 416) {
    await answer.body?.cancel();
    // The store's `bytes */<size>` says how long the variant is: the client should hear it too.
    throw rangeNotSatisfiable(sizeOfUnsatisfied(answer.headers.get('content-range')));
  }
  if (answer.status !== 200 && answer.status !== 206 && answer.status !== 304) {
    await answer.body?.cancel();
    s.logger.warn(
      { status: answer.status, imageId: g.row.id, requestId: requestIdOf(req) },
      'proxy: the store refused a variant',
    );
    throw badGateway();
  }
  let maxAge = OBJECT_MAX_AGE_SECONDS;
  if (g.tokenExpiresAt !== null) maxAge = Math.min(maxAge, secondsUntil(g.tokenExpiresAt, s.clock.now()));
  const out: Record<string, string> = {
    'cache-control': `private, max-age=${maxAge}, immutable`,
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
