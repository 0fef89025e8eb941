import type { Config } from '../config.js';
import { localBucketRoot } from '../container.js';
import { createImagesRepo, type LiveKeyRow } from '../db/images-repo.js';
import { findMissingObjects, type MissingObjectsProgress } from '../images/missing-objects.js';
import { StorageError } from '../storage/storage.js';
import { CliError } from './cli-error.js';
import { maintenanceContainer } from './existing-data.js';
import type { ProgressOut } from './progress.js';

export interface MissingObjectsCommandOptions {
  ownerId?: string | undefined;
  limit?: number | undefined;
  /** One JSON object per missing row per line on `out`; the summary goes to `progress`. */
  json: boolean;
  /** The report (stdout); waited on when it asks to (`drain`), so a long report is not held in memory. */
  out: ProgressOut & { once?(event: 'drain', listener: () => void): unknown };
  /** The progress of a long run, and the summary with `json` (stderr). */
  progress: ProgressOut;
}

/** What to do about a missing object: the report's last line says it (docs/operations.md, "Backups and restores"). */
const NEXT_STEP =
  "restore each object under its key (from the bucket's backup or its versions), or delete the image through the API (`deleteImage(id:)` as its owner or an admin); this command changed nothing";

/** The bucket compared, named by the variables that say where it is. */
function bucketName(config: Config): string {
  switch (config.storageDriver) {
    case 'cos':
      return `COS bucket ${config.cos.bucket} (${config.cos.region})`;
    case 's3':
      return `S3 bucket ${config.s3?.bucket ?? '?'}`;
    case 'local':
      return `local bucket ${localBucketRoot(config)}`;
    default: {
      const unknown: never = config.storageDriver;
      throw new Error(`no bucket name for storage driver ${String(unknown)}`);
    }
  }
}

/**
 * A key as one field of a text line: as it is, or JSON-quoted when it holds a space, a control
 * character or a line separator, or starts with a quote (an imported key may hold any of them).
 */
function keyField(key: string): string {
  for (let i = 0; i < key.length; i++) {
    const c = key.charCodeAt(i);
    if (c <= 0x20 || (c >= 0x7f && c <= 0xa0) || c === 0x2028 || c === 0x2029 || (i === 0 && c === 0x22)) {
      return JSON.stringify(key);
    }
  }
  return key;
}

/**
 * The run's progress on stderr, as the import's (cli/progress.ts): on a terminal one line redrawn
 * in place; otherwise a plain line at most every `everyMs`, the first after `everyMs`, so a short
 * run writes none.
 */
export function missingProgressReporter(
  out: ProgressOut,
  opts: { everyMs?: number; now?: () => number } = {},
) {
  const now = opts.now ?? (() => performance.now());
  const started = now();
  const everyMs = opts.everyMs ?? 5000;
  let lastPlain = started;
  return (p: MissingObjectsProgress) => {
    const elapsed = (now() - started) / 1000;
    const rate = elapsed > 0 ? p.rowsChecked / elapsed : 0;
    const line = `${p.rowsChecked} live rows checked, ${p.missing} missing, ${p.listCalls} listing calls · ${rate.toFixed(0)} rows/s`;
    if (out.isTTY) {
      out.write(`\r\x1b[2K${line}${p.done ? '\n' : ''}`);
    } else if (!p.done && now() - lastPlain >= everyMs) {
      lastPlain = now();
      out.write(`${line}\n`);
    }
  };
}

/**
 * `signet missing-objects [--owner <id>] [--json] [--limit <n>]`: the gateway's own services (the
 * one composition root, no server, no workers), then `findMissingObjects`
 * (images/missing-objects.ts) over this node's database and this region's bucket. Prints each
 * live row whose object is gone, then what to do. Exit 0 when none is missing, 1 when one is.
 */
export async function runMissingObjects(config: Config, o: MissingObjectsCommandOptions): Promise<number> {
  // A wrong DATA_DIR would report every row missing (an empty bucket) or none (an empty
  // database); the log goes to stderr (stdout is the report, with --json nothing but its lines).
  const c = await maintenanceContainer(config);
  try {
    const write = async (text: string) => {
      const out = o.out;
      if (out.write(text) === false && out.once) await new Promise<void>((r) => out.once!('drain', r));
    };
    let header = false;
    const print = async (row: LiveKeyRow) => {
      const createdAt = row.createdAt.toISOString();
      if (o.json) {
        await write(
          `${JSON.stringify({ imageId: row.id, ownerId: row.ownerId, key: row.objectKey, createdAt })}\n`,
        );
        return;
      }
      if (!header) {
        header = true;
        await write('IMAGE ID  OWNER  OBJECT KEY  CREATED AT\n');
      }
      await write(`${row.id}  ${row.ownerId}  ${keyField(row.objectKey)}  ${createdAt}\n`);
    };
    const result = await findMissingObjects(
      // On the primary: the rows as they are now, never a replica's past.
      { storage: c.storage, images: createImagesRepo(c.db) },
      {
        ownerId: o.ownerId,
        limit: o.limit,
        onMissing: print,
        onProgress: missingProgressReporter(o.progress),
      },
    ).catch((err: unknown) => {
      if (err instanceof StorageError) {
        throw new CliError(`cannot read the ${bucketName(config)}: ${err.message}`);
      }
      throw err;
    });
    const rows = `${result.rowsChecked} live rows${o.ownerId !== undefined ? ` of owner "${o.ownerId}"` : ''}`;
    const summary =
      result.missing === 0
        ? `no missing objects: ${rows} checked against the ${bucketName(config)}`
        : result.stoppedAtLimit
          ? `stopped at --limit ${result.missing}, after ${rows}: these have no object in the ${bucketName(config)} and more may follow; ${NEXT_STEP}`
          : `${result.missing} of ${rows} have no object in the ${bucketName(config)}: ${NEXT_STEP}`;
    (o.json ? o.progress : o.out).write(`${summary}\n`);
    return result.missing === 0 ? 0 : 1;
  } finally {
    await c.close();
  }
}
