import { type ListedObject, type Storage, type UrlSignature, VariantsLeftError } from './storage.js';
import { parseVariantKey, type Variant } from './variant.js';

/**
 * Variants as derived objects (the `s3` driver; docs/architecture.md, "Variants on s3"): Signet
 * renders a preset's variant once, after upload, and keeps it in the bucket next to nothing a
 * user can name:
 *
 *   `_signet/variants/<object key>/<variant key>`
 *
 * Upload keys are chosen by the server (`u/…`, images/upload.ts), so none is ever under this
 * prefix; the orphan sweep lists only upload keys, and `signet import` skips the prefix.
 */
export const DERIVED_VARIANT_PREFIX = '_signet/variants/';

/** The key of the derived object of `variant` of the object `objectKey`. */
export function derivedKeyOf(objectKey: string, variant: Variant): string {
  return `${DERIVED_VARIANT_PREFIX}${objectKey}/${variant.key}`;
}

/**
 * Every derived object of `objectKey` is directly under this prefix. Not everything under it is
 * one: the derived objects of `photos/cat/1.png` are under `photos/cat`'s prefix too, one level
 * deeper (`derivedOriginalOf` tells them apart).
 */
export function derivedPrefixOf(objectKey: string): string {
  return `${DERIVED_VARIANT_PREFIX}${objectKey}/`;
}

/**
 * The original's key of a key that is exactly a derived object's (`derivedKeyOf`): the reserved
 * prefix, a non-empty original key, `/`, and a last segment that parses as a variant key
 * (`parseVariantKey`). Anything else under the prefix is not a derived object Signet wrote:
 * undefined. Linear, no regular expression.
 */
export function derivedOriginalOf(key: string): string | undefined {
  if (!key.startsWith(DERIVED_VARIANT_PREFIX)) return undefined;
  const slash = key.lastIndexOf('/');
  if (slash <= DERIVED_VARIANT_PREFIX.length) return undefined;
  if (parseVariantKey(key.slice(slash + 1)) === null) return undefined;
  return key.slice(DERIVED_VARIANT_PREFIX.length, slash);
}

export function isDerivedKey(key: string): boolean {
  return key.startsWith(DERIVED_VARIANT_PREFIX);
}

/** The original's key of a derived object's key (a variant key never holds a `/`). */
export function originalKeyOf(derivedKey: string): string {
  return derivedKey.slice(DERIVED_VARIANT_PREFIX.length, derivedKey.lastIndexOf('/'));
}

/**
 * A variant's signature says which object it was made for: `d:` the derived object, `o:` the
 * original (the preset's object did not exist yet). The cache keeps only the signature and the
 * URL is rebuilt from the row's key, so without the mark a signature made for the original, read
 * back after the row says the derived object exists (or the other way round, from a lagging
 * replica or a node's recent rows), would be built into a URL for the other object: a 403 until
 * its step ends. With it, a stale entry still builds a working URL, of the object it signed.
 * Neither SigV4 (hex) nor a CDN signer (hex, base64url) writes a `:`.
 */
const DERIVED = 'd:';
const ORIGINAL = 'o:';

/**
 * The storage of a driver whose variants are derived objects. The domain names the object a
 * variant's URL is for (images/variants.ts `objectKeyFor`: the derived key once its preset is
 * made, else the original's); this signs that object and marks the signature, builds the URL of
 * the object a signature was made for, and deletes an object's derived objects with it.
 */
export function withDerivedVariants(inner: Storage): Storage {
  /** The object a variant's signature was made for, from its mark. */
  function signedObject(key: string, sig: string, variant: Variant): { key: string; sig: string } {
    if (sig.startsWith(DERIVED)) {
      return { key: isDerivedKey(key) ? key : derivedKeyOf(key, variant), sig: sig.slice(DERIVED.length) };
    }
    const original = isDerivedKey(key) ? originalKeyOf(key) : key;
    // Unmarked: signed by a version before derived objects, always for the original.
    return { key: original, sig: sig.startsWith(ORIGINAL) ? sig.slice(ORIGINAL.length) : sig };
  }

  /**
   * Every derived object of `key` (idempotent): the objects directly under its prefix whose last
   * segment is a variant key. Deeper ones are other originals' (`photos/cat/1.png`'s, under
   * `photos/cat`'s prefix), whose rows may be live; they are listed past, never deleted.
   */
  async function deleteDerived(key: string): Promise<void> {
    const prefix = derivedPrefixOf(key);
    let marker: string | undefined;
    do {
      const page = await inner.list(prefix, marker !== undefined ? { marker } : {});
      for (const o of page.objects) {
        if (derivedOriginalOf(o.key) === key) await inner.delete(o.key);
      }
      marker = page.nextMarker;
    } while (marker !== undefined);
  }

  return {
    driver: inner.driver,
    // The URLs are the inner store's, signed with its credentials.
    signedBy: inner.signedBy,
    put: (key, body, contentType, size) => inner.put(key, body, contentType, size),
    head: (key) => inner.head(key),
    get: (key, options) => inner.get(key, options),
    list: (prefix, options) => inner.list(prefix, options),
    ping: () => inner.ping(),

    /**
     * The object first (a failure changes nothing), then its derived objects. A failure between
     * is VariantsLeftError: the object is gone, so the image's delete goes on, and the orphan
     * sweep removes the derived objects of a key no live row names (`variantSets`;
     * docs/architecture.md, "Deleting an image").
     */
    async delete(key) {
      await inner.delete(key);
      if (isDerivedKey(key)) return;
      try {
        await deleteDerived(key);
      } catch (err) {
        throw new VariantsLeftError(key, derivedPrefixOf(key), { cause: err });
      }
    },

    variantSets: {
      /**
       * A page of derived objects, one entry per original (its bytes, its newest object's time),
       * in the order of each original's first object. An original's objects need not be
       * consecutive: `photos/cat/1280x_-inside-_-_`, then `photos/cat/2.png`'s, then
       * `photos/cat/320x320-cover-webp-75` (byte order), so they are gathered by original, not
       * by run. Objects that are not exactly a derived key (`derivedOriginalOf`) are not
       * Signet's and belong to no set.
       */
      async list(options = {}) {
        const page = await inner.list(DERIVED_VARIANT_PREFIX, options);
        const sets = new Map<string, ListedObject>();
        for (const o of page.objects) {
          const key = derivedOriginalOf(o.key);
          if (key === undefined) continue;
          const set = sets.get(key);
          if (!set) sets.set(key, { key, size: o.size, lastModified: o.lastModified });
          else {
            set.size += o.size;
            if (o.lastModified > set.lastModified) set.lastModified = o.lastModified;
          }
        }
        return { objects: [...sets.values()], nextMarker: page.nextMarker };
      },
      delete: (key) => deleteDerived(key),
    },

    // The object to sign is the key itself (the domain chose it); only the mark is added here.
    signMany(keys, window, variants) {
      const sigs = inner.signMany(keys, window);
      if (!variants) return sigs;
      return sigs.map((sig, i) => {
        if (!variants[i]) return sig;
        return (isDerivedKey(keys[i]!) ? DERIVED : ORIGINAL) + sig;
      });
    },

    urlFor(key, signature: UrlSignature, variant) {
      if (!variant) return inner.urlFor(key, signature);
      const o = signedObject(key, signature.sig, variant);
      // Written out, not spread: a spread followed by more properties is V8's slow path, once per
      // variant URL here (docs/benchmarks.md, finding 33).
      return inner.urlFor(o.key, {
        start: signature.start,
        end: signature.end,
        sig: o.sig,
        by: signature.by,
        region: signature.region,
      });
    },
  };
}
