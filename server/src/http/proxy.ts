import type { IncomingMessage, ServerResponse } from 'node:http';
import { PROXY_PREFIX, type ProxyMode } from '../auth/proxy-links.js';
import type { Authenticate } from '../auth/viewer.js';
import type { Config } from '../config.js';
import { badInput, methodNotAllowed, unauthenticated } from '../errors/index.js';
import { isImageId } from '../images/image-id.js';
import type { ProxyAccess, ProxyCredential } from '../images/proxy-access.js';
import type { VariantCatalog } from '../images/variants.js';
import { andThen, type MaybePromise } from '../lib/maybe-promise.js';
import type { Metrics } from '../metrics.js';
import { closedStatus } from './access-log.js';
import { type RedirectDeps, redirectToSignedUrl } from './proxy-redirect.js';
import { type StreamDeps, streamObject } from './proxy-stream.js';
import { streamVariant } from './proxy-stream-variant.js';
import type { RequestTarget } from './request-target.js';

export interface ProxyDeps extends RedirectDeps, StreamDeps {
  config: RedirectDeps['config'] & Pick<Config, 'auth'>;
  authenticate: Authenticate;
  proxyAccess: ProxyAccess;
  variants: Pick<VariantCatalog, 'preset' | 'forImage' | 'objectKeyFor'>;
  metrics: Pick<Metrics, 'proxyResponses'>;
}

function modeOf(url: RequestTarget): ProxyMode | undefined {
  const m = url.searchParams.get('mode');
  if (m === null || m === '' || m === 'redirect') return 'redirect';
  return m === 'stream' ? 'stream' : undefined;
}

/**
 * `GET/HEAD /proxy/<id>?t=<token>[&mode=stream]`: plain `<img>` tags get a 302 to a signed URL
 * from the URL service, or the bytes. This route only reads the request; who may fetch what is
 * decided by images/proxy-access.ts. Every answer a client can provoke is a 4xx; only the origin
 * (502) or the database (503) failing is a 5xx. Failures are thrown and rendered in one place.
 */
export function createProxyRoute(d: ProxyDeps) {
  const responses = d.metrics.proxyResponses;
  // A token is at hand; a bearer token is verified asynchronously (it may need the JWKS).
  function credentialOf(req: IncomingMessage, url: RequestTarget): MaybePromise<ProxyCredential> {
    const token = url.searchParams.get('t');
    if (token) return { kind: 'token', token };
    const authorization = req.headers.authorization;
    // With auth off (development) every request is the demo admin, header or not; with
    // PUBLIC_READ_ANONYMOUS=true a request without any credential is the anonymous viewer
    // (public images only). Otherwise no credential is 401.
    if (!authorization && !d.config.auth.disabled && !d.config.auth.publicReadAnonymous) {
      throw unauthenticated('A proxy token (?t=) or a bearer token is required');
    }
    return d.authenticate(authorization).then((viewer) => ({ kind: 'viewer', viewer }));
  }

  // Not async: a hot link's redirect is answered before this returns (no promise is made), and a
  // failure is thrown at once; otherwise the promise of the answer.
  return (req: IncomingMessage, res: ServerResponse, url: RequestTarget): MaybePromise<void> => {
    const mode = modeOf(url);
    res.once('close', () => {
      responses.labels(mode ?? 'invalid', closedStatus(res)).inc();
    });
    if (req.method !== 'GET' && req.method !== 'HEAD') throw methodNotAllowed();
    const rawId = url.pathname.slice(PROXY_PREFIX.length);
    if (!isImageId(rawId)) throw badInput('The path must be /proxy/<image id (a UUID)>');
    if (!mode) throw badInput('mode must be redirect or stream');
    // Checked against the configured presets before the token: a preset name is part of what
    // the token signs, and only a known one can be (400 for an unknown one, like GraphQL).
    const presetName = url.searchParams.get('preset');
    const preset = presetName ? d.variants.preset(presetName) : undefined;

    const id = rawId.toLowerCase();
    const grant = andThen(credentialOf(req, url), (cred) =>
      d.proxyAccess.grant(id, mode, cred, preset?.name),
    );
    return andThen(grant, (g) => {
      if (mode === 'redirect') return redirectToSignedUrl(d, res, g, preset);
      return preset ? streamVariant(d, req, res, g, preset) : streamObject(d, req, res, g);
    });
  };
}
