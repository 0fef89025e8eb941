import type { TokenScope } from '../auth/proxy-token.js';
import type { Viewer } from '../auth/viewer.js';
import type { ReadScope } from '../db/images-repo.js';
import type { ImageRow } from '../db/types.js';

/**
 * Who sees what, in one place (docs/architecture.md, "Who sees what"). Every entry point —
 * GraphQL lookups by id, the proxy, subscriptions, deletes and visibility changes — asks these
 * functions, so the rules cannot drift apart:
 *
 * - admins and services read every live image by id;
 * - a user reads its own images and every public one;
 * - the anonymous viewer (PUBLIC_READ_ANONYMOUS=true) reads public images only;
 * - only the owner or an admin may delete an image or change its visibility.
 */

/** The rows a viewer may read by id, as a filter of the lookup's one SQL statement. */
export function readScope(viewer: Viewer): ReadScope {
  if (viewer.isAdmin || viewer.role === 'service') return { all: true };
  if (viewer.role === 'anonymous') return { all: false, ownerId: null, publicToo: true };
  return { all: false, ownerId: viewer.id, publicToo: true };
}

/** The same rule on a row already read (the proxy, a visibility change reaching a subscription). */
export function canRead(viewer: Viewer, row: Pick<ImageRow, 'ownerId' | 'visibility'>): boolean {
  if (viewer.isAdmin || viewer.role === 'service') return true;
  if (row.visibility === 'public') return true;
  return viewer.role !== 'anonymous' && row.ownerId === viewer.id;
}

/** Delete and change visibility: the owner or an admin (a service owns what it uploaded). */
export function canManage(viewer: Viewer, row: Pick<ImageRow, 'ownerId'>): boolean {
  if (viewer.role === 'anonymous') return false;
  return viewer.isAdmin || row.ownerId === viewer.id;
}

/**
 * The scope of a proxy link minted for this viewer: `public` when it reads the image only because
 * the image is public (not as its owner, an admin or a service), so the link stops working when
 * the image turns private; `any` otherwise.
 */
export function proxyLinkScope(viewer: Viewer, row: Pick<ImageRow, 'ownerId'>): TokenScope {
  if (viewer.isAdmin || viewer.role === 'service') return 'any';
  return viewer.role === 'anonymous' || row.ownerId !== viewer.id ? 'public' : 'any';
}
