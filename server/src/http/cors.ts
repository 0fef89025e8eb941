import type { YogaServerOptions } from 'graphql-yoga';
import { CSRF_HEADERS } from './yoga-error-codes.js';

type CorsOption = YogaServerOptions<Record<string, never>, Record<string, never>>['cors'];

/**
 * Headers a browser client may send: auth, the CSRF-prevention headers yoga accepts, and what
 * common clients add on their own. Apollo Client sends `apollographql-client-name`/`-version`
 * whenever it is given a name or version, OpenTelemetry's fetch instrumentation the W3C trace
 * context (`traceparent`, `tracestate`, `baggage`), and a caller may pass its own `x-request-id`
 * (lib/request-id.ts keeps a sane one). A header missing here fails the preflight, and so every
 * request of such a client. None of them carries a credential.
 */
export const ALLOWED_HEADERS = [
  'authorization',
  'content-type',
  'accept',
  ...CSRF_HEADERS,
  'apollographql-client-name',
  'apollographql-client-version',
  'traceparent',
  'tracestate',
  'baggage',
  'x-request-id',
];

/**
 * yoga's default CORS answers every origin (and allows credentials). Here: with no allow-list,
 * no CORS headers at all (same origin only); with one, only the listed origins get them. Tokens
 * travel in the Authorization header, never in cookies, so credentials are never allowed.
 */
export function corsFor(origins: readonly string[]): CorsOption {
  if (origins.length === 0) return false;
  const allowed = new Set(origins);
  return (request: Request) => {
    const origin = request.headers.get('origin');
    if (!origin || !allowed.has(origin)) return false;
    return {
      origin: [origin],
      methods: ['GET', 'POST'],
      allowedHeaders: ALLOWED_HEADERS,
      exposedHeaders: ['x-request-id'],
      credentials: false,
      maxAge: 600,
    };
  };
}
