import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { Variant } from './variant.js';

/** A signature window shared by a whole batch (unix seconds). */
export interface SignWindow {
  start: number;
  end: number;
}

/**
 * What the cache keeps for a signed URL: the window and the signature only. The URL itself is
 * rebuilt from the object key (which the image row carries) and the driver's fixed parts, so a
 * cached entry stays well under 100 bytes.
 */
export interface UrlSignature extends SignWindow {
  sig: string;
  /**
   * Who made it: the signing store's `signedBy` (undefined for a store without one). A cached
   * signature another signer made is a miss: see `Storage.signedBy`.
   */
  by?: string | undefined;
  /**
   * The region whose bucket it was signed for, when not this node's own (several regions: see
   * docs/operations.md). A cached signature for another bucket than the one now chosen is a miss.
   */
  region?: string | undefined;
}

/**
 * An object as a CDN's origin serves it: `path` below the store's root (URL-encoded, starting
 * with `/`) and `query`, the request parameters that ask for a variant (without `?`; '' for none).
 */
export interface OriginTarget {
  path: string;
  query: string;
}

export interface ObjectInfo {
  size: number;
  etag: string;
  contentType: string | undefined;
  lastModified: Date | undefined;
}

export interface ByteRange {
  /** Inclusive offsets. */
  start: number;
  end: number;
}

export interface GetOptions {
  range?: ByteRange;
  signal?: AbortSignal;
}

export interface ObjectStream extends ObjectInfo {
  body: Readable;
  /** Present when a range was asked for and served. */
  range: ByteRange | undefined;
}

/** One object of a listing. */
export interface ListedObject {
  key: string;
  size: number;
  lastModified: Date;
}

export interface ListOptions {
  /** Start after this key (exclusive), as a previous page's `nextMarker` says. */
  marker?: string;
  /** Most keys in one page (default and upper bound 1000, like COS). */
  maxKeys?: number;
}

/** One page of keys in UTF-8 byte order; `nextMarker` is undefined on the last page. */
export interface ListPage {
  objects: ListedObject[];
  nextMarker: string | undefined;
}

/**
 * What a put stores: bytes in memory, or a stream of exactly `size` bytes (read once, never held
 * whole by the driver).
 */
export type PutBody = Buffer | Readable;

export type StorageErrorKind = 'not_found' | 'unavailable' | 'timeout' | 'rejected';

/** Every driver failure is one of these kinds, so routes can map it to a status. */
export class StorageError extends Error {
  /** The store's HTTP status, when it answered one (a store's refusal, a 404). */
  readonly status: number | undefined;

  constructor(
    readonly kind: StorageErrorKind,
    message: string,
    options?: { cause?: unknown; status?: number },
  ) {
    super(message, options);
    this.name = 'StorageError';
    this.status = options?.status;
  }
}

/**
 * A `delete` that removed the object but not everything kept of it (its variants or derived
 * objects): the object is gone, so for its caller the delete happened. `leftover` names what
 * remains (a folder or a key prefix) for the log; the orphan sweep removes it once no live row
 * names the object (docs/architecture.md, "Deleting an image").
 */
export class VariantsLeftError extends StorageError {
  constructor(
    readonly key: string,
    readonly leftover: string,
    options?: { cause?: unknown },
  ) {
    super('unavailable', `the object ${key} was deleted but not its variants`, options);
    this.name = 'VariantsLeftError';
  }
}

/**
 * What a store keeps of an object besides the object (the `local` driver's rendered variants, the
 * derived objects on `s3`), seen by the object it was made from: the orphan sweep removes the
 * sets of objects no live row names (docs/architecture.md, "Deleting an image").
 */
export interface VariantSets {
  /**
   * One page of sets: `key` is the object's key, `lastModified` the set's newest change, `size`
   * its bytes where known. `nextMarker` is opaque (pass it back as `marker`). A set may appear
   * on two pages.
   */
  list(options?: ListOptions): Promise<ListPage>;
  /** Removes the set of `key` (idempotent; the object itself is not touched). */
  delete(key: string): Promise<void>;
}

/** A file a crashed write left in the bucket beside the objects (`local`), removed by the sweep. */
export interface RemovedDebris {
  /** Its path below the bucket's root. */
  path: string;
  bytes: number;
  lastModified: Date;
}

