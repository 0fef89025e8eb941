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
      tokens: Pick<ProxyTokens, 'precheck' | 'verify' | 'expiresAt'>;
      rows: Pick<RecentRows, 'find'>;
    },
  ) {}

  /** The checks that need no row (shape, key id, expiry): run first, so a bad token costs no SQL. */
  precheck(cred: ProxyCredential): void {
    if (cred.kind !== 'token') return;
    const pre = this.d.tokens.precheck(cred.token);
    if (!pre.ok) throw forbidden(pre.reason === 'expired' ? 'The link has expired' : 'Invalid link');
  }

  async grant(id: string, cred: ProxyCredential): Promise<ProxyGrant> {
    this.precheck(cred);
    const row = await this.d.rows.find(id);
    // Another owner's image answers exactly like a missing one for bearer requests.
    if (!row || (cred.kind === 'viewer' && row.ownerId !== cred.viewer.id)) throw notFound('No such image');
    if (cred.kind === 'token' && !this.d.tokens.verify(cred.token, row.id, row.ownerId).ok) {
      throw forbidden('Invalid link');
    }
    return {
      row,
      tokenExpiresAt: cred.kind === 'token' ? (this.d.tokens.expiresAt(cred.token) ?? null) : null,
      byBearer: cred.kind === 'viewer',
    };
  }
}
