import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Viewer } from '../auth/viewer.js';
import { isDatabaseUnavailable } from '../db/connect.js';
import type { ImageRow } from '../db/types.js';
import { findAppError } from '../errors.js';
import { isImageId } from '../schema/validate.js';
import type { Services } from '../services.js';
import type { ProxyGrant } from './proxy-grant.js';
import { redirectToSignedUrl } from './proxy-redirect.js';
import { streamObject } from './proxy-stream.js';
import { sendError } from './send.js';

export const PROXY_PREFIX = '/proxy/';
export type ProxyMode = 'redirect' | 'stream';

/** Seconds a client should wait before retrying while the database is away. */
const RETRY_AFTER_SECONDS = '5';

function modeOf(url: URL): ProxyMode | undefined {
  const m = url.searchParams.get('mode');
  if (m === null || m === '' || m === 'redirect') return 'redirect';
  return m === 'stream' ? 'stream' : undefined;
}

type Credential = { kind: 'token'; token: string } | { kind: 'viewer'; viewer: Viewer } | { kind: 'none' };

/**
 * `GET/HEAD /proxy/<id>?t=<token>[&mode=stream]` (DESIGN §3): plain `<img>` tags get a 302 to a
 * signed URL from the URL service, or the bytes. Every answer a client can provoke is a 4xx; only
 * the origin (502) or the database (503) failing is a 5xx.
 */
export function createProxyRoute(s: Services) {
  const { metrics } = s;

  async function credentialOf(req: IncomingMessage, url: URL): Promise<Credential> {
    const token = url.searchParams.get('t');
    if (token) return { kind: 'token', token };
    const authorization = req.headers.authorization;
    // With auth off (development) every request is the demo admin, header or not.
    if (!authorization && !s.config.auth.disabled) return { kind: 'none' };
    return { kind: 'viewer', viewer: await s.authenticate(authorization) };
  }

  return async (req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> => {
    const mode = modeOf(url);
    res.once('close', () => {
      metrics.proxyResponses.inc({
        mode: mode ?? 'invalid',
        status: res.writableFinished ? String(res.statusCode) : 'aborted',
      });
    });
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      sendError(res, 'BAD_USER_INPUT', 'Only GET and HEAD', { allow: 'GET, HEAD' }, 405);
      return;
    }
    const rawId = url.pathname.slice(PROXY_PREFIX.length);
    if (!isImageId(rawId)) {
      sendError(res, 'BAD_USER_INPUT', 'The path must be /proxy/<image id (a UUID)>');
      return;
    }
    if (!mode) {
      sendError(res, 'BAD_USER_INPUT', 'mode must be redirect or stream');
      return;
    }
    const id = rawId.toLowerCase();

    let cred: Credential;
    try {
      cred = await credentialOf(req, url);
    } catch (err) {
      const app = findAppError(err);
      if (app?.code !== 'UNAUTHENTICATED') throw err;
      sendError(res, 'UNAUTHENTICATED', app.message, { 'www-authenticate': 'Bearer' });
      return;
    }
    if (cred.kind === 'none') {
      sendError(res, 'UNAUTHENTICATED', 'A proxy token (?t=) or a bearer token is required', {
        'www-authenticate': 'Bearer',
      });
      return;
    }
    // Shape, key id and expiry need no row: a bad token costs no SQL.
    if (cred.kind === 'token') {
      const pre = s.proxyTokens.precheck(cred.token);
      if (!pre.ok) {
        sendError(res, 'FORBIDDEN', pre.reason === 'expired' ? 'The link has expired' : 'Invalid link');
        return;
      }
    }

    let row: ImageRow | undefined;
    try {
      row = await s.recentRows.find(id);
    } catch (err) {
      if (!isDatabaseUnavailable(err)) throw err;
      s.logger.warn({ err: (err as Error).message }, 'proxy: database unavailable');
      sendError(res, 'SERVICE_UNAVAILABLE', 'The database is unavailable; try again shortly', {
        'retry-after': RETRY_AFTER_SECONDS,
      });
      return;
    }
    // Another owner's image answers exactly like a missing one for bearer requests.
    if (!row || (cred.kind === 'viewer' && row.ownerId !== cred.viewer.id)) {
      sendError(res, 'NOT_FOUND', 'No such image');
      return;
    }
    if (cred.kind === 'token' && !s.proxyTokens.verify(cred.token, row.id, row.ownerId).ok) {
      sendError(res, 'FORBIDDEN', 'Invalid link');
      return;
    }

    const grant: ProxyGrant = {
      row,
      tokenExpiresAt: cred.kind === 'token' ? (s.proxyTokens.expiresAt(cred.token) ?? null) : null,
      byBearer: cred.kind === 'viewer',
    };
    if (mode === 'stream') await streamObject(s, req, res, grant);
    else await redirectToSignedUrl(s, res, grant);
  };
}
