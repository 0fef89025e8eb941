import type { ProxyMode } from '../auth/proxy-links.js';
import type { ProxyTokens } from '../auth/proxy-token.js';
import type { Viewer } from '../auth/viewer.js';
import type { RecentRows } from '../db/recent-rows.js';
import { forbidden, notFound } from '../errors/index.js';
import type { ProxyGrant } from './proxy-grant.js';

/** How a `/proxy/:id` request proves its right: a capability token, or a bearer viewer. */
export type ProxyCredential = { kind: 'token'; token: string } | { kind: 'viewer'; viewer: Viewer };

/**
 * Who may fetch an image through `/proxy/:id`, decided before any byte or URL is handed out.
 * A bad token is refused before any I/O; a viewer who may not see the image hears exactly what
 * a missing image answers (no existence oracle).
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
    if (cred.kind === 'token') {
      // The whole token is checked before any I/O: a forged or edited link costs no SQL.
      const check = this.d.tokens.verify(cred.token, id, mode, preset);
      if (!check.ok) throw forbidden(check.reason === 'expired' ? 'The link has expired' : 'Invalid link');
    }
    const row = await this.d.rows.find(id);
    // Missing, deleted and (for a bearer) another owner's image all answer the same.
    if (!row || (cred.kind === 'viewer' && row.ownerId !== cred.viewer.id)) throw notFound('No such image');
    return {
      row,
      tokenExpiresAt: cred.kind === 'token' ? (this.d.tokens.expiresAt(cred.token) ?? null) : null,
      byBearer: cred.kind === 'viewer',
    };
  }
}
