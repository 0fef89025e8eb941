import type { ProxyMode } from '../auth/proxy-links.js';
import type { ProxyTokens } from '../auth/proxy-token.js';
import type { Viewer } from '../auth/viewer.js';
import type { RecentRows } from '../db/recent-rows.js';
import { forbidden, notFound } from '../errors/index.js';
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
      tokens: Pick<ProxyTokens, 'verify' | 'expiresAt'>;
      rows: Pick<RecentRows, 'find'>;
    },
  ) {}

  /** `preset`: a configured preset's name (checked by the caller), bound into the token. */
  async grant(id: string, mode: ProxyMode, cred: ProxyCredential, preset?: string): Promise<ProxyGrant> {
    let publicOnly = false;
    if (cred.kind === 'token') {
      // The whole token is checked before any I/O: a forged or edited link costs no SQL.
      const check = this.d.tokens.verify(cred.token, id, mode, preset);
      if (!check.ok) throw forbidden(check.reason === 'expired' ? 'The link has expired' : 'Invalid link');
      publicOnly = check.scope === 'public';
    }
    const row = await this.d.rows.find(id);
    // Missing, deleted, and an image this credential may not read all answer the same.
    const readable =
      row !== undefined &&
      (cred.kind === 'token' ? !publicOnly || row.visibility === 'public' : canRead(cred.viewer, row));
    if (!readable) throw notFound('No such image');
    return {
      row,
      tokenExpiresAt: cred.kind === 'token' ? (this.d.tokens.expiresAt(cred.token) ?? null) : null,
      byBearer: cred.kind === 'viewer',
    };
  }
}
