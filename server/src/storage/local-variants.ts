import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import { VariantRenderError, type VariantRenderer } from './render-variant.js';
import { type Storage, StorageError } from './storage.js';
import type { Variant } from './variant.js';

/**
 * The local driver's variants: made with the renderer on their first request, then kept as files
 * under `DATA_DIR/variants/<encoded object key>/<variant key>` — outside the bucket folder, so
 * listings and the orphan sweep never see them, and one folder per object, so deleting the
 * object deletes its variants at once. See docs/architecture.md, "Variants on local".
 */

/** A variant on disk, with what serving it needs. */
export interface StoredVariant {
  file: string;
  size: number;
  etag: string;
  contentType: string;
  lastModified: Date;
  width: number;
  height: number;
}

interface VariantMeta {
  etag: string;
  contentType: string;
  width: number;
  height: number;
}

/** Longest folder name used as is; a longer encoded key is hashed (file systems stop at 255). */
const MAX_NAME = 200;

/**
 * The folder of an object's variants: the key percent-encoded into one path segment, dots
 * included (so neither `/` nor `..` can walk anywhere), or its hash when too long. `%s` never starts an encoded key (`%` is
 * always followed by two hex digits there), so the two forms cannot meet.
 */
export function variantDirOf(root: string, key: string): string {
  // encodeURIComponent leaves dots alone, and `..` would then be a folder up.
  const encoded = encodeURIComponent(key).replaceAll('.', '%2E');
  const name =
    encoded.length <= MAX_NAME ? encoded : `${HASHED}${createHash('sha256').update(key).digest('hex')}`;
  return path.join(root, name);
}

const HASHED = '%sha256-';
/** In a hashed folder, the object's key (the name no longer says it). */
const KEY_FILE = '.key';

/**
 * The object key whose variants a folder holds (the orphan sweep asks whether a live row names
 * it): decoded from the name, or read from a hashed folder's `.key`; undefined when unknown.
 */
export async function keyOfVariantDir(dir: string): Promise<string | undefined> {
  const name = path.basename(dir);
  if (name.startsWith(HASHED)) return readFile(path.join(dir, KEY_FILE), 'utf8').catch(() => undefined);
  try {
    return decodeURIComponent(name);
  } catch {
    return undefined;
  }
}

export interface LocalVariantsDeps {
  /** The bucket the originals come from. */
  storage: Pick<Storage, 'get' | 'head'>;
  renderer: VariantRenderer;
  metrics: Pick<Metrics, 'localVariantsMade' | 'localVariantSeconds'>;
  logger: Pick<Logger, 'warn'>;
}

export class LocalVariants {
  /** Renders in flight in this process, by object and variant: concurrent first requests share one. */
  private readonly making = new Map<string, Promise<StoredVariant>>();

  constructor(
    private readonly d: LocalVariantsDeps,
    /** `DATA_DIR/variants`. */
    private readonly root: string,
  ) {}

  /** The variant of `key`, from disk or made now (a StorageError `not_found` without an original). */
  async get(key: string, variant: Variant): Promise<StoredVariant> {
    const dir = variantDirOf(this.root, key);
    const kept = await this.read(dir, variant);
    if (kept) return kept;
    const id = `${key}\n${variant.key}`;
    let made = this.making.get(id);
    if (!made) {
      made = this.make(key, dir, variant).finally(() => this.making.delete(id));
      this.making.set(id, made);
    }
    return made;
  }

  /** Renders being made now (tests). */
  get inFlight(): number {
    return this.making.size;
  }

  /** A variant written completely before (its meta file is written last), or null. */
  private async read(dir: string, variant: Variant): Promise<StoredVariant | null> {
    const file = path.join(dir, variant.key);
    try {
      const meta = JSON.parse(await readFile(`${file}.json`, 'utf8')) as VariantMeta;
      const st = await stat(file);
      return { file, size: st.size, lastModified: st.mtime, ...meta };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw err;
    }
  }

  private async make(key: string, dir: string, variant: Variant): Promise<StoredVariant> {
    const { renderer, storage, metrics } = this.d;
    const started = performance.now();
    let out: Awaited<ReturnType<VariantRenderer['render']>>;
    try {
      out = await renderer.render(async () => (await storage.get(key)).body, variant);
    } catch (err) {
      const result = err instanceof VariantRenderError ? err.reason : 'error';
      metrics.localVariantsMade.inc({ result });
      // A broken object is worth an operator's look; load (timeout, busy) shows in the metric.
      if (result !== 'timeout' && result !== 'busy' && result !== 'error') {
        this.d.logger.warn({ key, variant: variant.key, result, err }, 'a variant could not be made');
      }
      throw err;
    }
    const file = path.join(dir, variant.key);
    const meta: VariantMeta = {
      etag: `"${createHash('sha256').update(out.data).digest('hex').slice(0, 32)}"`,
      contentType: out.contentType,
      width: out.width,
      height: out.height,
    };
    // Bytes first, the meta file last: a reader trusts a variant only once its meta is there, and
    // each is renamed into place whole, so no reader sees half a file.
    try {
      await mkdir(dir, { recursive: true });
      if (path.basename(dir).startsWith(HASHED)) await writeAtomically(path.join(dir, KEY_FILE), key);
      await writeAtomically(file, out.data);
      await writeAtomically(`${file}.json`, JSON.stringify(meta));
    } catch (err) {
      metrics.localVariantsMade.inc({ result: 'error' });
      throw new StorageError('unavailable', 'local variant write failed', { cause: err });
    }
    // The object may have been deleted while its variant was rendered: leave nothing behind.
    if (!(await storage.head(key))) {
      await rm(dir, { recursive: true, force: true });
      metrics.localVariantsMade.inc({ result: 'error' });
      throw new StorageError('not_found', 'no such object');
    }
    metrics.localVariantsMade.inc({ result: 'ok' });
    metrics.localVariantSeconds.observe((performance.now() - started) / 1000);
    const st = await stat(file).catch(() => null);
    return { file, size: out.data.length, lastModified: st?.mtime ?? new Date(), ...meta };
  }
}

async function writeAtomically(file: string, data: Buffer | string): Promise<void> {
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    await writeFile(tmp, data);
    await rename(tmp, file);
  } catch (err) {
    await rm(tmp, { force: true }).catch(() => {});
    throw err;
  }
}