export interface Storage {
  readonly driver: 'local' | 'cos' | 's3';
  /**
   * Who signs this store's URLs: a short fingerprint of what a signature depends on besides the
   * key, the window and the variant (the credentials and the host or domain they sign for; a
   * CDN's key). A URL is rebuilt from a cached signature with the credentials of the node that
   * reads it, so after a key rotation a node would wrap a signature made with the old key in a
   * URL naming the new one (refused by the store) until the step ended; a cached signature whose
   * `by` is not this is read as a miss instead. See docs/architecture.md, "Storage drivers and
   * signing".
   */
  readonly signedBy: string;
  /**
   * Stores an object (`size` is required for a stream). A put that fails leaves nothing behind:
   * the driver cuts off a body it has not finished sending, or waits for the request to settle,
   * and then deletes what may have landed, in the background (the caller is answered at once).
   */
  put(key: string, body: PutBody, contentType: string, size?: number): Promise<{ etag: string }>;
  /** null when the object does not exist. */
  head(key: string): Promise<ObjectInfo | null>;
  /** Streams the object (or one range of it); throws StorageError('not_found') when missing. */
  get(key: string, options?: GetOptions): Promise<ObjectStream>;
  /** One page of the keys that start with prefix (the orphan sweep walks them). */
  list(prefix: string, options?: ListOptions): Promise<ListPage>;
  /**
   * Idempotent: deleting a missing object succeeds. Deletes the object first, then what the store
   * keeps of it (`variantSets`). A failure before the object is gone throws a `StorageError` and
   * changes nothing a reader sees; once the object is gone, a failure to remove the rest throws
   * `VariantsLeftError` (the object is deleted; the orphan sweep removes the rest).
   */
  delete(key: string): Promise<void>;
  /** What the store keeps of objects besides them, for the orphan sweep; absent: nothing. */
  variantSets?: VariantSets;
  /**
   * Removes the files crashed writes left (`local`: a put's temporary file, a metadata file
   * without its object) last changed before `before`, never one a put of this process is
   * writing. Absent: the store leaves none (a bucket keeps no incomplete simple upload).
   */
  removeDebris?(before: Date): Promise<RemovedDebris[]>;
  /**
   * Signs many GET URLs with one shared window; CPU only, no I/O. Same order as keys.
   * `variants[i]`, when present, is the variant of `keys[i]` to sign (undefined: the original);
   * a variant's signature covers the variant, so a URL whose variant part was changed is refused.
   */
  signMany(
    keys: readonly string[],
    window: SignWindow,
    variants?: readonly (Variant | undefined)[],
  ): string[];
  /** Rebuilds the URL of a signed key (of its variant, when given: the one it was signed for). */
  urlFor(key: string, signature: UrlSignature, variant?: Variant): string;
  /**
   * Where a CDN in front of this store fetches an object or one of its variants (see
   * docs/architecture.md, "CDN signers"). Optional: without it a CDN fetches the object's own path
   * for the original and for every variant.
   */
  originOf?(key: string, variant?: Variant): OriginTarget;
  /** Cheap reachability check for /readyz. */
  ping(): Promise<void>;
}

/**
 * How long a client may keep an object fetched through a signed URL. Object keys never change (a
 * new upload is a new key), so the bytes behind a key never do either: a year is safe.
 */
export const OBJECT_MAX_AGE_SECONDS = 31_536_000;

/**
 * The Cache-Control of every object served through a signed URL (COS: signed into the URL as
 * `response-cache-control` and stored on upload; local: set by the bucket route). `private`: the
 * URL is a capability, so shared caches must not hand the bytes to someone without it.
 */
export const OBJECT_CACHE_CONTROL = `private, max-age=${OBJECT_MAX_AGE_SECONDS}, immutable`;
/** Most keys one list call returns (COS's own bound). */
export const MAX_LIST_KEYS = 1000;

/** ASCII characters encodeURIComponent leaves as they are (A-Z a-z 0-9 - _ . ~), and `/`. */
const PATH_SAFE = (() => {
  const safe = new Uint8Array(128);
  for (const c of 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~/')
    safe[c.charCodeAt(0)] = 1;
  return safe;
})();

/**
 * Encodes an object key for a URL path, keeping the slashes. Keys Signet writes (`u/<owner>/<id>.jpg`)
 * have nothing to encode: they are returned as they are after one pass over their characters,
 * instead of split, encoded per segment and joined again (every URL a cold page builds passes
 * here: docs/benchmarks.md, finding 33).
 */
export function encodeKeyPath(key: string): string {
  for (let i = 0; i < key.length; i++) {
    if (!PATH_SAFE[key.charCodeAt(i)]) return key.split('/').map(encodeURIComponent).join('/');
  }
  return key;
}

/**
 * A `signedBy` fingerprint of the given parts (secrets among them): 8 characters of their SHA-256
 * in base64url, which names the signer without revealing any part, and has no `.` (the cache's
 * separator, urls/store.ts).
 */
export function signerFingerprint(...parts: readonly (string | undefined)[]): string {
  return createHash('sha256')
    .update(parts.map((p) => p ?? '').join('\0'))
    .digest('base64url')
    .slice(0, 8);
}
