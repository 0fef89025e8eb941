import type { ProxyMode } from '../auth/proxy-links.js';
import type { ProxyTokens } from '../auth/proxy-token.js';
import type { Viewer } from '../auth/viewer.js';
import type { RecentRows } from '../db/recent-rows.js';
import { forbidden, notFound } from '../errors/index.js';
import { andThen, type MaybePromise } from '../lib/maybe-promise.js';
import type { ProxyGrant } from './proxy-grant.js';
import { canRead } from './visibility.js';

/**
 * How a `/proxy/:id` request proves its right: a capability token, or a viewer (a bearer token,
 * or the anonymous viewer when PUBLIC_READ_ANONYMOUS=true and the request has no credential).
 */
export type ProxyCredential = { kind: 'token'; token: string } | { kind: 'viewer'; viewer: Viewer };

/**
 * Who may fetch an image through `/proxy/:id`, decided before any byte or URL is handed out.
 * A bad token is refused before any I/O; a viewer who may not see the image hears exactly what
 * a missing image answers (no existence oracle). Visibility is checked on the row the route reads
 * anyway (db/recent-rows.ts): no extra statement. A public-scoped token (minted for a viewer who
 * read the image because it was public) works only while the image is public.
 */
export class ProxyAccess {
  constructor(
    private readonly d: {
      tokens: Pick<ProxyTokens, 'verify'>;
      rows: Pick<RecentRows, 'find'>;
    },
  ) {}

  /**
   * `preset`: a configured preset's name (checked by the caller), bound into the token. At hand
   * (no promise) when the row was looked up in the last few seconds: a hot link's case.
   */
  grant(id: string, mode: ProxyMode, cred: ProxyCredential, preset?: string): MaybePromise<ProxyGrant> {
    let publicOnly = false;
    let tokenExpiresAt: number | null = null;
    if (cred.kind === 'token') {
      // The whole token is checked before any I/O: a forged or edited link costs no SQL.
      const check = this.d.tokens.verify(cred.token, id, mode, preset);
      if (!check.ok) throw forbidden(check.reason === 'expired' ? 'The link has expired' : 'Invalid link');
      publicOnly = check.scope === 'public';
      tokenExpiresAt = check.expiresAt;
    }
    return andThen(this.d.rows.find(id), (row) => {
      // Missing, deleted, and an image this credential may not read all answer the same.
      const readable =
        row !== undefined &&
        (cred.kind === 'token' ? !publicOnly || row.visibility === 'public' : canRead(cred.viewer, row));
      if (!readable) throw notFound('No such image');
      return { row, tokenExpiresAt, byBearer: cred.kind === 'viewer' };
    });
  }
}
