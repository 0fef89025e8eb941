import type { YogaServerOptions } from 'graphql-yoga';
import { CSRF_HEADERS } from './yoga-error-codes.js';

type CorsOption = YogaServerOptions<Record<string, never>, Record<string, never>>['cors'];

/** Headers a browser client may send: auth and the CSRF-prevention headers yoga accepts. */
const ALLOWED_HEADERS = ['authorization', 'content-type', 'accept', ...CSRF_HEADERS];

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
