import type { Readable } from 'node:stream';

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

export type StorageErrorKind = 'not_found' | 'unavailable' | 'timeout' | 'rejected';

/** Every driver failure is one of these kinds, so routes can map it to a status. */
export class StorageError extends Error {
  constructor(
    readonly kind: StorageErrorKind,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'StorageError';
  }
}

export interface Storage {
  readonly driver: 'local' | 'cos';
  put(key: string, body: Buffer, contentType: string): Promise<{ etag: string }>;
  /** null when the object does not exist. */
  head(key: string): Promise<ObjectInfo | null>;
  /** Streams the object (or one range of it); throws StorageError('not_found') when missing. */
  get(key: string, options?: GetOptions): Promise<ObjectStream>;
  /** Idempotent: deleting a missing object succeeds. */
  delete(key: string): Promise<void>;
  /** Signs many GET URLs with one shared window; CPU only, no I/O. Same order as keys. */
  signMany(keys: readonly string[], window: SignWindow): string[];
  /** Rebuilds the URL of a signed key. */
  urlFor(key: string, signature: UrlSignature): string;
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

/** Encodes an object key for a URL path, keeping the slashes. */
export function encodeKeyPath(key: string): string {
  return key.split('/').map(encodeURIComponent).join('/');
}
