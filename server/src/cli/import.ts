import { stat } from 'node:fs/promises';
import type { Config } from '../config.js';
import { createStorage, localBucketRoot } from '../container.js';
import { openDatabase } from '../db/connect.js';
import { createImagesRepo } from '../db/images-repo.js';
import { BucketUnreachableError, type ImportProgress, importBucket } from '../images/bucket-import.js';
import { MAX_LIST_KEYS, type Storage } from '../storage/storage.js';
import { CliError } from './cli-error.js';
import { type ProgressOut, progressReporter, skippedText } from './progress.js';

export interface ImportCommandOptions {
  ownerId: string;
  prefix: string;
  dryRun: boolean;
  batchSize?: number;
  out: ProgressOut;
}

/** The variables that say where the bucket is, for an error that names them. */
function bucketVariables(config: Config): string {
  if (config.storageDriver === 'cos') {
    return `COS_BUCKET=${config.cos.bucket} COS_REGION=${config.cos.region}${config.cos.domain ? ` COS_DOMAIN=${config.cos.domain}` : ''}`;
  }
  if (config.storageDriver === 's3' && config.s3) {
    return `S3_BUCKET=${config.s3.bucket} S3_REGION=${config.s3.region} S3_ENDPOINT=${config.s3.endpoint}`;
  }
  return `DATA_DIR=${config.dataDir}`;
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
    return result;
  } finally {
    await db.close();
  }
}

function unreachable(config: Config, err: unknown): CliError {
  const why = (err as Error)?.message ?? String(err);
  return new CliError(`cannot list the bucket (${bucketVariables(config)}): ${why}`);
}
