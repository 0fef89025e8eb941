import { encodeKeyPath, type OriginTarget, type Storage } from '../storage.js';
import type { Variant } from '../variant.js';
import type { CdnSigner } from './cdn-signer.js';

/**
 * A storage whose URLs are signed for a CDN domain in front of it: object operations and the
 * readiness probe are the inner driver's; `signMany`/`urlFor` sign and build CDN URLs for the
 * path and variant query the inner driver names as its origin (`originOf`), so a variant still
 * reaches the origin as that driver asks for it. See docs/architecture.md, "CDN signers".
 */
export function withCdn(inner: Storage, cdn: CdnSigner): Storage {
  const targetOf = (key: string, variant: Variant | undefined): OriginTarget =>
    inner.originOf?.(key, variant) ?? { path: `/${encodeKeyPath(key)}`, query: '' };

  return {
    driver: inner.driver,
    // The URLs are the CDN's: its key signs them (the inner store's credentials sign nothing).
    signedBy: cdn.signedBy,
    put: (key, body, contentType, size) => inner.put(key, body, contentType, size),
    head: (key) => inner.head(key),
    get: (key, options) => inner.get(key, options),
    list: (prefix, options) => inner.list(prefix, options),
    delete: (key) => inner.delete(key),
    ...(inner.variantSets ? { variantSets: inner.variantSets } : {}),
    ...(inner.removeDebris ? { removeDebris: inner.removeDebris.bind(inner) } : {}),
    ping: () => inner.ping(),

    signMany(keys, window, variants) {
      return cdn.signMany(
        keys.map((key, i) => targetOf(key, variants?.[i])),
        window,
      );
    },

    urlFor(key, signature, variant) {
      return cdn.urlFor(targetOf(key, variant), signature);
    },

    originOf: (key, variant) => targetOf(key, variant),
  };
}
