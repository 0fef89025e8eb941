import { createHmac, timingSafeEqual } from 'node:crypto';
import { constants, createReadStream, createWriteStream, type Dirent } from 'node:fs';
import { access, mkdir, open, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { compareKeys } from '../lib/key-order.js';
import { detectFormat, FORMATS, SNIFF_BYTES } from '../uploads/sniff.js';
import { keyOfVariantDir, variantDirOf } from './local-variants.js';
import { tapBody } from './put-body.js';
import {
  encodeKeyPath,
  type GetOptions,
  type ListedObject,
  type ListPage,
  MAX_LIST_KEYS,
  type ObjectInfo,
  type ObjectStream,
  type RemovedDebris,
  type SignWindow,
  type Storage,
  StorageError,
  signerFingerprint,
  type UrlSignature,
  type VariantSets,
  VariantsLeftError,
} from './storage.js';
import type { Variant } from './variant.js';

export interface LocalStorageOptions {
  /** The object with key K is the file `${root}/K`. */
  root: string;
  /** Absolute base URL of the gateway that serves `/local-bucket/*`. */
  publicUrl: string;
  secret: string;
  /**
   * Where the object's variants are kept (`DATA_DIR/variants`, see local-variants.ts): a put or a
   * delete of an object removes its variants, so none outlives or misrepresents its original.
   */
  variantsRoot?: string;
}

/** Content types are kept beside the objects, so HEAD and GET can answer like a bucket. */
const META_SUFFIX = '.signet-meta.json';

/**
 * A put writes here first and renames when complete; a listing never shows these. One a crash
 * left is removed by the orphan sweep (`removeDebris`), only when its name is exactly what a put
 * writes (`isPutTempName`).
 */
const TMP_SUFFIX = '.tmp';

/** The temporary file a put of the object file `file` writes first (`isPutTempName` reads it). */
function putTempPath(file: string): string {
  return `${file}.${process.pid}.${Date.now()}${TMP_SUFFIX}`;
}

/** A folder entry's name that could be the last segment of an object key (`safeLocalPath`). */
function isObjectName(name: string): boolean {
  return name !== '' && name !== '.' && name !== '..' && !name.includes('/') && !name.endsWith(META_SUFFIX);
}

/** A canonical positive decimal (no sign, no leading zero) of 1 to `maxDigits` digits. */
function isDecimal(s: string, maxDigits: number): boolean {
  if (s.length === 0 || s.length > maxDigits || s[0] === '0') return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 48 || c > 57) return false;
  }
  return true;
}

/**
 * Whether a file name is exactly what a put writes before its rename (`putTempPath`):
 * `<object name>.<pid>.<ms>.tmp`, the pid (up to 7 digits) and the time (13) canonical decimals.
 * An operator's `report.tmp`, `x.tmp` or `report.2024.12.tmp` is not. Linear: two `lastIndexOf`, no regular expression.
 */
export function isPutTempName(name: string): boolean {
  if (!name.endsWith(TMP_SUFFIX)) return false;
  const rest = name.slice(0, -TMP_SUFFIX.length);
  const ms = rest.lastIndexOf('.');
  // `Date.now()` has 13 digits from 2001 to 2286, and a pid at most 7 (Linux' pid_max is at
  // most 4,194,304): `report.2024.12.tmp` or `sales.1.0.tmp` are not a put's.
  const stamp = rest.slice(ms + 1);
  if (ms < 0 || stamp.length !== 13 || !isDecimal(stamp, 13)) return false;
  const pid = rest.lastIndexOf('.', ms - 1);
  if (pid < 0 || !isDecimal(rest.slice(pid + 1, ms), 7)) return false;
  return isObjectName(rest.slice(0, pid));
}

/** The object name whose side file a name is (`<object name>.signet-meta.json`), or undefined. */
export function sideFileObjectName(name: string): string | undefined {
  if (!name.endsWith(META_SUFFIX)) return undefined;
  const object = name.slice(0, -META_SUFFIX.length);
  return isObjectName(object) ? object : undefined;
}

