import { stat } from 'node:fs/promises';
import type { Config } from '../config.js';
import { createStorage, localBucketRoot } from '../container.js';
import { openDatabase } from '../db/connect.js';
import { createImagesRepo } from '../db/images-repo.js';
import type { ImageVisibility } from '../db/types.js';
import {
  BucketUnreachableError,
  IMPORT_VISIBILITIES,
  type ImportProgress,
  importBucket,
  SIGNET_PREFIXES,
} from '../images/bucket-import.js';
import { MAX_LIST_KEYS, type Storage } from '../storage/storage.js';
import { CliError } from './cli-error.js';
import { type ProgressOut, progressReporter, skippedText } from './progress.js';

export interface ImportCommandOptions {
  ownerId: string;
  prefix: string;
  dryRun: boolean;
  batchSize?: number;
  /** The rows' visibility (`--visibility`, parsed by parseVisibilityOption); default private. */
  visibility?: ImageVisibility;
  out: ProgressOut;
}

/**
 * `--visibility public|private` (the GraphQL `ImageVisibility`, any case); absent: private, as an
 * upload. Anything else is refused (exit 2) before the bucket or the database is touched.
 */
export function parseVisibilityOption(value: string | undefined): ImageVisibility {
  if (value === undefined) return 'private';
  const v = value.toLowerCase();
  const known = IMPORT_VISIBILITIES.find((x) => x === v);
  if (!known) {
    throw new CliError(`--visibility must be ${IMPORT_VISIBILITIES.join(' or ')}, got "${value}"`, 2);
  }
  return known;
}

/**
 * The warning for objects under Signet's prefixes that Signet did not write: one line, after the
 * summary; empty when there are none.
 */
export function reservedPrefixWarning(p: Pick<ImportProgress, 'skipped' | 'reservedExamples'>): string {
  const n = p.skipped['reserved-prefix'] ?? 0;
  if (n === 0) return '';
  const examples = p.reservedExamples.map((k) => JSON.stringify(k)).join(', ');
  const one = n === 1;
  const them = one ? 'it' : 'them';
  return `warning: ${n} ${one ? 'object sits' : 'objects sit'} under Signet's reserved prefixes (${SIGNET_PREFIXES.join(', ')}) but ${one ? 'is not a key' : 'are not keys'} Signet wrote (e.g. ${examples}): not imported, and left alone; to import ${them}, copy or move ${them} under another prefix and run the import again\n`;
}

/** The variables that say where the bucket is, for an error that names them. */
function bucketVariables(config: Config): string {
  const driver = config.storageDriver;
  switch (driver) {
    case 'cos':
      return `COS_BUCKET=${config.cos.bucket} COS_REGION=${config.cos.region}${config.cos.domain ? ` COS_DOMAIN=${config.cos.domain}` : ''}`;
    case 's3': {
      const s3 = config.s3!; // loadConfig parses the S3_* settings whenever STORAGE_DRIVER=s3
      return `S3_BUCKET=${s3.bucket} S3_REGION=${s3.region} S3_ENDPOINT=${s3.endpoint}`;
    }
    case 'local':
      return `DATA_DIR=${config.dataDir}`;
    default: {
      const unknown: never = driver;
      throw new Error(`no bucket variables named for storage driver ${String(unknown)}`);
    }
  }
}

/** Objects under prefix, counted with listing calls only (for the ETA on a terminal). */
async function countObjects(storage: Pick<Storage, 'list'>, prefix: string): Promise<number> {
  let n = 0;
  let marker: string | undefined;
  do {
    const page = await storage.list(prefix, {
      ...(marker !== undefined ? { marker } : {}),
      maxKeys: MAX_LIST_KEYS,
    });
    n += page.objects.length;
    marker = page.nextMarker;
  } while (marker !== undefined);
  return n;
}

/**
 * `signet import`: the database and the bucket as the gateway opens them, then importBucket with a
 * progress line. Fails at once, naming the variables, when the bucket cannot be listed.
 */
export async function runImport(config: Config, o: ImportCommandOptions): Promise<ImportProgress> {
  if (config.storageDriver === 'local') {
    // Listing a missing folder finds nothing: for an import that is a wrong DATA_DIR, not an empty bucket.
    const root = localBucketRoot(config);
    const st = await stat(root).catch(() => null);
    if (!st?.isDirectory()) {
      throw new CliError(
        `the local bucket ${root} does not exist (${bucketVariables(config)}; STORAGE_DRIVER=local)`,
      );
    }
  }
  const storage = createStorage(config);
  let total: number | undefined;
  if (o.out.isTTY) {
    o.out.write('counting objects…');
    total = await countObjects(storage, o.prefix).catch((err: unknown) => {
      throw unreachable(config, err);
    });
  }
  const db = await openDatabase({
    databaseUrl: config.databaseUrl,
    directUrl: config.databaseDirectUrl,
    dataDir: config.dataDir,
    poolSize: 2,
  });
  try {
    const result = await importBucket(
      { config, storage, images: createImagesRepo(db) },
      {
        ownerId: o.ownerId,
        ...(o.visibility !== undefined ? { visibility: o.visibility } : {}),
        prefix: o.prefix,
        dryRun: o.dryRun,
        ...(o.batchSize !== undefined ? { batchSize: o.batchSize } : {}),
        onProgress: progressReporter(o.out, total !== undefined ? { total } : {}),
      },
    ).catch((err: unknown) => {
      throw err instanceof BucketUnreachableError ? unreachable(config, err.cause ?? err) : err;
    });
    o.out.write(
      `${o.dryRun ? 'dry run: would import' : 'imported'} ${result.imported} of ${result.seen} objects for owner "${o.ownerId}"; skipped: ${skippedText(result)}\n`,
    );
    const warning = reservedPrefixWarning(result);
    if (warning) o.out.write(warning);
    return result;
  } finally {
    await db.close();
  }
}

function unreachable(config: Config, err: unknown): CliError {
  const why = (err as Error)?.message ?? String(err);
  return new CliError(`cannot list the bucket (${bucketVariables(config)}): ${why}`);
}
