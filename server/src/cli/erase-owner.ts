import { rmdir } from 'node:fs/promises';
import path from 'node:path';
import type { Config } from '../config.js';
import { deletingEverywhere, localBucketRoot } from '../container.js';
import { createImagesRepo } from '../db/images-repo.js';
import { type EraseOwnerResult, eraseOwner, uploadFolderOf } from '../images/erase-owner.js';
import type { RedisClient } from '../redis/connect.js';
import { CliError } from './cli-error.js';
import { maintenanceContainer } from './existing-data.js';
import type { ProgressOut } from './progress.js';

export interface EraseOwnerCommandOptions {
  ownerId: string;
  dryRun: boolean;
  out: ProgressOut;
}

/**
 * `signet erase-owner <owner id>`: the gateway's own services (the one composition root, no
 * server, no workers), then `eraseOwner` (images/erase-owner.ts) and what it does not reach: the
 * owner's rate-limit counters in Redis and, on `local`, the owner's empty upload folder. Prints one
 * summary line. Re-running it after a failure finishes the job (docs/operations.md, "Erasing a
 * user's data").
 */
export async function runEraseOwner(config: Config, o: EraseOwnerCommandOptions): Promise<EraseOwnerResult> {
  // A wrong DATA_DIR would erase nothing and say so as a success; the log goes to stderr.
  const c = await maintenanceContainer(config);
  try {
    // Redis ready before anything runs: the client queues no command while it connects
    // (enableOfflineQueue off), and one closed while still connecting logs a connection error.
    if (c.redis) await connected(c.redis);
    // Every region's bucket, as the gateway's deletes do.
    const storage = deletingEverywhere(c.storage, c.regionStorages);
    const erasing = eraseOwner(
      {
        deletion: {
          storage,
          images: c.imagesRepo,
          recentRows: c.recentRows,
          events: c.events,
          urls: c.urls,
          variants: c.variants,
          clock: c.clock,
          logger: c.logger,
        },
        // On the primary: the walk must see every row as it is now, never a replica's past.
        images: createImagesRepo(c.db),
        listing: c.storage,
        urls: c.urls,
        logger: c.logger,
      },
      o.ownerId,
      { dryRun: o.dryRun },
    );
    const result = await erasing.catch((err: unknown) => {
      if (o.dryRun) throw err;
      // Every step is idempotent: what was done stays done, and a new run does the rest.
      throw new CliError(
        `the erasure of owner "${o.ownerId}" stopped: ${(err as Error)?.message ?? String(err)}; run the same command again to finish it`,
      );
    });
    const who = `owner "${o.ownerId}"`;
    if (o.dryRun) {
      o.out.write(
        `dry run: ${who} has ${result.liveImages} live images, ${result.deletedRows} deleted rows and ${result.leftoverObjects} objects without a row in its upload folder; nothing was changed\n`,
      );
      return result;
    }
    if (c.redis) {
      // The owner's rate-limit windows (rate-limit.ts: `<prefix><name>:<viewer>`); one DEL each,
      // since on a Cluster they may sit in different slots.
      for (const name of ['rl', 'rl-preload']) await c.redis.del(`${config.redisPrefix}${name}:${o.ownerId}`);
    }
    if (config.storageDriver === 'local') {
      // The driver leaves folders behind; the owner's is named after the owner. Only when empty.
      const folder = path.join(
        localBucketRoot(config),
        ...uploadFolderOf(o.ownerId).split('/').filter(Boolean),
      );
      await rmdir(folder).catch(() => {});
    }
    o.out.write(
      `erased ${who}: ${result.liveImages} images deleted, ${result.rowsRemoved} rows removed (${result.deletedRows} of them deleted before), ${result.leftoverObjects} objects without a row removed\n`,
    );
    return result;
  } finally {
    await c.close();
  }
}

/** Resolves once the client can take commands, or fails after `ms`. */
function connected(redis: RedisClient, ms = 5000): Promise<void> {
  if (redis.status === 'ready') return Promise.resolve();
  return new Promise((resolve, reject) => {
    const ready = () => {
      clearTimeout(timer);
      resolve();
    };
    const timer = setTimeout(() => {
      redis.off('ready', ready);
      reject(new Error(`Redis was not ready within ${ms} ms`));
    }, ms);
    redis.once('ready', ready);
  });
}