/** Largest side file a put writes, with room to spare (a content type and an ETag). */
const META_MAX_BYTES = 4096;

/**
 * Whether a side file's content is what a put writes: a JSON object of at most `contentType` and
 * `etag`, both strings. Anything else named like one is not Signet's and is left alone.
 */
function isPutSideFile(text: string): boolean {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return false;
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  return Object.entries(v).every(([k, x]) => (k === 'contentType' || k === 'etag') && typeof x === 'string');
}

/** Rejects keys that could escape the bucket folder or collide with metadata files. */
export function safeLocalPath(root: string, key: string): string {
  if (key === '' || key.includes('\0') || key.endsWith(META_SUFFIX)) {
    throw new StorageError('rejected', 'invalid object key');
  }
  const parts = key.split('/');
  if (parts.some((p) => p === '' || p === '.' || p === '..'))
    throw new StorageError('rejected', 'invalid object key');
  const full = path.resolve(root, ...parts);
  if (!full.startsWith(path.resolve(root) + path.sep))
    throw new StorageError('rejected', 'invalid object key');
  return full;
}

/**
 * The type of an object that Signet did not write (no side file: copied into the folder, then
 * imported with `signet import`), judged by its first bytes as an upload is. A bucket keeps the
 * type the uploader set; a file has none, and without this it would be served as
 * application/octet-stream. Reading 4 KB per HEAD or GET of such an object costs less than
 * writing side files from the importer, which then would need write access to the bucket and
 * would leave the objects copied in later without one. Not an image: undefined (the route's
 * default, a download).
 */
async function sniffContentType(file: string): Promise<string | undefined> {
  const fd = await open(file, 'r');
  try {
    const buf = Buffer.alloc(SNIFF_BYTES);
    const { bytesRead } = await fd.read(buf, 0, SNIFF_BYTES, 0);
    const format = detectFormat(buf.subarray(0, bytesRead));
    return format ? FORMATS[format].contentType : undefined;
  } finally {
    await fd.close();
  }
}

/**
 * The string both sides sign: the window, the key and the variant's key (when a variant is asked
 * for), so none of them can be swapped or edited.
 */
export function localSignature(secret: string, key: string, window: SignWindow, variantKey?: string): string {
  const variantPart = variantKey === undefined ? '' : `\n${variantKey}`;
  return createHmac('sha256', secret)
    .update(`${window.start}\n${window.end}\n${key}${variantPart}`)
    .digest('base64url');
}

export function verifyLocalSignature(
  secret: string,
  key: string,
  window: SignWindow,
  sig: string,
  variantKey?: string,
): boolean {
  const expected = Buffer.from(localSignature(secret, key, window, variantKey));
  const given = Buffer.from(sig);
  return expected.length === given.length && timingSafeEqual(expected, given);
}

/** Throws unless the bucket folder is there (a directory). */
async function checkBucketRoot(root: string): Promise<void> {
  const st = await stat(root).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return null;
    throw err;
  });
  if (!st?.isDirectory()) {
    throw new StorageError(
      'unavailable',
      `the local bucket ${root} ${st ? 'is not a directory' : 'does not exist'} (a node makes it at its first start: is DATA_DIR right?)`,
    );
  }
}

/**
 * Makes the bucket folder when it is not there yet: a node's start does (the first start of an
 * install has none), `signet check` and `/readyz` never do (`ping` reports it missing).
 */
export async function ensureLocalBucket(root: string): Promise<void> {
  await mkdir(root, { recursive: true });
}

