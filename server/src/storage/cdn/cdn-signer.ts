import type { OriginTarget, SignWindow, UrlSignature } from '../storage.js';

/** `CDN_AUTH_TYPE`: Tencent CDN authentication types A–D, or CloudFront canned-policy URLs. */
export const CDN_AUTH_TYPES = ['tencent-a', 'tencent-b', 'tencent-c', 'tencent-d', 'cloudfront'] as const;
export type CdnAuthType = (typeof CDN_AUTH_TYPES)[number];

/**
 * Signs URLs for a CDN domain in front of the store (docs/architecture.md, "CDN signers"). The
 * same pair as the storage signers: `signMany` makes the part that needs the key (cached as
 * `{start, end, sig}`), `urlFor` rebuilds the URL from it. Both are deterministic in
 * (target, window), so a cached signature gives the byte-identical URL on every node.
 */
export interface CdnSigner {
  readonly type: CdnAuthType;
  /** The store's `signedBy` with this CDN in front (storage.ts): the key, its id, the domain. */
  readonly signedBy: string;
  /** One signature per target, all for the same window; CPU only. */
  signMany(targets: readonly OriginTarget[], window: SignWindow): string[];
  /** The CDN URL of a target signed for `signature`'s window. */
  urlFor(target: OriginTarget, signature: UrlSignature): string;
}