export function createLocalStorage(opts: LocalStorageOptions): Storage {
  const root = path.resolve(opts.root);
  const base = `${opts.publicUrl.replace(/\/+$/, '')}/local-bucket/`;
  const variantsRoot = opts.variantsRoot === undefined ? undefined : path.resolve(opts.variantsRoot);
  const removeVariants = async (key: string) => {
    if (variantsRoot) await rm(variantDirOf(variantsRoot, key), { recursive: true, force: true });
  };
  /** The puts of this process still writing: object file → its temporary file. */
  const writing = new Map<string, string>();

  async function info(key: string): Promise<ObjectInfo | null> {
    const file = safeLocalPath(root, key);
    try {
      const st = await stat(file);
      if (!st.isFile()) return null;
      const meta = JSON.parse(await readFile(file + META_SUFFIX, 'utf8').catch(() => '{}')) as {
        contentType?: string;
        etag?: string;
      };
      return {
        size: st.size,
        etag: meta.etag ?? `"${st.size.toString(16)}-${st.mtimeMs.toString(16)}"`,
        contentType: meta.contentType ?? (await sniffContentType(file)),
        lastModified: st.mtime,
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw new StorageError('unavailable', 'local bucket unreadable', { cause: err });
    }
  }

  return {
    driver: 'local',
    signedBy: signerFingerprint('local', opts.secret, base),

    async put(key, body, contentType, size) {
      const file = safeLocalPath(root, key);
      const tap = tapBody(body, size);
      // Write to a temporary name first, so a reader never sees half an object.
      const tmp = putTempPath(file);
      // Registered before the first await: the sweep never removes a file a put here is writing.
      writing.set(file, tmp);
      try {
        // The folders below the bucket's, never the bucket's own: a put into a bucket folder gone
        // (a volume unmounted) made it again, empty, and the probe then called it healthy while
        // every other image answered 404.
        await checkBucketRoot(root);
        await mkdir(path.dirname(file), { recursive: true });
        await pipeline(tap, createWriteStream(tmp));
        await writeFile(file + META_SUFFIX, JSON.stringify({ contentType, etag: tap.etag }));
        await rename(tmp, file);
        await removeVariants(key);
      } catch (err) {
        tap.destroy();
        await rm(tmp, { force: true }).catch(() => {});
        if (err instanceof StorageError) throw err; // the body was not what it claimed to be
        // A full or read-only disk is this store being unavailable, like an origin that fails.
        throw new StorageError('unavailable', 'local bucket write failed', { cause: err });
      } finally {
        if (writing.get(file) === tmp) writing.delete(file);
      }
      return { etag: tap.etag! };
    },

    head: info,

    async get(key, options: GetOptions = {}): Promise<ObjectStream> {
      const meta = await info(key);
      if (!meta) throw new StorageError('not_found', 'no such object');
      let range = options.range;
      if (range) {
        if (range.start >= meta.size || range.start > range.end) {
          throw new StorageError('rejected', 'range not satisfiable');
        }
        range = { start: range.start, end: Math.min(range.end, meta.size - 1) };
      }
      const body = createReadStream(safeLocalPath(root, key), {
        start: range?.start,
        end: range?.end,
        signal: options.signal,
      });
      return { ...meta, body, range };
    },

    async list(prefix, options = {}) {
      const maxKeys = Math.min(MAX_LIST_KEYS, Math.max(1, options.maxKeys ?? MAX_LIST_KEYS));
      try {
        return await listLocal(root, prefix, options.marker, maxKeys);
      } catch (err) {
        throw new StorageError('unavailable', 'local bucket unreadable', { cause: err });
      }
    },

    // The object first: until it is gone a failure changes nothing. After it, its metadata file
    // and variants are leftovers (VariantsLeftError), which the orphan sweep removes:
    // docs/architecture.md, "Deleting an image".
    async delete(key) {
      const file = safeLocalPath(root, key);
      try {
        await rm(file, { force: true });
      } catch (err) {
        throw new StorageError('unavailable', 'local bucket delete failed', { cause: err });
      }
      try {
        await rm(file + META_SUFFIX, { force: true });
        await removeVariants(key);
      } catch (err) {
        const left = variantsRoot ? variantDirOf(variantsRoot, key) : file + META_SUFFIX;
        throw new VariantsLeftError(key, left, { cause: err });
      }
    },

    ...(variantsRoot ? { variantSets: localVariantSets(variantsRoot) } : {}),

    async removeDebris(before) {
      try {
        return await removeLocalDebris(root, before, writing);
      } catch (err) {
        throw new StorageError('unavailable', 'local bucket unreadable', { cause: err });
      }
    },

    signMany(keys, window, variants) {
      return keys.map((key, i) => localSignature(opts.secret, key, window, variants?.[i]?.key));
    },

    urlFor(key, s: UrlSignature, variant?: Variant) {
      const v = variant ? `&v=${variant.key}` : '';
      return `${base}${encodeKeyPath(key)}?s=${s.start}&e=${s.end}${v}&sig=${s.sig}`;
    },

    // Below `${publicUrl}/local-bucket`, the variant named as the route wants it. The route checks
    // its own signature, so only an origin that signs (the tests' CDN edge) can fetch through it.
    originOf(key, variant?: Variant) {
      return { path: `/${encodeKeyPath(key)}`, query: variant ? `v=${variant.key}` : '' };
    },

    // Looks, never makes: a bucket folder gone (a volume not mounted, a wrong DATA_DIR) must show
    // as down, not come back empty. A node makes it at its start (ensureLocalBucket).
    async ping() {
      await checkBucketRoot(root);
      await access(root, constants.W_OK);
    },
  };
}

/**
 * Keys under `root` that start with prefix and sort after marker, in key order, at most maxKeys
 * and the marker to go on from. Directories are walked in key order (a directory `d` holds the
 * keys `d/…`, so it sorts as `d/`), and a directory whose keys all sort before the marker is not
 * read at all, so a page costs the directories along its way, not the whole bucket.
 */
async function listLocal(
  root: string,
  prefix: string,
  marker: string | undefined,
  maxKeys: number,
): Promise<ListPage> {
  const objects: ListedObject[] = [];
  let more = false;
  // Byte order of the UTF-8 keys, as S3 and COS list (ListPage): `<` on strings compares UTF-16
  // units, which puts a character beyond U+FFFF before U+E000-U+FFFF.
  const after = (key: string) => marker === undefined || compareKeys(key, marker) > 0;
  /** Whether some key under `dir/` could still come after the marker. */
  const worthReading = (dirKey: string) =>
    marker === undefined || marker.startsWith(dirKey) || compareKeys(dirKey, marker) > 0;
  const relevant = (key: string) => key.startsWith(prefix) || prefix.startsWith(key);

  async function walk(dir: string, base: string): Promise<void> {
    const entries = await entriesOf(dir);
    if (!entries) return;
    const sorted = entries
      .map((e) => ({ e, sortKey: base + e.name + (e.isDirectory() ? '/' : '') }))
      .sort((a, b) => compareKeys(a.sortKey, b.sortKey));
    for (const { e, sortKey } of sorted) {
      if (more) return;
      if (e.isDirectory()) {
        if (relevant(sortKey) && worthReading(sortKey)) await walk(path.join(dir, e.name), sortKey);
        continue;
      }
      const key = sortKey;
      if (!e.isFile() || key.endsWith(META_SUFFIX) || isPutTempName(e.name)) continue;
      if (!key.startsWith(prefix) || !after(key)) continue;
      if (objects.length === maxKeys) {
        more = true;
        return;
      }
      const st = await stat(path.join(dir, e.name)).catch(() => null);
      if (st) objects.push({ key, size: st.size, lastModified: st.mtime });
    }
  }

  await walk(root, '');
  return { objects, nextMarker: more ? objects.at(-1)?.key : undefined };
}

/**
 * The variant folders under `variantsRoot`, one set per object, in folder-name order: the folder
 * name is the object's key encoded (local-variants.ts, `variantDirOf`), or, when hashed, the key
 * is in its `.key` file. A hashed folder without one (made before it was written) is not listed.
 */
function localVariantSets(variantsRoot: string): VariantSets {
  return {
    async list(options = {}) {
      const maxKeys = Math.min(MAX_LIST_KEYS, Math.max(1, options.maxKeys ?? MAX_LIST_KEYS));
      let entries: Dirent[];
      try {
        entries = (await entriesOf(variantsRoot)) ?? [];
      } catch (err) {
        throw new StorageError('unavailable', 'local variants unreadable', { cause: err });
      }
      const names = entries
        .filter((e) => e.isDirectory() && (options.marker === undefined || e.name > options.marker))
        .map((e) => e.name)
        .sort();
      const objects: ListedObject[] = [];
      for (const name of names.slice(0, maxKeys)) {
        const dir = path.join(variantsRoot, name);
        const [key, st] = await Promise.all([keyOfVariantDir(dir), stat(dir).catch(() => null)]);
        if (key !== undefined && st) objects.push({ key, size: 0, lastModified: st.mtime });
      }
      return { objects, nextMarker: names.length > maxKeys ? names[maxKeys - 1] : undefined };
    },
    async delete(key) {
      try {
        await rm(variantDirOf(variantsRoot, key), { recursive: true, force: true });
      } catch (err) {
        throw new StorageError('unavailable', 'local variants delete failed', { cause: err });
      }
    },
  };
}

/**
 * Removes what a crashed write left in the bucket: a put's temporary file (the process died while
 * writing it) and a metadata file without its object (written before the rename, or left by a
 * delete that removed the object only), each last changed before `before`. Only files of exactly
 * the names a put writes are judged (`isPutTempName`: `<object>.<pid>.<ms>.tmp`;
 * `sideFileObjectName`: `<object>.signet-meta.json`, whose content is a put's too): an operator's
 * `report.tmp` copied into the folder is not Signet's and stays. A temporary file a put of this
 * process is writing, or the metadata of an object being put (`writing`: object file → temporary
 * file), stays whatever its age: a stalled upload is still a live one.
 */
async function removeLocalDebris(
  root: string,
  before: Date,
  writing: ReadonlyMap<string, string>,
): Promise<RemovedDebris[]> {
  const removed: RemovedDebris[] = [];
  const isLive = (full: string, tmp: boolean) =>
    tmp ? [...writing.values()].includes(full) : writing.has(full.slice(0, -META_SUFFIX.length));
  async function walk(dir: string): Promise<void> {
    const entries = await entriesOf(dir);
    if (!entries) return;
    const files = new Set(entries.filter((e) => e.isFile()).map((e) => e.name));
    for (const e of entries) {
      const full = path.join(dir, e.name);
      if (e.isDirectory()) {
        await walk(full);
        continue;
      }
      if (!e.isFile()) continue;
      const tmp = isPutTempName(e.name);
      const object = tmp ? undefined : sideFileObjectName(e.name);
      if (!tmp && (object === undefined || files.has(object))) continue;
      if (isLive(full, tmp)) continue;
      const st = await stat(full).catch(() => null);
      if (!st || st.mtime >= before) continue;
      if (!tmp) {
        if (st.size > META_MAX_BYTES) continue;
        const text = await readFile(full, 'utf8').catch(() => null);
        if (text === null || !isPutSideFile(text)) continue;
      }
      // Judged again right before removing: a put may have started while this one was stat'ed.
      if (isLive(full, tmp)) continue;
      await rm(full, { force: true });
      removed.push({ path: path.relative(root, full), bytes: st.size, lastModified: st.mtime });
    }
  }
  await walk(root);
  return removed;
}

/** A folder's entries, or undefined when it does not exist (yet, or any more). */
async function entriesOf(dir: string): Promise<Dirent[] | undefined> {
  try {
    return await readdir(dir, { withFileTypes: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}
